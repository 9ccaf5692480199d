/*
 * kubemedic.v1.ProbeService: probe definitions, persisted through the
 * store's writer (committed before the reply leaves), then handed to the
 * health hub (the probe's target, its thresholds) and the probe engine
 * (its schedule), in that order: the hub must know a target before the
 * first result of it arrives.
 *
 * A probe that comes through here is held to the API's probe policy (what
 * it may touch: km_probe_check_policy) and its caFile must be a file that
 * will do, both before it is stored (check_admissible).
 */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "km_hash.h"
#include "km_log.h"
#include "km_probe.h"
#include "km_prober.h"

/* The definition is committed; the hub and the engine take it at once.
 * If they cannot (out of memory), the probe runs from the next start; say
 * so. */
static void apply(struct km_api *api, const struct km_probe *p)
{
	char name[300];
	struct km_health_target t = {
		.id = p->target_id,
		.name = name,
		.labels = p->labels,
		.n_labels = p->n_labels,
		.success_threshold = p->success_threshold,
		.failure_threshold = p->failure_threshold,
		.created_us = p->create_us,
		.private_output = p->type == KM_PROBE_EXEC ||
				  p->type == KM_PROBE_FILE,
	};

	snprintf(name, sizeof name, "probe//%s", p->name);
	if (km_health_track(api->health, &t) ||
	    (api->prober && km_prober_upsert(api->prober, p)))
		km_log(KM_LOG_ERROR,
		       "probe stored but not scheduled: out of "
		       "memory; it runs after a restart",
		       "probe", p->name, NULL);
}

static int check_name(const char *name, struct km_error *err)
{
	if (!name || !*name)
		return km_error_set(err, KM_EINVAL, "name: Required value");
	if (!km_is_dns1123_subdomain(name))
		return km_error_set(err, KM_EINVAL,
				    "name: Invalid value: \"%s\": probe names "
				    "are lower-case RFC 1123 subdomains",
				    name);
	return 0;
}

/* What the config allows a probe of the API to touch, and its caFile:
 * checked after the probe's own rules (so a malformed probe is
 * INVALID_ARGUMENT whatever it names), before it is stored. */
static int check_admissible(struct km_api *api, const struct km_probe *p,
			    struct km_error *err)
{
	static const struct km_field_ctx fc = {KM_FIELDS_API, "probe"};
	int rc = km_probe_check_policy(p, api->probe_policy, err);

	return rc ? rc : km_probe_check_ca_file(p, &fc, err);
}

/* An exec probe's environment is where its secrets go: its values are
 * shown to those who may see its output (admins). */
static Kubemedic__V1__Probe *probe_to_pb(struct km_rpc_ctx *ctx,
					 const struct km_probe *p)
{
	Kubemedic__V1__Probe *pb = km_probe_to_pb(p, ctx->arena);

	if (pb && pb->exec && !km_api_may_see_output(ctx, p->type))
		for (size_t i = 0; i < pb->exec->n_env; i++)
			pb->exec->env[i]->value = "(hidden: admins only)";
	return pb;
}

static int reply_probe(struct km_rpc_ctx *ctx, const struct km_probe *p,
		       ProtobufCMessage **resp, struct km_error *err)
{
	Kubemedic__V1__Probe *pb = probe_to_pb(ctx, p);

	if (!pb)
		return API_OOM(err);
	*resp = &pb->base;
	return 0;
}

/* The caller may change (or delete) the stored probe of that name only
 * with the role its definition needs: an operator can neither turn an
 * admin's exec probe into something else nor delete it. A probe that is
 * not there is the store's to report. */
static int check_stored(struct km_rpc_ctx *ctx, const char *name,
			struct km_error *err)
{
	struct km_probe cur;

	if (km_reader_get_probe(km_api_reader(ctx), name, ctx->arena, &cur,
				NULL))
		return 0;
	return km_api_check_probe(ctx, &cur, err);
}

API_HANDLER(km_api_create_probe)
{
	const Kubemedic__V1__CreateProbeRequest *r = (const void *)req;
	struct km_probe p;
	int rc;

	if (!r->probe)
		return km_error_set(err, KM_EINVAL, "probe: Required value");
	rc = km_probe_from_pb(r->probe, ctx->arena, &p, err);
	if (!rc)
		rc = km_api_check_probe(ctx, &p, err);
	if (!rc)
		rc = check_admissible(API_OF(ctx), &p, err);
	if (rc)
		return rc;
	p.source = KM_SOURCE_API;
	p.created_by = km_api_identity(ctx) ? km_api_identity(ctx)->user : NULL;
	pthread_mutex_lock(&API_OF(ctx)->quota_mu);
	rc = km_api_probe_quota(ctx, p.created_by, err);
	if (!rc)
		rc = km_store_create_probe(API_OF(ctx)->store, &p, err);
	pthread_mutex_unlock(&API_OF(ctx)->quota_mu);
	if (rc)
		return rc;
	apply(API_OF(ctx), &p);
	return reply_probe(ctx, &p, resp, err);
}

