/*
 * kubemedic.v1.AuditService: the audit trail, newest first, for admins
 * (the authorization table says so; the rows are written by
 * km_api_completed in api_auth.c).
 */
#include <string.h>

#include "api_internal.h"

#define MAX_PAGE 1000

API_HANDLER(km_api_list_audit_events)
{
	const Kubemedic__V1__ListAuditEventsRequest *r = (const void *)req;
	Kubemedic__V1__ListAuditEventsResponse *out;
	struct km_audit_query q = {0};
	struct km_audit_event *v;
	struct api_cursor cur;
	bool more, has_cur;
	uint64_t hash;
	size_t n;
	int rc;

	rc = km_api_page_size(r->page_size, MAX_PAGE, &q.limit, err);
	if (!rc)
		rc = km_api_time_bound(r->start_time, INT64_MIN, "start_time",
				       &q.from_us, err);
	if (!rc)
		rc = km_api_time_bound(r->end_time, INT64_MAX, "end_time",
				       &q.to_us, err);
	if (rc)
		return rc;
	if (q.from_us >= q.to_us)
		return km_error_set(err, KM_EINVAL,
				    "start_time: must be before end_time (the "
				    "range is [start_time, end_time))");
	q.identity = r->identity ? r->identity : "";
	q.method = r->method ? r->method : "";
	hash = km_hash_field(KM_HASH_INIT, q.identity);
	hash = km_hash_field(hash, q.method);
	hash = km_hash_i64(hash, q.from_us);
	hash = km_hash_i64(hash, q.to_us);
	rc = km_api_token_decode(r->page_token, hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;
	q.has_cursor = has_cur;
	q.cursor_us = cur.a;
	q.cursor_id = cur.b;
	rc = km_reader_list_audit(km_api_reader(ctx), &q, ctx->arena, &v, &n,
				  &more, err);
	if (rc)
		return rc;

	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListAuditEventsResponse,
			   KUBEMEDIC__V1__LIST_AUDIT_EVENTS_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->events =
		km_arena_calloc(ctx->arena, n ? n : 1, sizeof *out->events);
	if (!out->events)
		return API_OOM(err);
	for (size_t i = 0; i < n; i++) {
		Kubemedic__V1__AuditEvent *e =
			KM_ARENA_NEW(ctx->arena, Kubemedic__V1__AuditEvent,
				     KUBEMEDIC__V1__AUDIT_EVENT__INIT);

		if (!e || !(e->time = km_pb_timestamp(ctx->arena, v[i].at_us)))
			return API_OOM(err);
		e->id = v[i].id;
		e->identity = (char *)v[i].identity;
		e->authenticated_by = (char *)v[i].by;
		e->peer = (char *)v[i].peer;
		e->method = (char *)v[i].method;
		e->object = (char *)v[i].object;
		e->code = v[i].code;
		e->message = (char *)v[i].message;
		out->events[i] = e;
	}
	out->n_events = n;
	if (more) {
		struct api_cursor next = {.a = v[n - 1].at_us,
					  .b = v[n - 1].id};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}
