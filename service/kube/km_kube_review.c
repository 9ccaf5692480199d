/*
 * TokenReview (km_kube_review.h): one POST per token, with libcurl's easy
 * interface on the caller's thread.
 */
#include "km_kube_review.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "km_curl.h"
#include "km_kubeconfig.h"
#include "km_pbcheck.h"

#define ANSWER_MAX (64 * 1024)
#define TIMEOUT_MS 5000L

struct km_kube_reviewer {
	struct km_kube_creds cr;
	char *url; /* cr.server's tokenreviews */
};

int km_kube_reviewer_new(const struct km_kube_client_options *o,
			 struct km_kube_reviewer **out, struct km_error *err)
{
	static const char path[] =
		"/apis/authentication.k8s.io/v1/tokenreviews";
	struct km_kube_reviewer *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	km_curl_global_init();
	if ((rc = km_kube_creds_copy(&r->cr, o, err))) {
		free(r);
		return rc;
	}
	r->url = malloc(strlen(r->cr.server) + sizeof path);
	if (!r->url) {
		km_kube_reviewer_free(r);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	strcpy(r->url, r->cr.server);
	strcat(r->url, path);
	*out = r;
	return 0;
}

void km_kube_reviewer_free(struct km_kube_reviewer *r)
{
	if (!r)
		return;
	km_kube_creds_free(&r->cr);
	free(r->url);
	free(r);
}

struct answer {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	struct answer *a = arg;
	size_t n = size * nmemb;
	char *b;

	if (a->len + n > ANSWER_MAX) {
		a->too_big = true;
		return 0;
	}
	b = realloc(a->buf, a->len + n + 1);
	if (!b)
		return 0;
	memcpy(b + a->len, p, n);
	a->buf = b;
	a->len += n;
	a->buf[a->len] = '\0';
	return n;
}

/* kubemedicd's own bearer token: the file's, read now (it rotates), else
 * the kubeconfig's. NULL for none; malloc'd. */
static char *own_token(const struct km_kube_reviewer *r)
{
	char *tok = NULL;

	if (r->cr.token_file &&
	    !km_kubeconfig_read_token(r->cr.token_file, &tok, NULL))
		return tok;
	return r->cr.token ? strdup(r->cr.token) : NULL;
}

static const char *text(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_IsObject(o)
				 ? cJSON_GetObjectItemCaseSensitive(o, name)
				 : NULL;

	return cJSON_IsString(v) && v->valuestring &&
			       km_utf8_invalid_at(v->valuestring,
						  strlen(v->valuestring)) ==
				       strlen(v->valuestring)
		       ? v->valuestring
		       : NULL;
}

int km_kube_token_review(void *reviewer, const char *token, struct km_arena *ar,
			 const char **user, const char ***groups,
			 size_t *n_groups, struct km_error *err)
{
	struct km_kube_reviewer *r = reviewer;
	struct answer a = {0};
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	cJSON *req = NULL, *resp = NULL;
	char *body = NULL, *mine = NULL, *auth = NULL;
	const cJSON *status, *u, *g, *it;
	long code = 0;
	CURLcode cc;
	CURL *e;
	int rc;

	*user = NULL;
	*groups = NULL;
	*n_groups = 0;
	req = cJSON_CreateObject();
	if (!req ||
	    !cJSON_AddStringToObject(req, "apiVersion",
				     "authentication.k8s.io/v1") ||
	    !cJSON_AddStringToObject(req, "kind", "TokenReview") ||
	    !cJSON_AddStringToObject(cJSON_AddObjectToObject(req, "spec"),
				     "token", token) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	cJSON_Delete(req);
	e = curl_easy_init();
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (h)
		h = curl_slist_append(h, "Accept: application/json");
	mine = own_token(r);
	if (mine && (auth = malloc(strlen(mine) + 32))) {
		struct curl_slist *h2;

		strcpy(auth, "Authorization: Bearer ");
		strcat(auth, mine);
		h2 = h ? curl_slist_append(h, auth) : NULL;
		if (!h2)
			curl_slist_free_all(h);
		h = h2;
	}
	if (!e || !h) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto out;
	}
	km_kube_creds_apply(&r->cr, e);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK) {
		rc = km_error_set(err, KM_EUNAVAIL, "TokenReview: %s",
				  a.too_big ? "the answer is larger than 64 KiB"
				  : errbuf[0] ? errbuf
					      : curl_easy_strerror(cc));
		goto out;
	}
	if (code != 200 && code != 201) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "TokenReview: the API server answered HTTP "
				  "%ld (kubemedicd needs create on "
				  "tokenreviews)",
				  code);
		goto out;
	}
	resp = a.buf ? cJSON_ParseWithLength(a.buf, a.len) : NULL;
	status = cJSON_IsObject(resp)
			 ? cJSON_GetObjectItemCaseSensitive(resp, "status")
			 : NULL;
	if (!cJSON_IsObject(status)) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "TokenReview: an answer without status");
		goto out;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status,
							   "authenticated"))) {
		const char *why = text(status, "error");

		rc = km_error_set(err, KM_EAUTH,
				  "the bearer token is not valid in the "
				  "cluster%s%.300s",
				  why ? ": " : "", why ? why : "");
		goto out;
	}
	u = cJSON_GetObjectItemCaseSensitive(status, "user");
	if (!text(u, "username") || !*text(u, "username")) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "TokenReview: authenticated, but no "
				  "username");
		goto out;
	}
	*user = km_arena_strdup(ar, text(u, "username"));
	g = cJSON_GetObjectItemCaseSensitive(u, "groups");
	*groups = km_arena_calloc(ar, (size_t)cJSON_GetArraySize(g) + 1,
				  sizeof **groups);
	if (!*user || !*groups) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto out;
	}
	if (!cJSON_IsArray(g))
		g = NULL;
	cJSON_ArrayForEach(it, g)
	{
		if (cJSON_IsString(it) && it->valuestring &&
		    km_utf8_invalid_at(it->valuestring,
				       strlen(it->valuestring)) ==
			    strlen(it->valuestring) &&
		    !((*groups)[*n_groups] =
			      km_arena_strdup(ar, it->valuestring))) {
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto out;
		}
		if ((*groups)[*n_groups])
			(*n_groups)++;
	}
	rc = 0;
out:
	cJSON_Delete(resp);
	curl_slist_free_all(h);
	if (e)
		curl_easy_cleanup(e);
	free(body);
	free(a.buf);
	if (mine) {
		memset(mine, 0, strlen(mine));
		free(mine);
	}
	if (auth) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	return rc;
}
