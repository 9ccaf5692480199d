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
	char *url, *user_agent, *token, *token_file;
	char *ca, *cert, *key;
	size_t ca_len, cert_len, key_len;
	bool insecure;
};

static char *dup_n(const char *p, size_t n)
{
	char *d = p ? malloc(n + 1) : NULL;

	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

int km_kube_reviewer_new(const struct km_kube_client_options *o,
			 struct km_kube_reviewer **out, struct km_error *err)
{
	struct km_kube_reviewer *r = calloc(1, sizeof *r);
	static const char path[] =
		"/apis/authentication.k8s.io/v1/tokenreviews";
	size_t n;

	*out = NULL;
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	km_curl_global_init();
	n = strlen(o->server);
	while (n && o->server[n - 1] == '/')
		n--;
	r->url = malloc(n + sizeof path);
	if (r->url) {
		memcpy(r->url, o->server, n);
		memcpy(r->url + n, path, sizeof path);
	}
	r->user_agent = strdup(o->user_agent ? o->user_agent : "kubemedic");
	r->token = o->token ? strdup(o->token) : NULL;
	r->token_file = o->token_file ? strdup(o->token_file) : NULL;
	if (o->ca_pem)
		r->ca = dup_n(o->ca_pem, r->ca_len = o->ca_len);
	if (o->cert_pem && o->key_pem) {
		r->cert = dup_n(o->cert_pem, r->cert_len = o->cert_len);
		r->key = dup_n(o->key_pem, r->key_len = o->key_len);
	}
	r->insecure = o->insecure_skip_tls_verify;
	if (!r->url || !r->user_agent || (o->token && !r->token) ||
	    (o->token_file && !r->token_file) || (o->ca_pem && !r->ca) ||
	    (o->cert_pem && o->key_pem && (!r->cert || !r->key))) {
		km_kube_reviewer_free(r);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	*out = r;
	return 0;
}

void km_kube_reviewer_free(struct km_kube_reviewer *r)
{
	if (!r)
		return;
	free(r->url);
	free(r->user_agent);
	free(r->token);
	free(r->token_file);
	free(r->ca);
	free(r->cert);
	free(r->key);
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

	if (r->token_file &&
	    !km_kubeconfig_read_token(r->token_file, &tok, NULL))
		return tok;
	return r->token ? strdup(r->token) : NULL;
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
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, r->user_agent);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);
	if (r->ca) {
		struct curl_blob b = {r->ca, r->ca_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (r->cert && r->key) {
		struct curl_blob cb = {r->cert, r->cert_len, CURL_BLOB_COPY};
		struct curl_blob kb = {r->key, r->key_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
	}
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
