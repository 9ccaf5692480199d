/*
 * Identities (the authenticator chain of km_auth.h) and roles.
 *
 * Tokens are kept only as SHA-256 hashes (the token file holds nothing
 * else), so neither the file nor the daemon's memory gives a token away. A
 * presented token is hashed and compared with every entry in constant time
 * (CRYPTO_memcmp, no early exit), so how long a lookup takes says nothing
 * about which entry, or how much of one, matched.
 */
#include "km_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "km_log.h"
#include "km_time.h"

#define TOKEN_FILE_MAX (4 << 20)
#define TOKEN_MAX 4096
#define RECHECK_NS 1000000000LL

struct token {
	unsigned char hash[32];
	const char *user;
	const char **groups;
	size_t n_groups;
};

struct km_auth {
	struct km_auth_options o;
	struct km_arena arena; /* options' copies */

	pthread_mutex_t mu; /* guards the tokens */
	struct km_arena tarena;
	struct token *tokens;
	size_t n_tokens;
	struct stat tstat; /* of the token file read */
	int64_t tchecked;  /* mono ns */

	/* Answers of o.review, by the token's SHA-256 (rmu). */
	pthread_mutex_t rmu;
	struct review *reviews;
	size_t n_reviews;

	/* Answers of o.access_review, by the SHA-256 of what was asked
	 * (amu); the accesses asked, copied into arena. */
	pthread_mutex_t amu;
	struct access_answer *answers;
	size_t n_answers;
	const struct km_auth_access *access[KM_ROLE_ADMIN + 1];
};

/* A reviewed token: who it is (in its own arena), or why it is not
 * valid, until when. */
struct review {
	unsigned char hash[32];
	bool ok;
	char *why;
	struct km_arena ar;
	struct km_auth_subject who;
	int64_t until_ns;
};

/* An access review's answer: allowed or not, until when. */
struct access_answer {
	unsigned char hash[32];
	bool allowed;
	int64_t until_ns;
};

#define REVIEWS_MAX 1024
#define REVIEW_OK_NS (60LL * 1000000000)
#define REVIEW_BAD_NS (10LL * 1000000000)

const char *km_role_name(int role)
{
	switch (role) {
	case KM_ROLE_NONE: return "none";
	case KM_ROLE_VIEWER: return "viewer";
	case KM_ROLE_OPERATOR: return "operator";
	case KM_ROLE_ADMIN: return "admin";
	}
	return "nobody";
}

int km_role_parse(const char *s)
{
	for (int r = KM_ROLE_NONE; r <= KM_ROLE_ADMIN; r++)
		if (s && !strcmp(s, km_role_name(r)))
			return r;
	return -1;
}

/* ---- the token file ------------------------------------------------------ */

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "a,b,c" into the arena. */
static int split_groups(struct km_arena *a, const char *s, size_t len,
			const char ***out, size_t *n)
{
	size_t cap = 1;

	for (size_t i = 0; i < len; i++)
		cap += s[i] == ',';
	*out = km_arena_calloc(a, cap, sizeof **out);
	*n = 0;
	if (!*out)
		return KM_ENOMEM;
	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && s[j] != ',')
			j++;
		if (j > i &&
		    !((*out)[(*n)++] = km_arena_strndup(a, s + i, j - i)))
			return KM_ENOMEM;
		i = j + 1;
	}
	return 0;
}

/* Parses the whole file: one token per line, "<hex sha256> <user>
 * [group,group...]", `#` comments and blank lines allowed. */
static int parse_tokens(const char *path, const char *text, size_t len,
			struct km_arena *a, struct token **out, size_t *n,
			struct km_error *err)
{
	size_t cap = 16, line = 0;
	struct token *v = km_arena_calloc(a, cap, sizeof *v);

