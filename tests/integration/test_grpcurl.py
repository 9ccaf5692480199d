"""grpcurl, with no .proto files: everything comes from server reflection
(grpc.reflection.v1, from the descriptor set embedded at build time)."""
import json
import subprocess

from conftest import GRPCURL, REPO, SLOW


def grpcurl(addr, *args, check=0):
    p = subprocess.run([GRPCURL, "-plaintext", *_place(addr, args)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    if check is not None:
        assert p.returncode == check, p.stderr
    return p


def _place(addr, args):
    # grpcurl wants its flags, then the address, then the method.
    flags, rest = [], list(args)
    while rest and rest[0].startswith("-"):
        flags.append(rest.pop(0))
        if flags[-1] in ("-d", "-H", "-max-time"):
            flags.append(rest.pop(0))
    return flags + [addr] + rest


def test_list_services(daemon):
    out = grpcurl(daemon.addr, "list").stdout.split()
    assert out == sorted([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "kubemedic.v1.AuditService",
        "kubemedic.v1.HealthService",
        "kubemedic.v1.ProbeService",
        "kubemedic.v1.RecoveryService",
    ])


def test_describe_services_and_messages(daemon):
    out = grpcurl(daemon.addr, "describe", "kubemedic.v1.ProbeService").stdout
    for rpc in ("CreateProbe", "GetProbe", "ListProbes", "UpdateProbe",
                "DeleteProbe"):
        assert f"rpc {rpc} (" in out
    out = grpcurl(daemon.addr, "describe", "kubemedic.v1.HealthService").stdout
    assert "rpc WatchHealth ( .kubemedic.v1.WatchHealthRequest ) returns " \
           "( stream .kubemedic.v1.HealthEvent );" in out
    out = grpcurl(daemon.addr, "describe", "kubemedic.v1.Probe").stdout
    assert ".kubemedic.v1.HTTPGetAction http_get = 3;" in out
    out = grpcurl(daemon.addr, "describe",
                  "kubemedic.v1.HEALTH_STATE_HEALTHY").stdout
    assert "HEALTH_STATE_HEALTHY = 2" in out
    p = grpcurl(daemon.addr, "describe", "kubemedic.v1.Nope", check=None)
    assert p.returncode != 0 and "not found" in p.stderr.lower()


def comment_before(text, marker):
    """The // comment lines right above the line holding marker, as one
    line of words ("" when there are none)."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if marker in line)
    words = []
    for line in reversed(lines[:at]):
        line = line.strip()
        if not line.startswith("//"):
            break
        words[:0] = line[2:].split()
    return " ".join(words)


def test_describe_shows_the_protos_comments(daemon):
    # The descriptor set is built with --include_source_info: describe
    # prints each element's comment from proto/kubemedic/v1/health.proto.
    proto = (REPO / "proto/kubemedic/v1/health.proto").read_text()
    cases = [
        ("kubemedic.v1.HealthService", "rpc QueryProbeHistory(",
         "rpc QueryProbeHistory (",
         "Probe results of one target in a time range, at most 1000 per "
         "page, newest or oldest first, optionally only successes or only "
         "failures."),
        ("kubemedic.v1.Availability", "double uptime_percent = 4;",
         "double uptime_percent = 4;",
         "up / observed x 100, where up is the time HEALTHY or DEGRADED;"),
    ]
    for symbol, in_proto, in_describe, sentence in cases:
        want = comment_before(proto, in_proto)
        assert sentence in want, f"health.proto no longer says: {sentence}"
        out = grpcurl(daemon.addr, "describe", symbol).stdout
        assert comment_before(out, in_describe) == want, out


def test_call_every_service(daemon):
    body = json.dumps({"probe": {"name": "curl", "tcpSocket": {
        "host": "127.0.0.1", "port": 1}, "periodSeconds": 3}})
    out = json.loads(grpcurl(daemon.addr, "-d", body,
                             "kubemedic.v1.ProbeService/CreateProbe").stdout)
    assert out["target"] == "probe//curl" and out["periodSeconds"] == 3
    out = json.loads(grpcurl(daemon.addr, "-d", '{"target": "probe//curl"}',
                             "kubemedic.v1.HealthService/GetHealth").stdout)
    assert out["target"]["state"] == "HEALTH_STATE_UNKNOWN"
    out = json.loads(grpcurl(daemon.addr,
                             "grpc.health.v1.Health/Check").stdout)
    assert out == {"status": "SERVING"}
    p = grpcurl(daemon.addr, "-d", '{"target": "pod/default/x", '
                '"action": "RECOVERY_ACTION_RESTART_POD", "reason": "r"}',
                "kubemedic.v1.RecoveryService/RequestRecovery", check=None)
    assert p.returncode != 0 and "FailedPrecondition" in p.stderr
    assert "no cluster is watched" in p.stderr
    p = grpcurl(daemon.addr, "-d", '{"name": "missing"}',
                "kubemedic.v1.ProbeService/GetProbe", check=None)
    assert "NotFound" in p.stderr and 'probe "missing" not found' in p.stderr
