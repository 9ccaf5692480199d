/*
 * What a caller may ask for (the config's limits:, km_limits.h): label
 * selectors and watch filters measured before anything is parsed, and the
 * quota on probes. The transport's bounds (deadlines, streams, request
 * memory) are km_rpc's; km_api.c hands them over.
 *
 * Why before parsing: the cost of a selector is paid again for every
 * probe or target a list scans (a 3.5 MB one cost seconds per ListProbes
 * and held up the calls queued behind it), and parsing it is already
 * linear in its size. Measuring (km_selector_check_size, with the
 * selector's parser in probe/, where the request fuzz target calls it
 * too) is one pass over the bytes, with no allocation.
 */
#include "api_internal.h"

#include <string.h>

int km_api_check_selector(const struct km_api *api, const char *field,
			  const char *s, struct km_error *err)
{
	return km_selector_check_size(s, api->limits.max_selector_bytes,
				      api->limits.max_selector_requirements,
				      field, err);
}

int km_api_parse_selector(const char *s, struct km_arena *a,
			  struct km_selector **out, struct km_error *err)
{
	int rc = km_selector_parse(s, a, out, err);

	if (rc && !strstr(err->msg, "label_selector"))
		km_error_prefix(err, "label_selector");
	return rc;
}

int km_api_check_identity(const char *ns, const char *node, const char *owner,
			  const char *uid, struct km_error *err)
{
	const char *const v[] = {ns, node, owner, uid};
	static const char *const names[] = {"namespace", "node", "owner",
					    "uid"};

	for (size_t i = 0; i < 4; i++)
		if (v[i] && strlen(v[i]) > KM_API_IDENTITY_MAX)
			return km_error_set(err, KM_EINVAL,
					    "%s: %zu bytes; a target's %s is "
					    "at most %d",
					    names[i], strlen(v[i]), names[i],
					    KM_API_IDENTITY_MAX);
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

	rc = km_reader_count_probes(km_api_reader(ctx), NULL, &n, err);
	if (rc)
		return rc;
	if (n >= api->limits.max_probes)
		return km_error_set(err, KM_EFULL,
				    "probe: %lld probes exist; this server "
				    "takes at most %lld (limits.maxProbes): "
				    "delete one first",
				    (long long)n,
				    (long long)api->limits.max_probes);
	/* Anonymous callers have no quota of their own; where they may
	 * create probes at all, maxProbes bounds them. */
	if (!owner || !*owner)
		return 0;
	rc = km_reader_count_probes(km_api_reader(ctx), owner, &n, err);
	if (rc)
		return rc;
	if (n >= api->limits.max_probes_per_identity)
		return km_error_set(
			err, KM_EFULL,
			"probe: \"%s\" has created %lld probes; "
			"one identity may create at most %lld "
			"(limits.maxProbesPerIdentity): delete one "
			"of them first",
			owner, (long long)n,
			(long long)api->limits.max_probes_per_identity);
	return 0;
}