	*n = 0;
	if (!v)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	for (size_t i = 0; i < len;) {
		size_t end = i, p;
		struct token t = {0};

		while (end < len && text[end] != '\n')
			end++;
		line++;
		p = i;
		while (p < end && (text[p] == ' ' || text[p] == '\t'))
			p++;
		if (p == end || text[p] == '#' || text[p] == '\r') {
			i = end + 1;
			continue;
		}
		if (end - p > 7 && !strncmp(text + p, "sha256:", 7))
			p += 7;
		for (int k = 0; k < 32; k++) {
			int hi = p + 2 * (size_t)k + 1 < end
					 ? hex_nibble(text[p + 2 * k])
					 : -1;
			int lo = hi >= 0 ? hex_nibble(text[p + 2 * k + 1]) : -1;

			if (hi < 0 || lo < 0)
				return km_error_set(
					err, KM_EINVAL,
					"%s:%zu: want \"<sha256 of the token, 64 "
					"hex digits> <user> [group,group]\" (the "
					"file holds hashes, never tokens: "
					"printf %%s TOKEN | sha256sum)",
					path, line);
			t.hash[k] = (unsigned char)(hi << 4 | lo);
		}
		p += 64;
		if (p < end && text[p] != ' ' && text[p] != '\t')
			return km_error_set(
				err, KM_EINVAL,
				"%s:%zu: the hash is longer than 64 "
				"hex digits",
				path, line);
		while (p < end && (text[p] == ' ' || text[p] == '\t'))
			p++;
		{
			size_t u = p;

			while (p < end && text[p] != ' ' && text[p] != '\t' &&
			       text[p] != '\r')
				p++;
			if (p == u)
				return km_error_set(err, KM_EINVAL,
						    "%s:%zu: no user after the "
						    "hash",
						    path, line);
			if (!(t.user = km_arena_strndup(a, text + u, p - u)))
				return km_error_set(err, KM_ENOMEM,
						    "out of memory");
		}
		while (p < end && (text[p] == ' ' || text[p] == '\t'))
			p++;
		{
			size_t g = p;

			while (p < end && text[p] != ' ' && text[p] != '\t' &&
			       text[p] != '\r')
				p++;
			if (split_groups(a, text + g, p - g, &t.groups,
					 &t.n_groups))
				return km_error_set(err, KM_ENOMEM,
						    "out of memory");
		}
		while (p < end &&
		       (text[p] == ' ' || text[p] == '\t' || text[p] == '\r'))
			p++;
		if (p != end)
			return km_error_set(err, KM_EINVAL,
					    "%s:%zu: unexpected text after the "
					    "groups",
					    path, line);
		if (*n == cap) {
			struct token *w =
				km_arena_calloc(a, cap * 2, sizeof *w);

			if (!w)
				return km_error_set(err, KM_ENOMEM,
						    "out of memory");
			memcpy(w, v, cap * sizeof *v);
			v = w;
			cap *= 2;
		}
		v[(*n)++] = t;
		i = end + 1;
	}
	*out = v;
	return 0;
}

/* Reads the token file into a fresh arena; swaps it in on success. Called
 * with a->mu held (or before any other thread can see a). */
static int load_tokens(struct km_auth *a, struct km_error *err)
{
	const char *path = a->o.token_file;
	struct km_arena ta;
	struct token *v = NULL;
	struct stat st;
	size_t n = 0, got = 0;
	char *buf;
	FILE *f;
	int rc;

	f = fopen(path, "rbe");
	if (!f)
		return km_error_set(err, KM_EINVAL,
				    "auth.tokenFile: cannot open %s: %s", path,
				    strerror(errno));
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) ||
	    st.st_size > TOKEN_FILE_MAX) {
		fclose(f);
		return km_error_set(err, KM_EINVAL,
				    "auth.tokenFile: %s is not a regular file "
				    "of at most %d bytes",
				    path, TOKEN_FILE_MAX);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		size_t r = fread(buf + got, 1, (size_t)st.st_size - got, f);

		if (!r)
			break;
		got += r;
	}
	fclose(f);
	km_arena_init(&ta, 4096);
	rc = parse_tokens(path, buf, got, &ta, &v, &n, err);
	free(buf);
	if (rc) {
		km_arena_free(&ta);
		return rc;
	}
	km_arena_free(&a->tarena);
	a->tarena = ta;
	a->tokens = v;
	a->n_tokens = n;
	a->tstat = st;
	return 0;
}

