/*
 * bench/kube_decode_jsonc.c — bench_kube_decode's json-c candidate (in a
 * file of its own: see kube_decode.h).
 */
#include <json-c/json.h>
#include <stdio.h>

#include "kube_decode.h"

static void *jc_get(void *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? v : NULL;
}
static const char *jc_str(void *n, size_t *len)
{
	if (!n || !json_object_is_type(n, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(n);
	return json_object_get_string(n);
}
static int jc_bool(void *n)
{
	return n && json_object_is_type(n, json_type_boolean)
		       ? json_object_get_boolean(n)
		       : -1;
}
static bool jc_int(void *n, int64_t *v)
{
	if (!n || !json_object_is_type(n, json_type_int))
		return false;
	*v = json_object_get_int64(n);
	return true;
}
static size_t jc_count(void *n)
{
	if (n && json_object_is_type(n, json_type_array))
		return json_object_array_length(n);
	if (n && json_object_is_type(n, json_type_object))
		return (size_t)json_object_object_length(n);
	return 0;
}
static void jc_begin(void *n, struct kd_it *it)
{
	it->node = n;
	it->i = 0;
	it->n = n && json_object_is_type(n, json_type_array)
			? json_object_array_length(n)
			: 0;
	it->cur = n && json_object_is_type(n, json_type_object)
			  ? json_object_get_object(n)->head
			  : NULL;
}
static bool jc_next(struct kd_it *it, const char **k, void **v)
{
	if (it->i < it->n) {
		*k = NULL;
		*v = json_object_array_get_idx(it->node, it->i++);
		return true;
	}
	struct lh_entry *e = it->cur;
	if (!e)
		return false;
	*k = lh_entry_k(e);
	*v = lh_entry_v(e);
	it->cur = lh_entry_next(e);
	return true;
}
static const struct kd_json kd_jsonc = {jc_get,   jc_str,   jc_bool, jc_int,
					jc_count, jc_begin, jc_next};

int cand_jsonc(const char *buf, size_t len, struct kd_result *r, bool event)
{
	if (len > INT32_MAX)
		return -1;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -1;
	struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || e != json_tokener_success) {
		fprintf(stderr, "json-c: %s\n", json_tokener_error_desc(e));
		json_object_put(root);
		return -1;
	}
	int rc = json_object_is_type(root, json_type_object)
			 ? (event ? kd_json_event(&kd_jsonc, root, r)
				  : kd_json_list(&kd_jsonc, root, r))
			 : -1;
	kd_peak();
	json_object_put(root);
	return rc;
}