API_HANDLER(km_api_get_probe)
{
	const Kubemedic__V1__GetProbeRequest *r = (const void *)req;
	struct km_probe p;
	int rc = check_name(r->name, err);

	if (rc)
		return rc;
	rc = km_reader_get_probe(km_api_reader(ctx), r->name, ctx->arena, &p,
				 err);
	if (rc)
		return rc;
	return reply_probe(ctx, &p, resp, err);
}

static bool match_probe(const struct km_probe *p, void *sel)
{
	return km_selector_matches(sel, p->labels, p->n_labels);
}

API_HANDLER(km_api_list_probes)
{
	const Kubemedic__V1__ListProbesRequest *r = (const void *)req;
	Kubemedic__V1__ListProbesResponse *out;
	struct km_selector *sel = NULL;
	struct api_cursor cur;
	struct km_probe *v;
	size_t limit, n;
	bool more, has_cur;
	uint64_t hash;
	int rc;

	rc = km_api_page_size(r->page_size, 1000, &limit, err);
	if (rc)
		return rc;
	rc = km_api_check_selector(API_OF(ctx), "label_selector",
				   r->label_selector, err);
	if (rc)
		return rc;
	rc = km_api_parse_selector(r->label_selector, ctx->arena, &sel, err);
	if (rc)
		return rc;
	hash = km_hash_field(KM_HASH_INIT, r->label_selector);
	rc = km_api_token_decode(r->page_token, hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;
	rc = km_reader_list_probes(km_api_reader(ctx), has_cur ? cur.s : NULL,
				   limit,
				   km_selector_empty(sel) ? NULL : match_probe,
				   sel, ctx->arena, &v, &n, &more, err);
	if (rc)
		return rc;

	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListProbesResponse,
			   KUBEMEDIC__V1__LIST_PROBES_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->probes =
		km_arena_calloc(ctx->arena, n ? n : 1, sizeof *out->probes);
	if (!out->probes)
		return API_OOM(err);
	for (size_t i = 0; i < n; i++) {
		out->probes[i] = probe_to_pb(ctx, &v[i]);
		if (!out->probes[i])
			return API_OOM(err);
	}
	out->n_probes = n;
	if (more) {
		struct api_cursor next = {.s = v[n - 1].name};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}

API_HANDLER(km_api_update_probe)
{
	const Kubemedic__V1__UpdateProbeRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct km_probe p;
	bool changed;
	int rc;

	if (!r->probe)
		return km_error_set(err, KM_EINVAL, "probe: Required value");
	if (r->probe->generation < 0)
		return km_error_set(err, KM_EINVAL,
				    "probe.generation: must be 0 (any) or the "
				    "generation last read");
	rc = km_probe_from_pb(r->probe, ctx->arena, &p, err);
	if (!rc)
		rc = km_api_check_probe(ctx, &p, err);
	if (!rc)
		rc = check_admissible(api, &p, err);
	if (!rc)
		rc = check_stored(ctx, p.name, err);
	if (rc)
		return rc;
	rc = km_store_update_probe(api->store, &p, r->probe->generation, false,
				   &changed, err);
	if (rc)
		return rc;
	if (changed)
		apply(api, &p);
	return reply_probe(ctx, &p, resp, err);
}

API_HANDLER(km_api_delete_probe)
{
	const Kubemedic__V1__DeleteProbeRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	Kubemedic__V1__DeleteProbeResponse *out;
	int rc = check_name(r->name, err);

	if (!rc)
		rc = check_stored(ctx, r->name, err);
	if (rc)
		return rc;
	/* The deletion is a transition, committed with it and published by
	 * the hub (which then forgets the target) before this returns. */
	rc = km_store_delete_probe(api->store, r->name, false,
				   "probe deleted through the API", err);
	if (rc)
		return rc;
	if (api->prober && km_prober_remove(api->prober, r->name))
		km_log(KM_LOG_ERROR,
		       "probe deleted but still scheduled: out "
		       "of memory; its results are dropped",
		       "probe", r->name, NULL);
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__DeleteProbeResponse,
			   KUBEMEDIC__V1__DELETE_PROBE_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	*resp = &out->base;
	return 0;
}
