/*
 * The authorization table: every method, probe type and privileged probe
 * field, and the role it needs. The one place to look, and the one place
 * to change: a method missing here is refused to everyone (and
 * tests/unit/test_auth.c fails, naming it).
 *
 * The rule of thumb: reading and watching is viewer; changing what is
 * probed over the network (and, next, acting on the cluster) is operator;
 * anything that runs a command, reads a file of the daemon's host, or
 * shows who did what is admin.
 */
#include <stdbool.h>
#include <string.h>

#include "km_auth.h"

#define KM "/kubemedic.v1."
#define HEALTH_ROLE (-1) /* what the configuration says (auth.healthRole) */

static const struct rule {
	const char *path;
	int role;
	bool mutates; /* recorded in the audit trail when it succeeds too */
} rules[] = {
	{KM "ProbeService/CreateProbe", KM_ROLE_OPERATOR, true},
	{KM "ProbeService/GetProbe", KM_ROLE_VIEWER},
	{KM "ProbeService/ListProbes", KM_ROLE_VIEWER},
	{KM "ProbeService/UpdateProbe", KM_ROLE_OPERATOR, true},
	{KM "ProbeService/DeleteProbe", KM_ROLE_OPERATOR, true},

	{KM "HealthService/GetHealth", KM_ROLE_VIEWER},
	{KM "HealthService/ListTargets", KM_ROLE_VIEWER},
	{KM "HealthService/QueryProbeHistory", KM_ROLE_VIEWER},
	{KM "HealthService/QueryTransitions", KM_ROLE_VIEWER},
	{KM "HealthService/QueryLatency", KM_ROLE_VIEWER},
	{KM "HealthService/WatchHealth", KM_ROLE_VIEWER},
	{KM "HealthService/GetAvailability", KM_ROLE_VIEWER},

	{KM "RecoveryService/RequestRecovery", KM_ROLE_OPERATOR, true},
	{KM "RecoveryService/GetRecovery", KM_ROLE_VIEWER},
	{KM "RecoveryService/ListRecoveries", KM_ROLE_VIEWER},
	{KM "RecoveryService/CancelRecovery", KM_ROLE_OPERATOR, true},
	{KM "RecoveryService/WatchRecoveries", KM_ROLE_VIEWER},
	{KM "RecoveryService/ListStorms", KM_ROLE_VIEWER},
	{KM "RecoveryService/ListPolicies", KM_ROLE_VIEWER},

	{KM "AuditService/ListAuditEvents", KM_ROLE_ADMIN},

	{"/grpc.health.v1.Health/Check", HEALTH_ROLE},
	{"/grpc.health.v1.Health/Watch", HEALTH_ROLE},
	{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	 HEALTH_ROLE},
	{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	 HEALTH_ROLE},
};

#define N_RULES (sizeof rules / sizeof rules[0])

bool km_auth_method_mutates(const char *path)
{
	for (size_t i = 0; i < N_RULES; i++)
		if (!strcmp(rules[i].path, path))
			return rules[i].mutates;
	return false;
}

int km_auth_method_role(const struct km_auth *a, const char *path)
{
	for (size_t i = 0; i < N_RULES; i++)
		if (!strcmp(rules[i].path, path))
			return rules[i].role == HEALTH_ROLE
				       ? km_auth_health_role(a)
				       : rules[i].role;
	return KM_ROLE_NOBODY;
}

size_t km_auth_table(const char *const **paths)
{
	static const char *v[N_RULES];

	for (size_t i = 0; i < N_RULES; i++)
		v[i] = rules[i].path;
	*paths = v;
	return N_RULES;
}

int km_auth_probe_role(const struct km_probe *p, const char **why)
{
	switch (p->type) {
	case KM_PROBE_EXEC:
		*why = "exec probes (they run commands as kubemedicd)";
		return KM_ROLE_ADMIN;
	case KM_PROBE_FILE:
		*why = "file probes (they look at kubemedicd's files)";
		return KM_ROLE_ADMIN;
	default: break;
	}
	if (p->ca_file && *p->ca_file) {
		*why = "probe.http_get.ca_file (a file of kubemedicd's host)";
		return KM_ROLE_ADMIN;
	}
	if (p->workdir && *p->workdir) {
		*why = "probe.exec.working_dir";
		return KM_ROLE_ADMIN;
	}
	*why = "HTTP, TCP and gRPC probes";
	return KM_ROLE_OPERATOR;
}
