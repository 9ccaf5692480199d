/*
 * libFuzzer target: every request of every service, read as the server
 * reads it. The first byte picks a method among those of the generated
 * service descriptors (ProbeService, HealthService, RecoveryService,
 * AuditService, grpc.health.v1.Health, server reflection v1 and v1alpha:
 * every method kubemedicd registers); the rest is the request's bytes. They go through
 * km_pb_decode (the server's unpack within a memory budget, and its check
 * of every string field), then through the pure part of the method's
 * handler: names, target names, page sizes, time bounds, selectors
 * (km_selector_check_size, then the parser and matching), page tokens,
 * watch filters and probe definitions (km_probe_from_pb).
 *
 * Checks beyond "no crash, leak or undefined behaviour":
 *  - decoding returns 0, KM_EINVAL or KM_EFULL with a message; what it
 *    calls malformed protobuf-c refuses too (but for field numbers outside
 *    1..2^29-1, which protobuf-c keeps as unknown fields and km_pbcheck
 *    refuses), and what protobuf-c refuses it never accepts; the arena
 *    holds at most the budget after it;
 *  - every string of a decoded request is UTF-8; packed again, the request
 *    passes the string check and decodes again;
 *  - each validation returns 0 or KM_EINVAL with a message; a selector
 *    refused for its size is named by its field and limit;
 *  - a probe definition that is accepted converts back to the API's form,
 *    packs, unpacks and is accepted again as the same definition;
 *  - a page token that is accepted encodes again to one that decodes to
 *    the same cursor.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "fuzz_check.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "kubemedic/v1/audit.pb-c.h"
#include "km_hash.h"
#include "km_limits.h"
#include "km_pbcheck.h"
#include "km_probe.h"

#define BUDGET (64u << 10) /* small, so that the fuzzer reaches it */

/* Appended to, never reordered: the seeds' first byte depends on it. */
static const ProtobufCServiceDescriptor *const services[] = {
	&kubemedic__v1__probe_service__descriptor,
	&kubemedic__v1__health_service__descriptor,
	&kubemedic__v1__recovery_service__descriptor,
	&grpc__health__v1__health__descriptor,
	&grpc__reflection__v1__server_reflection__descriptor,
	&grpc__reflection__v1alpha__server_reflection__descriptor,
	&kubemedic__v1__audit_service__descriptor,
};

static const struct km_kv label_sets[][3] = {
	{{"team", "shop"}, {"tier", "web"}, {"a", ""}},
	{{"app.kubernetes.io/name", "cart"}, {"in", "notin"}, {"x", "1"}},
};

/* The method of index i over every service, NULL past the last. */
static const ProtobufCMethodDescriptor *method_at(size_t i)
{
	for (size_t s = 0; s < sizeof services / sizeof services[0]; s++) {
		if (i < services[s]->n_methods)
			return &services[s]->methods[i];
		i -= services[s]->n_methods;
	}
	return NULL;
}

static size_t n_methods(void)
{
	size_t n = 0;

	for (size_t s = 0; s < sizeof services / sizeof services[0]; s++)
		n += services[s]->n_methods;
	return n;
}

static void check_err(int rc, const struct km_error *err)
{
	CHECK(rc == 0 || rc == KM_EINVAL || rc == KM_ENOMEM);
	if (rc) {
		CHECK(err->code == rc);
		CHECK(strnlen(err->msg, sizeof err->msg) < sizeof err->msg);
		CHECK(err->msg[0] != '\0');
	}
}

/* ---- what decoding gives ------------------------------------------------- */

static void check_strings_utf8(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	CHECK(depth <= KM_PB_MAX_DEPTH);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t count = 1;

		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m +
					f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)m +
						  f->quantifier_offset);
			base = *(const char *const *)base;
		}
		for (size_t k = 0; k < count; k++) {
			const void *v = ((const void *const *)base)[k];

			if (!v)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				size_t n = strlen(v);

				CHECK(km_utf8_invalid_at(v, n) == n);
			} else {
				check_strings_utf8(v, depth + 1);
			}
		}
	}
}

/* Packed again, the request passes the string check and decodes again. */
static void check_repack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	struct km_error err = {0};
	ProtobufCMessage *again;
	struct km_arena a;

	if (!buf)
		return;
	CHECK(protobuf_c_message_pack(m, buf) == n);
	CHECK(km_pb_check_strings(m->descriptor, buf, n, &err) == 0);
	km_arena_init(&a, 0);
	CHECK(km_pb_decode(m->descriptor, buf, n, &a, 0, &again, &err) == 0);
	km_arena_free(&a);
	free(buf);
}