/* Reads the token file again if it changed (looked at once a second). */
static void refresh_tokens(struct km_auth *a)
{
	struct km_error err = {0};
	int64_t now = km_mono_ns();
	struct stat st;

	if (now - a->tchecked < RECHECK_NS)
		return;
	a->tchecked = now;
	if (stat(a->o.token_file, &st) == 0 && st.st_ino == a->tstat.st_ino &&
	    st.st_dev == a->tstat.st_dev && st.st_size == a->tstat.st_size &&
	    st.st_mtim.tv_sec == a->tstat.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == a->tstat.st_mtim.tv_nsec)
		return;
	if (load_tokens(a, &err))
		km_log(KM_LOG_ERROR,
		       "the token file changed but does not "
		       "load; the tokens read before stay",
		       "err", err.msg, NULL);
	else
		km_log(KM_LOG_INFO, "token file reloaded", "file",
		       a->o.token_file, "tokens", KM_I(a->n_tokens), NULL);
}

/* ---- identities ---------------------------------------------------------- */

static bool has(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* The highest role the bindings give to any of the names or groups. */
static int role_of(const struct km_auth *a, const char *const *names,
		   size_t n_names, const char *const *groups, size_t n_groups)
{
	int role = KM_ROLE_NONE;

	for (size_t i = 0; i < a->o.n_bindings; i++) {
		const struct km_auth_binding *b = &a->o.bindings[i];
		bool hit = false;

		for (size_t k = 0; k < n_names && !hit; k++)
			hit = has(b->users, b->n_users, names[k]);
		for (size_t k = 0; k < n_groups && !hit; k++)
			hit = has(b->groups, b->n_groups, groups[k]);
		if (hit && b->role > role)
			role = b->role;
	}
	return role;
}

static void review_clear(struct review *r)
{
	free(r->why);
	km_arena_free(&r->ar);
	memset(r, 0, sizeof *r);
}

/* A deep copy of src into ar (a missing uid becomes ""). */
static int subject_copy(struct km_arena *ar, struct km_auth_subject *dst,
			const struct km_auth_subject *src)
{
	struct km_auth_extra *x;
	const char **g;

	memset(dst, 0, sizeof *dst);
	dst->user = km_arena_strdup(ar, src->user ? src->user : "");
	dst->uid = km_arena_strdup(ar, src->uid ? src->uid : "");
	g = km_arena_calloc(ar, src->n_groups + 1, sizeof *g);
	x = km_arena_calloc(ar, src->n_extra + 1, sizeof *x);
	if (!dst->user || !dst->uid || !g || !x)
		return KM_ENOMEM;
	for (size_t i = 0; i < src->n_groups; i++)
		if (!(g[i] = km_arena_strdup(ar, src->groups[i])))
			return KM_ENOMEM;
	for (size_t i = 0; i < src->n_extra; i++) {
		const struct km_auth_extra *e = &src->extra[i];

		x[i].key = km_arena_strdup(ar, e->key);
		x[i].values = km_arena_calloc(ar, e->n_values + 1,
					      sizeof *x[i].values);
		if (!x[i].key || !x[i].values)
			return KM_ENOMEM;
		for (size_t k = 0; k < e->n_values; k++)
			if (!(x[i].values[k] =
				      km_arena_strdup(ar, e->values[k])))
				return KM_ENOMEM;
		x[i].n_values = e->n_values;
	}
	dst->groups = g;
	dst->n_groups = src->n_groups;
	dst->extra = x;
	dst->n_extra = src->n_extra;
	return 0;
}

/* A token the token file does not know, through o.review: its answer is
 * kept a minute (10 s when the token is not valid) so that a client's
 * calls do not each cost the API server a review; a reviewer that cannot
 * answer is not cached. At most REVIEWS_MAX answers, the oldest made room
 * for. *who is in ar. */
static int from_review(struct km_auth *a, const unsigned char h[32],
		       const char *token, struct km_arena *ar,
		       struct km_auth_subject *who, struct km_error *err)
{
	int64_t now = km_mono_ns();
	struct review fresh = {0}, *slot = NULL;
	struct km_auth_subject got = {0};
	int rc;

	pthread_mutex_lock(&a->rmu);
	for (size_t i = 0; i < a->n_reviews; i++)
		if (CRYPTO_memcmp(h, a->reviews[i].hash, 32) == 0 &&
		    a->reviews[i].until_ns > now) {
			if (!a->reviews[i].ok)
				rc = km_error_set(err, KM_EAUTH, "%s",
						  a->reviews[i].why);
			else if ((rc = subject_copy(ar, who,
						    &a->reviews[i].who)))
				km_error_set(err, rc, "out of memory");
			pthread_mutex_unlock(&a->rmu);
			return rc;
		}
	pthread_mutex_unlock(&a->rmu);

	rc = a->o.review(a->o.review_arg, token, ar, &got, err);
	if (rc && rc != KM_EAUTH) {
		char why[KM_ERROR_MSG_MAX];

		snprintf(why, sizeof why, "%s",
			 err && err->msg[0] ? err->msg : km_strerror(rc));
		return km_error_set(err, KM_EUNAVAIL,
				    "the bearer token could not be checked: "
				    "%.400s",
				    why);
	}
	if (rc == 0 && (!got.user || !*got.user))
		return km_error_set(err, KM_EUNAVAIL,
				    "the bearer token could not be checked: "
				    "the reviewer named no user");
	if (rc == 0 && (rc = subject_copy(ar, who, &got)))
		return km_error_set(err, rc, "out of memory");
	if (rc && err && !err->msg[0])
		km_error_set(err, KM_EAUTH, "the bearer token is not valid");
	/* The answer is in ar; the cache keeps a copy of its own. */
	memcpy(fresh.hash, h, 32);
	fresh.ok = rc == 0;
	fresh.until_ns = now + (fresh.ok ? REVIEW_OK_NS : REVIEW_BAD_NS);
	km_arena_init(&fresh.ar, 256);
	if (fresh.ok ? subject_copy(&fresh.ar, &fresh.who, who) != 0
		     : !(fresh.why = strdup(err ? err->msg
						: "the bearer token is not "
						  "valid"))) {
		review_clear(&fresh);
		return rc; /* answered, not cached */
	}
	pthread_mutex_lock(&a->rmu);
	for (size_t i = 0; i < a->n_reviews && !slot; i++)
		if (CRYPTO_memcmp(h, a->reviews[i].hash, 32) == 0 ||
		    a->reviews[i].until_ns <= now)
			slot = &a->reviews[i];
	if (!slot && a->n_reviews < REVIEWS_MAX) {
		struct review *v =
			realloc(a->reviews, (a->n_reviews + 1) * sizeof *v);

		if (v) {
			a->reviews = v;
			slot = &v[a->n_reviews++];
			memset(slot, 0, sizeof *slot);
		}
	}
	if (!slot) {
		slot = &a->reviews[0];
		for (size_t i = 1; i < a->n_reviews; i++)
			if (a->reviews[i].until_ns < slot->until_ns)
				slot = &a->reviews[i];
	}
	review_clear(slot);
	*slot = fresh;
	pthread_mutex_unlock(&a->rmu);
	return rc;
}

/* ---- roles from the cluster's RBAC ---------------------------------------- */

static int feed(EVP_MD_CTX *c, const char *s)
{
	uint64_t n = s ? strlen(s) : 0;

	return EVP_DigestUpdate(c, &n, sizeof n) &&
	       EVP_DigestUpdate(c, s ? s : "", (size_t)n);
}

static int feed_n(EVP_MD_CTX *c, size_t n)
{
	uint64_t v = n;

	return EVP_DigestUpdate(c, &v, sizeof v);
}

/* What an access review asks, all of it (every string length-prefixed,
 * every list counted, so two different questions never hash alike). */
static int access_key(const struct km_auth_subject *s,
		      const struct km_auth_access *w, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		 feed(c, s->user) && feed(c, s->uid) && feed_n(c, s->n_groups);

	for (size_t i = 0; ok && i < s->n_groups; i++)
		ok = feed(c, s->groups[i]);
	ok = ok && feed_n(c, s->n_extra);
	for (size_t i = 0; ok && i < s->n_extra; i++) {
		ok = feed(c, s->extra[i].key) &&
		     feed_n(c, s->extra[i].n_values);
		for (size_t k = 0; ok && k < s->extra[i].n_values; k++)
			ok = feed(c, s->extra[i].values[k]);
	}
	ok = ok && feed(c, w->group) && feed(c, w->resource) &&
	     feed(c, w->subresource) && feed(c, w->name) && feed(c, w->ns) &&
	     feed(c, w->verb) && EVP_DigestFinal_ex(c, out, &len) && len == 32;
	EVP_MD_CTX_free(c);
	return ok ? 0 : KM_ENOMEM;
}

/* May who do role's access? 0 yes, KM_EPERM no (both kept for a while),
 * KM_EUNAVAIL when the cluster could not say (not kept). */
static int ask_access(struct km_auth *a, const struct km_auth_subject *who,
		      int role, struct km_error *err)
{
	const struct km_auth_access *w = a->access[role];
	struct km_error aerr = {0};
	struct access_answer *slot = NULL;
	unsigned char h[32];
	int64_t now = km_mono_ns(), ttl_ns;
	int rc;

	if (access_key(who, w, h))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	pthread_mutex_lock(&a->amu);
	for (size_t i = 0; i < a->n_answers; i++)
		if (CRYPTO_memcmp(h, a->answers[i].hash, 32) == 0 &&
		    a->answers[i].until_ns > now) {
			rc = a->answers[i].allowed ? 0 : KM_EPERM;
			pthread_mutex_unlock(&a->amu);
			return rc;
		}
	pthread_mutex_unlock(&a->amu);

	rc = a->o.access_review(a->o.access_review_arg, who, w, &aerr);
	if (rc && rc != KM_EPERM)
		return km_error_set(err, KM_EUNAVAIL,
				    "the role of Kubernetes user \"%.100s\" "
				    "could not be asked of the cluster "
				    "(%s: %.40s on %.100s): %.300s",
				    who->user, km_role_name(role), w->verb,
				    w->resource,
				    aerr.msg[0] ? aerr.msg : km_strerror(rc));
	ttl_ns =
		(rc ? a->o.access_denied_ms : a->o.access_allowed_ms) * 1000000;
	if (ttl_ns <= 0)
		return rc;
	pthread_mutex_lock(&a->amu);
	for (size_t i = 0; i < a->n_answers && !slot; i++)
		if (CRYPTO_memcmp(h, a->answers[i].hash, 32) == 0 ||
		    a->answers[i].until_ns <= now)
			slot = &a->answers[i];
	if (!slot && a->n_answers < KM_AUTH_ACCESS_CACHE_MAX) {
		struct access_answer *v =
			realloc(a->answers, (a->n_answers + 1) * sizeof *v);

		if (v) {
			a->answers = v;
			slot = &v[a->n_answers++];
		}
	}
	if (!slot && a->n_answers) {
		slot = &a->answers[0];
		for (size_t i = 1; i < a->n_answers; i++)
			if (a->answers[i].until_ns < slot->until_ns)
				slot = &a->answers[i];
	}
	if (slot) {
		memcpy(slot->hash, h, 32);
		slot->allowed = rc == 0;
		slot->until_ns = now + ttl_ns;
	}
	pthread_mutex_unlock(&a->amu);
	return rc;
}

/* The highest role above *role whose access the cluster allows who, asked
 * from the top (the first allowed is the answer); *role stays when none
 * is. An access that cannot be asked fails it all: a caller is never
 * given less than its due in silence. */
static int access_role(struct km_auth *a, const struct km_auth_subject *who,
		       int *role, struct km_error *err)
{
	for (int r = KM_ROLE_ADMIN; r > *role; r--) {
		int rc;

		if (!a->access[r])
			continue;
		rc = ask_access(a, who, r, err);
		if (rc == 0) {
			*role = r;
			return 0;
		}
		if (rc != KM_EPERM)
			return rc;
	}
	return 0;
}

static int from_token(struct km_auth *a, const char *token, struct km_arena *ar,
		      struct km_identity *out, struct km_error *err)
{
	unsigned char h[32];
	unsigned int hl = 0;
	size_t len = strlen(token), hit = SIZE_MAX;
	const char *user = NULL;
	struct km_auth_subject who = {0};
	int rc = 0;

	if (!len || len > TOKEN_MAX)
		return km_error_set(err, KM_EAUTH,
				    "the bearer token is empty or longer than "
				    "%d bytes",
				    TOKEN_MAX);
	EVP_Digest(token, len, h, &hl, EVP_sha256(), NULL);
	if (!a->o.token_file && a->o.review) {
		rc = from_review(a, h, token, ar, &who, err);
		goto reviewed;
	}
	if (!a->o.token_file)
		return km_error_set(err, KM_EAUTH,
				    "a bearer token came, but kubemedicd has "
				    "no auth.tokenFile to check it against");
	pthread_mutex_lock(&a->mu);
	refresh_tokens(a);
	/* Every entry is compared, whatever matched. */
	for (size_t i = 0; i < a->n_tokens; i++)
		if (CRYPTO_memcmp(h, a->tokens[i].hash, sizeof h) == 0)
			hit = i;
	if (hit != SIZE_MAX) {
		const struct token *t = &a->tokens[hit];

		user = km_arena_strdup(ar, t->user);
		out->groups = km_arena_calloc(ar, t->n_groups ? t->n_groups : 1,
					      sizeof *out->groups);
		for (size_t i = 0; out->groups && i < t->n_groups; i++)
			if (!(out->groups[i] =
				      km_arena_strdup(ar, t->groups[i])))
				rc = KM_ENOMEM;
		out->n_groups = t->n_groups;
		if (!user || !out->groups)
			rc = KM_ENOMEM;
	}
	pthread_mutex_unlock(&a->mu);
	if (rc)
		return km_error_set(err, rc, "out of memory");
	if (hit == SIZE_MAX && a->o.review) {
		rc = from_review(a, h, token, ar, &who, err);
		goto reviewed;
	}
	if (hit == SIZE_MAX)
		return km_error_set(err, KM_EAUTH,
				    "the bearer token is not known: ask an "
				    "admin for a token and its entry in "
				    "auth.tokenFile");
	out->user = user;
	out->by = "token";
	out->role = role_of(a, &out->user, 1, (const char *const *)out->groups,
			    out->n_groups);
	return 0;
reviewed:
	if (rc)
		return rc;
	out->user = who.user;
	out->groups = who.groups;
	out->n_groups = who.n_groups;
	out->by = "kube";
	out->role = role_of(a, &out->user, 1, (const char *const *)out->groups,
			    out->n_groups);
	if (!a->o.access_review)
		return 0;
	out->access = a->access;
	return access_role(a, &who, &out->role, err);
}

static int from_cert(const struct km_auth *a, const struct km_auth_request *req,
		     struct km_arena *ar, struct km_identity *out)
{
	const char **names =
		km_arena_calloc(ar, req->n_cert_names + 1, sizeof *names);
	size_t n = 0;

	if (!names)
		return KM_ENOMEM;
	/* The user is the common name, or the first alternative name of a
	 * certificate without one. */
	if (req->cert_cn && *req->cert_cn)
		names[n++] = req->cert_cn;
	for (size_t i = 0; i < req->n_cert_names; i++)
		names[n++] = req->cert_names[i];
	if (!n)
		return KM_ENOTFOUND;
	out->user = names[0];
	out->groups = (const char **)req->cert_orgs;
	out->n_groups = req->n_cert_orgs;
	out->by = "cert";
	out->role = role_of(a, names, n, req->cert_orgs, req->n_cert_orgs);
	return 0;
}

int km_auth_identify(struct km_auth *a, const struct km_auth_request *req,
		     struct km_arena *ar, struct km_identity *out,
		     struct km_error *err)
{
	int rc;

	*out = (struct km_identity){.user = "",
				    .by = "none",
				    .peer = req->peer ? req->peer : "",
				    .role = KM_ROLE_NONE};
	if (req->tls && (req->cert_cn || req->n_cert_names)) {
		rc = from_cert(a, req, ar, out);
		if (rc != KM_ENOTFOUND)
			return rc ? km_error_set(err, rc, "out of memory") : 0;
	}
	if (req->bearer)
		return from_token(a, req->bearer, ar, out, err);
	if (a->o.local_user && req->loopback && !req->tls) {
		const char *name = a->o.local_user;
		int r = role_of(a, &name, 1, NULL, 0);

		out->user = name;
		out->by = "local";
		out->role = r > a->o.local_role ? r : a->o.local_role;
	}
	return 0;
}

int km_auth_check(const struct km_identity *id, int needed, const char *what,
		  struct km_error *err)
{
	if (id->role >= needed)
		return 0;
	if (!id->user[0])
		return km_error_set(
			err, KM_EAUTH,
			"%s needs the %s role, and the call carries no "
			"credentials: present a client certificate (--tls-cert, "
			"--tls-key) or a bearer token (--token-file)",
			what, km_role_name(needed));
	km_error_set(err, KM_EPERM, "%s needs the %s role; %s \"%s\" has %s",
		     what, km_role_name(needed),
		     !strcmp(id->by, "cert")    ? "certificate"
		     : !strcmp(id->by, "token") ? "token user"
		     : !strcmp(id->by, "kube")  ? "Kubernetes user"
						: "local user",
		     id->user, id->role ? km_role_name(id->role) : "no role");
	/* What the cluster's RBAC would have to allow, in kubectl's words
	 * ("kubectl auth can-i update health.kubemedic.io"). */
	if (err && id->access && needed <= KM_ROLE_ADMIN &&
	    id->access[needed]) {
		const struct km_auth_access *w = id->access[needed];
		size_t n = strlen(err->msg);

		snprintf(err->msg + n, sizeof err->msg - n,
			 " (the cluster's RBAC gives %s to whom it allows "
			 "\"%s\" on %s%s%s%s%s%s%s%s%s)",
			 km_role_name(needed), w->verb, w->resource,
			 *w->group ? "." : "", w->group,
			 *w->subresource ? "/" : "", w->subresource,
			 *w->name ? " named " : "", w->name,
			 *w->ns ? " in namespace " : "", w->ns);
	}
	return KM_EPERM;
}

/* ---- life cycle ---------------------------------------------------------- */

int km_auth_open(const struct km_auth_options *o, struct km_auth **out,
		 struct km_error *err)
{
	struct km_auth *a = calloc(1, sizeof *a);
	int rc = 0;

	*out = NULL;
	for (int r = 0; o->access_review && r <= KM_ROLE_ADMIN; r++)
		if (o->access[r] &&
		    (r == KM_ROLE_NONE || !o->access[r]->verb ||
		     !*o->access[r]->verb || !o->access[r]->resource ||
		     !*o->access[r]->resource)) {
			free(a);
			return km_error_set(err, KM_EINVAL,
					    "the access asked for the %s role "
					    "needs a verb and a resource",
					    km_role_name(r));
		}
	if (!a)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	a->o = *o;
	km_arena_init(&a->arena, 1024);
	km_arena_init(&a->tarena, 1024);
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->rmu, NULL);
	pthread_mutex_init(&a->amu, NULL);
	for (int r = 0; !rc && r <= KM_ROLE_ADMIN; r++) {
		const struct km_auth_access *w = o->access[r];
		struct km_auth_access *c;

		if (!w || !o->access_review)
			continue;
		c = km_arena_calloc(&a->arena, 1, sizeof *c);
		if (!c ||
		    !(c->group = km_arena_strdup(&a->arena,
						 w->group ? w->group : "")) ||
		    !(c->resource = km_arena_strdup(&a->arena, w->resource)) ||
		    !(c->subresource = km_arena_strdup(
			      &a->arena,
			      w->subresource ? w->subresource : "")) ||
		    !(c->name = km_arena_strdup(&a->arena,
						w->name ? w->name : "")) ||
		    !(c->ns = km_arena_strdup(&a->arena, w->ns ? w->ns : "")) ||
		    !(c->verb = km_arena_strdup(&a->arena, w->verb)))
			rc = KM_ENOMEM;
		a->access[r] = c;
	}
	/* The options are the caller's (the config's arena): copied, so the
	 * hub of identities does not depend on their life. */
	if (o->token_file &&
	    !(a->o.token_file = km_arena_strdup(&a->arena, o->token_file)))
		rc = KM_ENOMEM;
	if (!rc && o->local_user &&
	    !(a->o.local_user = km_arena_strdup(&a->arena, o->local_user)))
		rc = KM_ENOMEM;
	if (!rc && o->n_bindings) {
		struct km_auth_binding *b =
			km_arena_calloc(&a->arena, o->n_bindings, sizeof *b);

		for (size_t i = 0; b && i < o->n_bindings; i++) {
			b[i] = o->bindings[i];
			b[i].users = km_arena_calloc(&a->arena,
						     b[i].n_users + 1,
						     sizeof *b[i].users);
			b[i].groups = km_arena_calloc(&a->arena,
						      b[i].n_groups + 1,
						      sizeof *b[i].groups);
			if (!b[i].users || !b[i].groups) {
				b = NULL;
				break;
			}
			for (size_t k = 0; k < b[i].n_users; k++)
				if (!(b[i].users[k] = km_arena_strdup(
					      &a->arena,
					      o->bindings[i].users[k])))
					rc = KM_ENOMEM;
			for (size_t k = 0; k < b[i].n_groups; k++)
				if (!(b[i].groups[k] = km_arena_strdup(
					      &a->arena,
					      o->bindings[i].groups[k])))
					rc = KM_ENOMEM;
		}
		if (!b)
			rc = KM_ENOMEM;
		a->o.bindings = b;
	}
	if (rc) {
		km_auth_close(a);
		return km_error_set(err, rc, "out of memory");
	}
	if (a->o.token_file) {
		rc = load_tokens(a, err);
		if (rc) {
			km_auth_close(a);
			return rc;
		}
		a->tchecked = km_mono_ns();
	}
	*out = a;
	return 0;
}

void km_auth_close(struct km_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_reviews; i++)
		review_clear(&a->reviews[i]);
	free(a->reviews);
	free(a->answers);
	pthread_mutex_destroy(&a->amu);
	pthread_mutex_destroy(&a->rmu);
	pthread_mutex_destroy(&a->mu);
	km_arena_free(&a->tarena);
	km_arena_free(&a->arena);
	free(a);
}

int km_auth_health_role(const struct km_auth *a)
{
	return a->o.health_role;
}
