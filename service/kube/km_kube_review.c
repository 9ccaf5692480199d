/*
 * TokenReview and SubjectAccessReview (km_kube_review.h): one POST per
 * review, with libcurl's easy interface on the caller's thread. Both go
 * through post(), which owns everything HTTP: the credentials
 * (km_kube_creds), kubemedicd's own bearer token, the timeout and the
 * bound on the answer. What is sent is built, and what came back decoded,
 * with cJSON in functions of their own.
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

#define TOKEN_PATH "/apis/authentication.k8s.io/v1/tokenreviews"
#define ACCESS_PATH "/apis/authorization.k8s.io/v1/subjectaccessreviews"

struct km_kube_reviewer {
	struct km_kube_creds cr;
	char *token_url;  /* cr.server's tokenreviews */
	char *access_url; /* and subjectaccessreviews */
};

static char *join(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);

	if (s) {
		strcpy(s, a);
		strcat(s, b);
	}
	return s;
}

int km_kube_reviewer_new(const struct km_kube_client_options *o,
			 struct km_kube_reviewer **out, struct km_error *err)
{
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
	r->token_url = join(r->cr.server, TOKEN_PATH);
	r->access_url = join(r->cr.server, ACCESS_PATH);
	if (!r->token_url || !r->access_url) {
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
	km_kube_creds_free(&r->cr);
	free(r->token_url);
	free(r->access_url);
	free(r);
}

/* ---- HTTP ---------------------------------------------------------------- */

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

static void wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* POSTs body to url; 0 with the answer of a 200 or 201 in *a (the
 * caller frees a->buf, also on failure). KM_EUNAVAIL, naming what ("a
 * TokenReview") and the resource kubemedicd needs create on, for anything
 * else; KM_ENOMEM. */
static int post(const struct km_kube_reviewer *r, const char *url,
		const char *what, const char *resource, const char *body,
		struct answer *a, struct km_error *err)
{
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *mine = NULL, *auth = NULL;
	long code = 0;
	CURLcode cc;
	CURL *e;
	int rc;

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
	if (!e || !h || (mine && !auth)) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto out;
	}
	km_kube_creds_apply(&r->cr, e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK)
		rc = km_error_set(err, KM_EUNAVAIL, "%s: %s", what,
				  a->too_big
					  ? "the answer is larger than 64 KiB"
				  : errbuf[0] ? errbuf
					      : curl_easy_strerror(cc));
	else if (code != 200 && code != 201)
		rc = km_error_set(err, KM_EUNAVAIL,
				  "%s: the API server answered HTTP %ld "
				  "(kubemedicd needs create on %s)",
				  what, code, resource);
	else
		rc = 0;
out:
	curl_slist_free_all(h);
	if (e)
		curl_easy_cleanup(e);
	wipe_free(mine);
	wipe_free(auth);
	return rc;
}

/* ---- JSON ---------------------------------------------------------------- */

static bool utf8(const char *s)
{
	return km_utf8_invalid_at(s, strlen(s)) == strlen(s);
}

/* o's member name if it is a UTF-8 string; NULL if there is none; *bad
 * when there is one of another kind. */
static const char *text(const cJSON *o, const char *name, bool *bad)
{
	const cJSON *v = cJSON_IsObject(o)
				 ? cJSON_GetObjectItemCaseSensitive(o, name)
				 : NULL;

	if (!v || cJSON_IsNull(v))
		return NULL;
	if (cJSON_IsString(v) && v->valuestring && utf8(v->valuestring))
		return v->valuestring;
	*bad = true;
	return NULL;
}

/* Parses an answer, which must be an object of this kind with a status
 * object; NULL (err set) otherwise. */
static cJSON *parse(const char *json, size_t len, const char *kind,
		    const cJSON **status, struct km_error *err)
{
	cJSON *doc = json ? cJSON_ParseWithLength(json, len) : NULL;
	const cJSON *k = cJSON_IsObject(doc)
				 ? cJSON_GetObjectItemCaseSensitive(doc, "kind")
				 : NULL;

	*status = cJSON_IsObject(doc)
			  ? cJSON_GetObjectItemCaseSensitive(doc, "status")
			  : NULL;
	if (!cJSON_IsObject(doc)) {
		km_error_set(err, KM_EUNAVAIL,
			     "%s: the answer is not a JSON "
			     "object",
			     kind);
	} else if (!cJSON_IsString(k) || strcmp(k->valuestring, kind)) {
		km_error_set(err, KM_EUNAVAIL,
			     "%s: the answer is not a %s (kind %.60s)", kind,
			     kind,
			     cJSON_IsString(k) ? k->valuestring : "missing");
	} else if (!cJSON_IsObject(*status)) {
		km_error_set(err, KM_EUNAVAIL, "%s: an answer without status",
			     kind);
	} else {
		return doc;
	}
	cJSON_Delete(doc);
	return NULL;
}

/* A JSON array of UTF-8 strings into ar; false for anything else. */
static bool strings(const cJSON *v, struct km_arena *ar, const char ***out,
		    size_t *n, int *rc)
{
	const cJSON *it;

	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(v))
		return false;
	*out = km_arena_calloc(ar, (size_t)cJSON_GetArraySize(v) + 1,
			       sizeof **out);
	if (!*out) {
		*rc = KM_ENOMEM;
		return false;
	}
	cJSON_ArrayForEach(it, v)
	{
		if (!cJSON_IsString(it) || !it->valuestring ||
		    !utf8(it->valuestring))
			return false;
		if (!((*out)[(*n)++] = km_arena_strdup(ar, it->valuestring))) {
			*rc = KM_ENOMEM;
			return false;
		}
	}
	return true;
}