/* ---- the handlers' pure parts --------------------------------------------- */

static void check_selector(const char *s, struct km_arena *a)
{
	const struct km_limits l = KM_LIMITS_DEFAULTS;
	struct km_selector *sel;
	struct km_error err = {0};
	int rc;

	rc = km_selector_check_size(s, l.max_selector_bytes,
				    l.max_selector_requirements,
				    "label_selector", &err);
	check_err(rc, &err);
	if (rc) {
		CHECK(!strncmp(err.msg, "label_selector: the selector ", 29));
		CHECK(strstr(err.msg, "(limits.maxSelector"));
		return;
	}
	rc = km_selector_parse(s, a, &sel, &err);
	check_err(rc, &err);
	if (rc)
		return;
	for (size_t i = 0; i < sizeof label_sets / sizeof label_sets[0]; i++)
		(void)km_selector_matches(sel, label_sets[i], 3);
	CHECK(km_selector_matches(sel, NULL, 0) || !km_selector_empty(sel));
}

static void check_target(const char *name)
{
	struct km_target_name tn;
	char why[256];

	if (km_target_name_parse(name ? name : "", &tn, why, sizeof why))
		CHECK(strnlen(why, sizeof why) < sizeof why);
}

static void check_token(const char *token, uint64_t hash, struct km_arena *a)
{
	struct api_cursor c, back;
	struct km_error err = {0};
	bool present;
	char *again;
	int rc;

	rc = km_api_token_decode(token ? token : "", hash, a, &c, &present,
				 &err);
	check_err(rc, &err);
	if (rc || !present)
		return;
	again = km_api_token_encode(a, hash, &c);
	if (!again)
		return;
	CHECK(km_api_token_decode(again, hash, a, &back, &present, &err) == 0);
	CHECK(present && back.a == c.a && back.b == c.b);
	CHECK(!strcmp(back.s, c.s));
}

static void check_page_size(int32_t n)
{
	struct km_error err = {0};
	size_t limit;

	check_err(km_api_page_size(n, 1000, &limit, &err), &err);
}

static void check_time(const Google__Protobuf__Timestamp *ts)
{
	struct km_error err = {0};
	int64_t us;

	check_err(km_api_time_bound(ts, 0, "start_time", &us, &err), &err);
}

static void check_probe(const Kubemedic__V1__Probe *pb, struct km_arena *a)
{
	struct km_probe p, p2;
	struct km_error err = {0};
	Kubemedic__V1__Probe *out, *back;
	uint8_t *buf;
	size_t n;
	int rc;

	if (!pb)
		return;
	rc = km_probe_from_pb(pb, a, &p, &err);
	check_err(rc, &err);
	if (rc)
		return;
	if (!(out = km_probe_to_pb(&p, a)))
		return;
	n = protobuf_c_message_get_packed_size(&out->base);
	buf = malloc(n ? n : 1);
	if (!buf)
		return;
	protobuf_c_message_pack(&out->base, buf);
	back = kubemedic__v1__probe__unpack(NULL, n, buf);
	CHECK(back != NULL);
	CHECK(km_probe_from_pb(back, a, &p2, &err) == 0);
	CHECK(km_probe_spec_equal(&p, &p2));
	kubemedic__v1__probe__free_unpacked(back, NULL);
	free(buf);
}

