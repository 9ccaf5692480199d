/*
 * Who may call what: every call's identity (km_auth), the method's role
 * from the authorization table, checked before its handler runs; the
 * finer checks handlers make (a probe's type and fields); what the audit
 * trail records of each mutating call and each refusal; and what a role
 * may see of a probe's output.
 */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "km_log.h"
#include "km_time.h"

/* The short name of a method for messages: "ProbeService/CreateProbe". */
static const char *short_name(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

int km_api_authorize(void *arg, struct km_rpc_ctx *ctx,
		     const struct km_rpc_method *m, const ProtobufCMessage *req,
		     struct km_error *err)
{
	struct km_api *api = arg;
	struct km_identity *id;
	struct km_rpc_peer peer;
	struct km_auth_request ar;
	int rc;

	(void)req;
	if (!api->auth)
		return 0;
	id = km_arena_alloc(ctx->arena, sizeof *id);
	if (!id || km_rpc_call_peer(ctx->call, ctx->arena, &peer))
		return API_OOM(err);
	ar = (struct km_auth_request){
		.peer = peer.address,
		.loopback = peer.loopback,
		.tls = peer.tls,
		.cert_cn = peer.cert_cn,
		.cert_names = peer.cert_names,
		.n_cert_names = peer.n_cert_names,
		.cert_orgs = peer.cert_orgs,
		.n_cert_orgs = peer.n_cert_orgs,
		.bearer = peer.bearer,
	};
	rc = km_auth_identify(api->auth, &ar, ctx->arena, id, err);
	/* Even a caller whose token is refused has an identity for the
	 * audit trail: anonymous, from its address. */
	ctx->identity = id;
	if (rc)
		return rc;
	return km_auth_check(id, api->method_auth[m - api->methods].role,
			     short_name(m->path), err);
}

const struct km_identity *km_api_identity(const struct km_rpc_ctx *ctx)
{
	static const struct km_identity everyone = {.user = "",
						    .by = "none",
						    .peer = "",
						    .role = KM_ROLE_ADMIN};

	/* Without km_auth (handlers under test) every call may do all. */
	return ctx->identity ? ctx->identity : &everyone;
}

int km_api_check_probe(const struct km_rpc_ctx *ctx, const struct km_probe *p,
		       struct km_error *err)
{
	const char *why;
	int needed = km_auth_probe_role(p, &why);

	return km_auth_check(km_api_identity(ctx), needed, why, err);
}

bool km_api_may_see_output(const struct km_rpc_ctx *ctx, int probe_type)
{
	return (probe_type != KM_PROBE_EXEC && probe_type != KM_PROBE_FILE) ||
	       km_api_identity(ctx)->role >= KM_ROLE_ADMIN;
}

const char km_api_hidden_output[] =
	"(the output of exec and file probes is shown to admins only)";

/* ---- the audit trail ---------------------------------------------------- */

/* The object a request names, for the audit trail: its `name`, `target`
 * or `probe.name` field, if it has one. */
static const char *object_of(const ProtobufCMessage *m)
{
	static const char *const fields[] = {"name", "target", "service"};
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;

	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
		f = protobuf_c_message_descriptor_get_field_by_name(d,
								    fields[i]);
		if (f && f->type == PROTOBUF_C_TYPE_STRING &&
		    f->label != PROTOBUF_C_LABEL_REPEATED) {
			const char *v = *(const char *const *)((const char *)m +
							       f->offset);
			if (v && *v)
				return v;
		}
	}
	f = protobuf_c_message_descriptor_get_field_by_name(d, "probe");
	if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	    f->label != PROTOBUF_C_LABEL_REPEATED) {
		const ProtobufCMessage *sub =
			*(const ProtobufCMessage *const *)((const char *)m +
							   f->offset);
		if (sub)
			return object_of(sub);
	}
	return "";
}

void km_api_completed(void *arg, struct km_rpc_ctx *ctx,
		      const struct km_rpc_method *m,
		      const ProtobufCMessage *req, int rc,
		      const struct km_error *err)
{
	struct km_api *api = arg;
	const struct km_identity *id = ctx->identity;
	bool refused = rc == KM_EAUTH || rc == KM_EPERM;
	struct km_audit_event ev;
	struct km_error werr = {0};

	if (!api->auth || !id)
		return;
	if (!refused && !api->method_auth[m - api->methods].mutates)
		return;
	ev = (struct km_audit_event){
		.at_us = km_now_us(),
		.identity = id->user,
		.by = id->by,
		/* A TLS caller's address is looked up only now. */
		.peer = *id->peer ? id->peer
				  : km_rpc_call_address(ctx->call, ctx->arena),
		.method = m->path,
		.object = object_of(req),
		.code = (int)km_rpc_status_from_err(rc),
		.message = rc && err ? err->msg : "",
	};
	/* A change is on record before its answer leaves; a refusal is
	 * queued (a flood of them must not slow the writer's callers, and
	 * beyond a bound they are counted, not kept). */
	if (refused) {
		km_store_add_audit(api->store, &ev);
	} else if (km_store_audit(api->store, &ev, &werr)) {
		km_log(KM_LOG_ERROR,
		       "a change was made but its audit record "
		       "could not be written",
		       "method", m->path, "identity", id->user, "err", werr.msg,
		       NULL);
	}
}
