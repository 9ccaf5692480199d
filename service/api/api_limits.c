/*
 * What a caller may ask for (the config's limits:, km_limits.h): label
 * selectors and watch filters measured before anything is parsed, and the
 * quota on probes. The transport's bounds (deadlines, streams, request
 * memory) are km_rpc's; km_api.c hands them over.
 *
 * Why before parsing: the cost of a selector is paid again for every
 * probe or target a list scans (a 3.5 MB one cost seconds per ListProbes
 * and held up the calls queued behind it), and parsing it is already
 * linear in its size. Measuring is one pass over the bytes, with no
 * allocation.
 */
#include <string.h>

#include "api_internal.h"

/* An upper bound on the requirements of selector s: one more than its
 * commas outside parentheses (commas inside separate the values of an
 * "in" or "notin" list). Exact for any selector that parses. */
static size_t count_requirements(const char *s, size_t n)
{
	size_t reqs = 1;
	int depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && depth > 0)
			depth--;
		else if (s[i] == ',' && depth == 0)
			reqs++;
	}
	return reqs;
}

int km_api_check_selector(const struct km_api *api, const char *field,
			  const char *s, struct km_error *err)
{
	const struct km_limits *l = &api->limits;
	size_t n = s ? strlen(s) : 0, reqs;

	if (!n)
		return 0;
	if ((int64_t)n > l->max_selector_bytes)
		return km_error_set(err, KM_EINVAL,
				    "%s: the selector is %zu bytes long; this "
				    "server takes at most %lld "
				    "(limits.maxSelectorBytes)",
				    field, n, (long long)l->max_selector_bytes);
	reqs = count_requirements(s, n);
	if ((int64_t)reqs > l->max_selector_requirements)
		return km_error_set(err, KM_EINVAL,
				    "%s: the selector has %zu requirements; "
				    "this server takes at most %lld "
				    "(limits.maxSelectorRequirements)",
				    field, reqs,
				    (long long)l->max_selector_requirements);
	return 0;
}

int km_api_check_targets(const struct km_api *api, const char *field, size_t n,
			 struct km_error *err)
{
	if ((int64_t)n > api->limits.max_watch_targets)
		return km_error_set(err, KM_EINVAL,
				    "%s: %zu targets; a watch takes at most "
				    "%lld (limits.maxWatchTargets): watch by "
				    "label selector instead",
				    field, n,
				    (long long)api->limits.max_watch_targets);
	return 0;
}

int km_api_probe_quota(struct km_rpc_ctx *ctx, const char *owner,
		       struct km_error *err)
{
	struct km_api *api = API_OF(ctx);
	int64_t n;
	int rc;

	/* A per-identity quota will count the owner's probes here (a count
	 * by owner from the store, once probes record who created them)
	 * against its own limit. */
	(void)owner;
	rc = km_reader_count_probes(km_api_reader(ctx), &n, err);
	if (rc)
		return rc;
	if (n >= api->limits.max_probes)
		return km_error_set(err, KM_EFULL,
				    "probe: %lld probes exist; this server "
				    "takes at most %lld (limits.maxProbes): "
				    "delete one first",
				    (long long)n,
				    (long long)api->limits.max_probes);
	return 0;
}