int km_kube_token_review_body(const char *token, char **out,
			      struct km_error *err)
{
	cJSON *req = cJSON_CreateObject();

	*out = NULL;
	if (req &&
	    cJSON_AddStringToObject(req, "apiVersion",
				    "authentication.k8s.io/v1") &&
	    cJSON_AddStringToObject(req, "kind", "TokenReview") &&
	    cJSON_AddStringToObject(cJSON_AddObjectToObject(req, "spec"),
				    "token", token))
		*out = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	return *out ? 0 : km_error_set(err, KM_ENOMEM, "out of memory");
}

int km_kube_token_review_decode(const char *json, size_t len,
				struct km_arena *ar,
				struct km_auth_subject *out,
				struct km_error *err)
{
	const cJSON *status, *u, *g, *x, *it;
	struct km_auth_extra *extra;
	const char *user, *uid;
	bool bad = false;
	cJSON *doc;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (!(doc = parse(json, len, "TokenReview", &status, err)))
		return KM_EUNAVAIL;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status,
							   "authenticated"))) {
		const char *why = text(status, "error", &bad);

		rc = km_error_set(err, KM_EAUTH,
				  "the bearer token is not valid in the "
				  "cluster%s%.300s",
				  why ? ": " : "", why ? why : "");
		goto out;
	}
	u = cJSON_GetObjectItemCaseSensitive(status, "user");
	user = text(u, "username", &bad);
	uid = text(u, "uid", &bad);
	if (!user || !*user || bad) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "TokenReview: authenticated, but %s",
				  bad ? "the username or uid is not a UTF-8 "
					"string"
				      : "no username");
		goto out;
	}
	out->user = km_arena_strdup(ar, user);
	out->uid = km_arena_strdup(ar, uid ? uid : "");
	if (!out->user || !out->uid) {
		rc = KM_ENOMEM;
		goto out;
	}
	g = cJSON_GetObjectItemCaseSensitive(u, "groups");
	if (g && !cJSON_IsNull(g) &&
	    !strings(g, ar, &out->groups, &out->n_groups, &rc)) {
		if (!rc)
			rc = km_error_set(err, KM_EUNAVAIL,
					  "TokenReview: status.user.groups is "
					  "not a list of UTF-8 strings");
		goto out;
	}
	x = cJSON_GetObjectItemCaseSensitive(u, "extra");
	if (!x || cJSON_IsNull(x))
		goto out;
	extra = cJSON_IsObject(x)
			? km_arena_calloc(ar, (size_t)cJSON_GetArraySize(x) + 1,
					  sizeof *extra)
			: NULL;
	if (cJSON_IsObject(x) && !extra) {
		rc = KM_ENOMEM;
		goto out;
	}
	out->extra = extra;
	if (!extra)
		x = NULL;
	cJSON_ArrayForEach(it, x)
	{
		struct km_auth_extra *e = &extra[out->n_extra];

		if (!it->string || !utf8(it->string) ||
		    !strings(it, ar, &e->values, &e->n_values, &rc))
			break;
		if (!(e->key = km_arena_strdup(ar, it->string))) {
			rc = KM_ENOMEM;
			goto out;
		}
		out->n_extra++;
	}
	if (!rc && (!x || out->n_extra != (size_t)cJSON_GetArraySize(x)))
		rc = km_error_set(err, KM_EUNAVAIL,
				  "TokenReview: status.user.extra is not a "
				  "map of lists of UTF-8 strings");
out:
	cJSON_Delete(doc);
	if (rc == KM_ENOMEM)
		km_error_set(err, rc, "out of memory");
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

static bool add_text(cJSON *o, const char *name, const char *v, bool always)
{
	return (!always && (!v || !*v)) ||
	       cJSON_AddStringToObject(o, name, v ? v : "");
}

int km_kube_access_review_body(const struct km_auth_subject *who,
			       const struct km_auth_access *what, char **out,
			       struct km_error *err)
{
	cJSON *req = cJSON_CreateObject(), *spec = NULL, *ra = NULL, *g = NULL,
	      *x = NULL;
	bool ok;