static void check_handler(const ProtobufCMessage *m, struct km_arena *a)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const struct km_limits l = KM_LIMITS_DEFAULTS;

	if (d == &kubemedic__v1__create_probe_request__descriptor) {
		check_probe(
			((const Kubemedic__V1__CreateProbeRequest *)m)->probe,
			a);
	} else if (d == &kubemedic__v1__update_probe_request__descriptor) {
		check_probe(
			((const Kubemedic__V1__UpdateProbeRequest *)m)->probe,
			a);
	} else if (d == &kubemedic__v1__get_probe_request__descriptor) {
		(void)km_is_dns1123_subdomain(
			((const Kubemedic__V1__GetProbeRequest *)m)->name);
	} else if (d == &kubemedic__v1__delete_probe_request__descriptor) {
		(void)km_is_dns1123_subdomain(
			((const Kubemedic__V1__DeleteProbeRequest *)m)->name);
	} else if (d == &kubemedic__v1__list_probes_request__descriptor) {
		const Kubemedic__V1__ListProbesRequest *r = (const void *)m;

		check_page_size(r->page_size);
		check_selector(r->label_selector, a);
		check_token(r->page_token,
			    km_hash_field(KM_HASH_INIT, r->label_selector), a);
	} else if (d == &kubemedic__v1__get_health_request__descriptor) {
		check_target(
			((const Kubemedic__V1__GetHealthRequest *)m)->target);
	} else if (d == &kubemedic__v1__list_targets_request__descriptor) {
		const Kubemedic__V1__ListTargetsRequest *r = (const void *)m;

		check_page_size(r->page_size);
		check_selector(r->label_selector, a);
		check_token(r->page_token,
			    km_hash_field(KM_HASH_INIT, r->label_selector), a);
	} else if (d ==
		   &kubemedic__v1__query_probe_history_request__descriptor) {
		const Kubemedic__V1__QueryProbeHistoryRequest *r =
			(const void *)m;

		check_target(r->target);
		check_time(r->start_time);
		check_time(r->end_time);
		check_page_size(r->page_size);
		check_token(r->page_token,
			    km_hash_field(KM_HASH_INIT, r->target), a);
	} else if (d == &kubemedic__v1__query_transitions_request__descriptor) {
		const Kubemedic__V1__QueryTransitionsRequest *r =
			(const void *)m;

		check_target(r->target);
		check_time(r->start_time);
		check_time(r->end_time);
		check_page_size(r->page_size);
		check_token(r->page_token,
			    km_hash_field(KM_HASH_INIT, r->target), a);
	} else if (d == &kubemedic__v1__get_availability_request__descriptor) {
		const Kubemedic__V1__GetAvailabilityRequest *r =
			(const void *)m;

		if (r->target && *r->target)
			check_target(r->target);
		check_time(r->start_time);
		check_time(r->end_time);
		check_selector(r->label_selector, a);
	} else if (d == &kubemedic__v1__query_latency_request__descriptor) {
		const Kubemedic__V1__QueryLatencyRequest *r = (const void *)m;

		check_target(r->target);
		check_time(r->start_time);
		check_time(r->end_time);
	} else if (d == &kubemedic__v1__watch_health_request__descriptor) {
		const Kubemedic__V1__WatchHealthRequest *r = (const void *)m;

		check_selector(r->label_selector, a);
		if ((int64_t)r->n_targets <= l.max_watch_targets)
			for (size_t i = 0; i < r->n_targets; i++)
				check_target(r->targets[i]);
	} else if (d == &kubemedic__v1__list_audit_events_request__descriptor) {
		const Kubemedic__V1__ListAuditEventsRequest *r =
			(const void *)m;

		check_time(r->start_time);
		check_time(r->end_time);
		check_page_size(r->page_size);
		check_token(r->page_token,
			    km_hash_field(KM_HASH_INIT, r->identity), a);
	} else if (d == &grpc__health__v1__health_check_request__descriptor) {
		const Grpc__Health__V1__HealthCheckRequest *r = (const void *)m;

		if (r->service && *r->service)
			check_target(r->service);
	}
	/* The rest of RecoveryService and reflection: decoding is all the
	 * server does before its own checks. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMethodDescriptor *md;
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m = NULL, *plain;
	struct km_error err = {0};
	struct km_arena a;
	int rc;

	if (size < 1)
		return 0;
	md = method_at(data[0] % n_methods());
	CHECK(md != NULL);
	d = md->input;
	data++;
	size--;

	km_arena_init(&a, 4096);
	rc = km_pb_decode(d, data, size, &a, BUDGET, &m, &err);
	CHECK(rc == 0 || rc == KM_EINVAL || rc == KM_EFULL);
	CHECK(a.used <= BUDGET);
	plain = protobuf_c_message_unpack(d, NULL, size, data);
	if (rc) {
		CHECK(m == NULL && err.code == rc && err.msg[0]);
		CHECK(strnlen(err.msg, sizeof err.msg) < sizeof err.msg);
		/* Malformed for protobuf-c too; or a field number protobuf
		 * does not allow, which protobuf-c keeps as unknown. */
		if (strstr(err.msg, "malformed request: not a valid"))
			CHECK(plain == NULL);
	} else {
		CHECK(m != NULL && plain != NULL);
		check_strings_utf8(m, 1);
		check_repack(m);
		check_handler(m, &a);
	}
	if (plain)
		protobuf_c_message_free_unpacked(plain, NULL);
	km_arena_free(&a);
	return 0;
}
