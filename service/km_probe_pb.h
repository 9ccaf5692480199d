/*
 * km_probe_pb — a probe definition between its two forms: struct km_probe
 * (km_model.h) and the API's kubemedic.v1.Probe.
 *
 * Shared by the API (requests in, answers out) and the CLI (probes read
 * from YAML go out as requests), so a probe means the same on both sides.
 * Everything is allocated in the arena given.
 */
#ifndef KM_PROBE_PB_H
#define KM_PROBE_PB_H

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"
#include "kubemedic/v1/probe.pb-c.h"

/* Reads and validates pb (the kubelet's rules and kubemedic's, see
 * km_probe_spec.h); KM_EINVAL names the field as the .proto does
 * ("probe.http_get.port: ..."). Output-only fields are ignored. */
int km_probe_from_pb(const Kubemedic__V1__Probe *pb, struct km_arena *a,
		     struct km_probe *out, struct km_error *err);
/* The message for p, output-only fields (source, target, generation,
 * times) included; NULL on out-of-memory. */
Kubemedic__V1__Probe *km_probe_to_pb(const struct km_probe *p,
				     struct km_arena *a);

#endif