	*out = NULL;
	ok = req &&
	     cJSON_AddStringToObject(req, "apiVersion",
				     "authorization.k8s.io/v1") &&
	     cJSON_AddStringToObject(req, "kind", "SubjectAccessReview") &&
	     (spec = cJSON_AddObjectToObject(req, "spec")) &&
	     (ra = cJSON_AddObjectToObject(spec, "resourceAttributes")) &&
	     add_text(ra, "namespace", what->ns, false) &&
	     add_text(ra, "verb", what->verb, true) &&
	     add_text(ra, "group", what->group, true) &&
	     add_text(ra, "resource", what->resource, true) &&
	     add_text(ra, "subresource", what->subresource, false) &&
	     add_text(ra, "name", what->name, false) &&
	     add_text(spec, "user", who->user, true) &&
	     (g = cJSON_AddArrayToObject(spec, "groups")) &&
	     add_text(spec, "uid", who->uid, false) &&
	     (!who->n_extra || (x = cJSON_AddObjectToObject(spec, "extra")));
	for (size_t i = 0; ok && i < who->n_groups; i++)
		ok = cJSON_AddItemToArray(g,
					  cJSON_CreateString(who->groups[i]));
	for (size_t i = 0; ok && i < who->n_extra; i++) {
		const struct km_auth_extra *e = &who->extra[i];
		cJSON *v = cJSON_AddArrayToObject(x, e->key);

		ok = v != NULL;
		for (size_t k = 0; ok && k < e->n_values; k++)
			ok = cJSON_AddItemToArray(
				v, cJSON_CreateString(e->values[k]));
	}
	if (ok)
		*out = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	return *out ? 0 : km_error_set(err, KM_ENOMEM, "out of memory");
}

int km_kube_access_review_decode(const char *json, size_t len,
				 struct km_error *err)
{
	const cJSON *status, *allowed, *denied;
	const char *reason, *eval;
	bool bad = false;
	cJSON *doc;
	int rc;

	if (!(doc = parse(json, len, "SubjectAccessReview", &status, err)))
		return KM_EUNAVAIL;
	allowed = cJSON_GetObjectItemCaseSensitive(status, "allowed");
	denied = cJSON_GetObjectItemCaseSensitive(status, "denied");
	reason = text(status, "reason", &bad);
	eval = text(status, "evaluationError", &bad);
	if (!cJSON_IsBool(allowed) || (denied && !cJSON_IsBool(denied)) || bad)
		rc = km_error_set(err, KM_EUNAVAIL,
				  "SubjectAccessReview: the answer's "
				  "status.allowed is not true or false, or "
				  "its denied, reason or evaluationError "
				  "not of the API's kind");
	else if (cJSON_IsTrue(allowed) && cJSON_IsTrue(denied))
		rc = km_error_set(err, KM_EUNAVAIL,
				  "SubjectAccessReview: the answer says both "
				  "allowed and denied");
	else if (cJSON_IsTrue(allowed))
		rc = 0;
	else
		rc = km_error_set(err, KM_EPERM,
				  "the cluster's RBAC does not allow it%s%.200s"
				  "%s%.200s%s",
				  reason && *reason ? ": " : "",
				  reason ? reason : "",
				  eval && *eval ? " (evaluation error: " : "",
				  eval ? eval : "", eval && *eval ? ")" : "");
	cJSON_Delete(doc);
	return rc;
}

/* ---- the reviews --------------------------------------------------------- */

int km_kube_token_review(void *reviewer, const char *token, struct km_arena *ar,
			 struct km_auth_subject *out, struct km_error *err)
{
	struct km_kube_reviewer *r = reviewer;
	struct answer a = {0};
	char *body = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = km_kube_token_review_body(token, &body, err)))
		return rc;
	rc = post(r, r->token_url, "TokenReview", "tokenreviews", body, &a,
		  err);
	if (!rc)
		rc = km_kube_token_review_decode(a.buf, a.len, ar, out, err);
	wipe_free(body); /* it holds the caller's token */
	free(a.buf);
	return rc;
}

int km_kube_access_review(void *reviewer, const struct km_auth_subject *who,
			  const struct km_auth_access *what,
			  struct km_error *err)
{
	struct km_kube_reviewer *r = reviewer;
	struct answer a = {0};
	char *body = NULL;
	int rc;

	if ((rc = km_kube_access_review_body(who, what, &body, err)))
		return rc;
	rc = post(r, r->access_url, "SubjectAccessReview",
		  "subjectaccessreviews", body, &a, err);
	if (!rc)
		rc = km_kube_access_review_decode(a.buf, a.len, err);
	free(body);
	free(a.buf);
	return rc;
}
