"""The gRPC API through Python's grpcio with stubs generated from proto/:
status codes, messages a person can act on, limits, paging, the standard
health protocol."""
import socket
import threading

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import REPO, seed


def probes(pb, channel):
    return pb.probe_grpc.ProbeServiceStub(channel)


def health(pb, channel):
    return pb.health_grpc.HealthServiceStub(channel)


def tcp_probe(pb, name, **kw):
    return pb.probe.Probe(name=name, tcp_socket=pb.probe.TCPSocketAction(
        host="127.0.0.1", port=7070), **kw)


def code_of(call, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        call(*args, **kw)
    return e.value.code(), e.value.details()


@pytest.mark.parametrize("field,value,expect", [
    ("period_seconds", -1, "probe.period_seconds: must be greater than or "
                           "equal to 0"),
    ("timeout_seconds", -5, "probe.timeout_seconds"),
    ("failure_threshold", -1, "probe.failure_threshold"),
    ("success_threshold", 10001, "probe.success_threshold: must be at most"),
    ("initial_delay_seconds", 86401, "probe.initial_delay_seconds"),
    ("period_milliseconds", 99, "probe.period_milliseconds: must be at "
                                "least 100"),
])
def test_out_of_range_timing(pb, channel, field, value, expect):
    code, msg = code_of(probes(pb, channel).CreateProbe,
                        pb.probe.CreateProbeRequest(
                            probe=tcp_probe(pb, "p", **{field: value})))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert expect in msg


def test_handler_rules(pb, channel):
    stub = probes(pb, channel)
    both = pb.probe.Probe(name="two",
                          tcp_socket=pb.probe.TCPSocketAction(host="h",
                                                              port=1),
                          file=pb.probe.FileAction(path="/x"))
    code, msg = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest(
        probe=both))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "may not specify more than 1 handler type" in msg
    code, msg = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest(
        probe=pb.probe.Probe(name="none")))
    assert "must specify a handler type" in msg
    bad_port = pb.probe.Probe(name="p", http_get=pb.probe.HTTPGetAction(
        host="127.0.0.1", port=70000))
    code, msg = code_of(stub.CreateProbe,
                        pb.probe.CreateProbeRequest(probe=bad_port))
    assert "probe.http_get.port: Invalid value: 70000" in msg
    bad_scheme = pb.probe.Probe(name="p", http_get=pb.probe.HTTPGetAction(
        host="127.0.0.1", port=80, scheme="ftp"))
    code, msg = code_of(stub.CreateProbe,
                        pb.probe.CreateProbeRequest(probe=bad_scheme))
    assert 'probe.http_get.scheme: Unsupported value: "ftp"' in msg
    code, msg = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest())
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT,
                           "probe: Required value")


def test_exists_not_found_precondition(pb, channel, daemon):
    stub = probes(pb, channel)
    created = stub.CreateProbe(pb.probe.CreateProbeRequest(
        probe=tcp_probe(pb, "dup")))
    assert created.target == "probe//dup" and created.generation == 1
    code, msg = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest(
        probe=tcp_probe(pb, "dup")))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "UpdateProbe" in msg
    code, _ = code_of(stub.GetProbe, pb.probe.GetProbeRequest(name="nope"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(stub.DeleteProbe,
                      pb.probe.DeleteProbeRequest(name="nope"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(stub.UpdateProbe, pb.probe.UpdateProbeRequest(
        probe=tcp_probe(pb, "nope")))
    assert code == grpc.StatusCode.NOT_FOUND
    stale = tcp_probe(pb, "dup", generation=7)
    code, msg = code_of(stub.UpdateProbe,
                        pb.probe.UpdateProbeRequest(probe=stale))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "generation" in msg
    h = health(pb, channel)
    code, msg = code_of(h.GetHealth, pb.health.GetHealthRequest(
        target="probe//nope"))
    assert (code, msg) == (grpc.StatusCode.NOT_FOUND,
                           'target "probe//nope" not found')
    code, msg = code_of(h.GetHealth, pb.health.GetHealthRequest(target=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "target: Required value" in msg


def test_config_probes_are_read_only(pb, daemon_factory, tmp_path):
    cfg = tmp_path / "km.yaml"
    cfg.write_text("probes:\n  - name: from-config\n"
                   "    tcpSocket: {host: 127.0.0.1, port: 1}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)
        got = stub.GetProbe(pb.probe.GetProbeRequest(name="from-config"))
        assert got.source == pb.probe.PROBE_SOURCE_CONFIG
        code, msg = code_of(stub.DeleteProbe, pb.probe.DeleteProbeRequest(
            name="from-config"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "config file" in msg
        code, _ = code_of(stub.UpdateProbe, pb.probe.UpdateProbeRequest(
            probe=tcp_probe(pb, "from-config")))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert d.stop() == 0


def test_recovery_without_a_cluster(pb, channel):
    """No cluster watched: a request is checked, then refused as
    FAILED_PRECONDITION naming what is missing; the (empty) history of
    recoveries is served; bad ids and bad requests are INVALID_ARGUMENT."""
    rec = pb.recovery_grpc.RecoveryServiceStub(channel)
    req = pb.recovery.RequestRecoveryRequest
    restart = pb.common.RECOVERY_ACTION_RESTART_POD
    code, msg = code_of(rec.RequestRecovery, req(
        target="pod/default/web-0", action=restart, reason="stuck"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no cluster is watched" in msg and "--kubeconfig" in msg
    bad = [
        (req(action=restart, reason="r"), "target: Required"),
        (req(target="pod/default/web-0", reason="r"), "action: Required"),
        (req(target="pod/default/web-0", action=restart), "reason: Required"),
        (req(target="pod/default/web-0", action=restart, reason="x" * 1025),
         "reason: at most 1024 bytes"),
        (req(target="pod/default/web-0", action=restart, reason="a\x1bb"),
         "reason: control characters"),
        (req(target="pod/default/web-0", action=restart, reason="r",
             idempotency_key="k" * 257), "idempotency_key: at most 256"),
        (req(target="p" * 601, action=restart, reason="r"), "target: too long"),
    ]
    for r, want in bad:
        code, msg = code_of(rec.RequestRecovery, r)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and want in msg, \
            (r.target[:20], code, msg)
    for rid in ("", "abc", "-1", "0", "1x", "99999999999999999999"):
        code, msg = code_of(rec.GetRecovery,
                            pb.recovery.GetRecoveryRequest(id=rid))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "id" in msg, rid
    code, msg = code_of(rec.GetRecovery, pb.recovery.GetRecoveryRequest(id="7"))
    assert code == grpc.StatusCode.NOT_FOUND and "recovery 7 not found" in msg
    code, msg = code_of(rec.CancelRecovery,
                        pb.recovery.CancelRecoveryRequest(id="7"))
    assert code == grpc.StatusCode.NOT_FOUND, msg
    out = rec.ListRecoveries(pb.recovery.ListRecoveriesRequest())
    assert list(out.recoveries) == [] and out.next_page_token == ""
    code, msg = code_of(rec.ListRecoveries, pb.recovery.ListRecoveriesRequest(
        page_size=-1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = code_of(rec.ListRecoveries, pb.recovery.ListRecoveriesRequest(
        page_token="garbage"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_storms_and_policies_without_a_cluster(pb, channel):
    """No cluster watched, so no engine: no storms, no policies, and
    grpc.health.v1 does not know automatic recovery; bad filters are
    INVALID_ARGUMENT naming the field, for ListRecoveries' new ones too."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    rec = pb.recovery_grpc.RecoveryServiceStub(channel)
    out = rec.ListStorms(pb.recovery.ListStormsRequest())
    assert list(out.storms) == [] and out.next_page_token == ""
    out = rec.ListStorms(pb.recovery.ListStormsRequest(active_only=True,
                                                       cluster="-"))
    assert list(out.storms) == []
    pol = rec.ListPolicies(pb.recovery.ListPoliciesRequest())
    assert list(pol.policies) == [] and not pol.dry_run
    ts = pb.health.google_dot_protobuf_dot_timestamp__pb2.Timestamp
    storms = pb.recovery.ListStormsRequest
    lists = pb.recovery.ListRecoveriesRequest
    for call, r, want in (
            (rec.ListStorms, storms(page_size=-1), "page_size"),
            (rec.ListStorms, storms(page_token="garbage"), "page_token"),
            (rec.ListStorms, storms(start_time=ts(seconds=20),
                                    end_time=ts(seconds=10)), "end_time"),
            (rec.ListStorms, storms(start_time=ts(nanos=-1)), "start_time"),
            (rec.ListStorms, storms(cluster="a\nb"), "cluster"),
            (rec.ListStorms, storms(cluster="c" * 64), "cluster"),
            (rec.ListRecoveries, lists(action=99), "action"),
            (rec.ListRecoveries, lists(requester="x\x00y"), "requester"),
            (rec.ListRecoveries, lists(cluster="c" * 64), "cluster")):
        code, msg = code_of(call, r)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and want in msg, \
            (r, code, msg)
    out = rec.ListRecoveries(lists(requester="alice", cluster="-",
                                   action=pb.common.RECOVERY_ACTION_DRAIN))
    assert list(out.recoveries) == []
    hs = health_pb2_grpc.HealthStub(channel)
    code, msg = code_of(hs.Check, health_pb2.HealthCheckRequest(
        service="kubemedic.v1.RecoveryService/automatic"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "no recovery engine runs here" in msg


def test_stream_refusals_and_unknown_method(pb, channel):
    rec = pb.recovery_grpc.RecoveryServiceStub(channel)
    for bad, want in ((pb.recovery.WatchRecoveriesRequest(since_sequence=-1),
                       "since_sequence"),
                      (pb.recovery.WatchRecoveriesRequest(target="nope"),
                       "target"),
                      (pb.recovery.WatchRecoveriesRequest(
                          since_sequence=3, from_oldest=True),
                       "from_oldest")):
        stream = rec.WatchRecoveries(bad)
        code, msg = code_of(lambda: next(stream))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and want in msg
    unknown = channel.unary_unary("/kubemedic.v1.Nope/Nothing",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
    code, msg = code_of(unknown, b"")
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert "unknown method /kubemedic.v1.Nope/Nothing" in msg


def test_malformed_and_oversize_messages(pb, channel):
    raw = channel.unary_unary("/kubemedic.v1.ProbeService/GetProbe",
                              request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    # Field 1 declared as a 100-byte string, with 3 bytes present.
    code, msg = code_of(raw, b"\x0a\x64abc")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed request" in msg and "GetProbeRequest" in msg
    # Over the 4 MiB receive limit.
    code, _ = code_of(raw, b"\x0a" + b"\xff\xff\xff\x02" + b"x" * (5 << 20))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is still fine.
    code, _ = code_of(probes(pb, channel).GetProbe,
                      pb.probe.GetProbeRequest(name="after"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_list_paging_and_tokens(pb, channel):
    stub = probes(pb, channel)
    for i in range(25):
        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=tcp_probe(
            pb, f"p{i:02d}", labels={"odd": str(i % 2)})))
    names, token, pages = [], "", 0
    while True:
        r = stub.ListProbes(pb.probe.ListProbesRequest(page_size=10,
                                                       page_token=token))
        names += [p.name for p in r.probes]
        pages += 1
        token = r.next_page_token
        if not token:
            break
    assert names == [f"p{i:02d}" for i in range(25)] and pages == 3
    r = stub.ListProbes(pb.probe.ListProbesRequest(label_selector="odd=1",
                                                   page_size=5))
    assert [p.name for p in r.probes] == ["p01", "p03", "p05", "p07", "p09"]
    # A token is bound to its query's filters.
    code, msg = code_of(stub.ListProbes, pb.probe.ListProbesRequest(
        label_selector="odd=0", page_token=r.next_page_token))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "other filters" in msg
    code, msg = code_of(stub.ListProbes, pb.probe.ListProbesRequest(
        page_token="garbage!"))
    assert "page_token" in msg
    code, msg = code_of(stub.ListProbes, pb.probe.ListProbesRequest(
        page_size=1001))
    assert "page_size: at most 1000" in msg
    code, msg = code_of(stub.ListProbes, pb.probe.ListProbesRequest(
        page_size=-1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_history_queries(pb, daemon_factory, tmp_path):
    t0 = 1_700_000_000_000_000
    cfg = tmp_path / "keep.yaml"
    cfg.write_text("retention: {results: 0, transitions: 0}\n")
    daemon = daemon_factory(config=cfg)
    # 5000 results 1 ms apart, every 5th an HTTP 500: 2000 runs (four
    # successes, one failure, in turn), enough for several pages.
    seed(daemon.db, "probe//h", "--results", 5000, "--start-us", t0,
         "--step-us", 1000, "--fail-every", 5)
    daemon.start()
    with grpc.insecure_channel(daemon.addr) as channel:
        _history_queries(pb, channel, t0)
    assert daemon.stop() == 0, daemon.log()


def _all_pages(h, req):
    """Every run req's pages give, each page checked against its size."""
    out = []
    while True:
        r = h.QueryProbeHistory(req)
        assert 0 < len(r.results) <= req.page_size
        out += list(r.results)
        if not r.next_page_token:
            return out
        req.page_token = r.next_page_token


def _history_queries(pb, channel, t0):
    stub = probes(pb, channel)
    stub.CreateProbe(pb.probe.CreateProbeRequest(probe=tcp_probe(pb, "h")))
    h = health(pb, channel)
    q = pb.health.QueryProbeHistoryRequest
    # Newest first: the last result (a failure) is a run of its own.
    r = h.QueryProbeHistory(q(target="probe//h", page_size=1000))
    assert len(r.results) == 1000 and r.next_page_token
    first = r.results[0]
    assert first.start_time.ToMicroseconds() == t0 + 4999 * 1000
    assert (first.count, first.success) == (1, False)
    # Oldest first in pages of 300 (the last one short): all 5000
    # results, each in one run, in order — the runs tile the seeded
    # results without a gap or an overlap, successes in runs of four
    # (without a message), HTTP 500s alone.
    oldest = _all_pages(h, q(target="probe//h", page_size=300,
                             order=pb.common.ORDER_OLDEST_FIRST))
    assert len(oldest) == 2000
    assert sum(x.count for x in oldest) == 5000
    assert len({x.id for x in oldest}) == 2000
    i = 0
    for x in oldest:
        fail = i % 5 == 4
        n = 1 if fail else 4
        assert (x.start_time.ToMicroseconds(),
                x.last_start_time.ToMicroseconds(), x.count, x.success,
                x.status_code) == (t0 + i * 1000, t0 + (i + n - 1) * 1000,
                                   n, not fail, 500 if fail else 200), i
        assert (x.first_message, x.message) == (
            ("HTTP 500", "HTTP 500") if fail else ("", "")), i
        i += n
    # Newest first in pages of 700: the same runs, reversed.
    newest = _all_pages(h, q(target="probe//h", page_size=700))
    assert [x.id for x in newest] == [x.id for x in reversed(oldest)]
    # Failures only, oldest first, in pages of 1000: the 1000 runs of one
    # HTTP 500 each.
    failed = _all_pages(h, q(target="probe//h", page_size=1000,
                             outcome=pb.common.OUTCOME_FAILURE,
                             order=pb.common.ORDER_OLDEST_FIRST))
    assert all(not x.success and x.status_code == 500 and x.count == 1
               for x in failed)
    assert [x.start_time.ToMicroseconds() for x in failed] == \
        [t0 + (5 * k + 4) * 1000 for k in range(1000)]
    code, msg = code_of(h.QueryProbeHistory, q(target="probe//h",
                                               page_size=1001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    start = pb.health.google_dot_protobuf_dot_timestamp__pb2.Timestamp(
        seconds=10)
    code, msg = code_of(h.QueryProbeHistory, q(target="probe//h",
                                               start_time=start,
                                               end_time=start))
    assert "start_time: must be before end_time" in msg
    bad = pb.health.google_dot_protobuf_dot_timestamp__pb2.Timestamp(
        seconds=1, nanos=-1)
    code, msg = code_of(h.QueryProbeHistory, q(target="probe//h",
                                               start_time=bad))
    assert "start_time: nanos" in msg
    code, msg = code_of(h.QueryProbeHistory, q(target="probe//h",
                                               outcome=7))
    assert "outcome: unknown Outcome value 7" in msg


def test_deadline_exceeded(pb, channel):
    # A watch never ends on its own, so only the deadline can end it. (A
    # unary call with a microsecond deadline is a race: the client rounds
    # deadlines to the millisecond and a quick server can answer in time.)
    calls = [health(pb, channel).WatchHealth(pb.health.WatchHealthRequest(),
                                             timeout=0.3) for _ in range(8)]
    for call in calls:
        with pytest.raises(grpc.RpcError) as e:
            for _ in call:
                pass
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The expired streams were let go: the server still answers.
    assert health(pb, channel).ListTargets(pb.health.ListTargetsRequest(),
                                           timeout=5) is not None


def test_standard_health_check_and_watch(pb, channel, daemon):
    hc = health_pb2_grpc.HealthStub(channel)
    S = health_pb2.HealthCheckResponse
    assert hc.Check(health_pb2.HealthCheckRequest()).status == S.SERVING
    code, msg = code_of(hc.Check, health_pb2.HealthCheckRequest(
        service="probe//later"))
    assert code == grpc.StatusCode.NOT_FOUND

    watch = hc.Watch(health_pb2.HealthCheckRequest(service="probe//later"))
    assert next(watch).status == S.SERVICE_UNKNOWN
    self_watch = hc.Watch(health_pb2.HealthCheckRequest())
    assert next(self_watch).status == S.SERVING

    # A port that refuses: bound, never listening.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    p = tcp_probe(pb, "later")
    p.tcp_socket.port = closed.getsockname()[1]
    stub = probes(pb, channel)
    stub.CreateProbe(pb.probe.CreateProbeRequest(probe=p))
    # Three failures 10 s apart are needed: no verdict yet.
    assert hc.Check(health_pb2.HealthCheckRequest(
        service="probe//later")).status == S.UNKNOWN
    # A committed transition reaches the watcher of that target: one
    # failure is enough now, and one comes within 100 ms.
    p.failure_threshold = 1
    p.period_milliseconds = 100
    stub.UpdateProbe(pb.probe.UpdateProbeRequest(probe=p))
    assert next(watch).status == S.NOT_SERVING
    assert hc.Check(health_pb2.HealthCheckRequest(
        service="probe//later")).status == S.NOT_SERVING
    watch.cancel()
    closed.close()

    # Shutdown: watchers of the daemon hear NOT_SERVING, then the stream
    # ends with UNAVAILABLE.
    got = []
    t = threading.Thread(target=lambda: got.extend(
        _drain(self_watch)), daemon=True)
    t.start()
    assert daemon.stop() == 0
    t.join(30)
    assert got[0] == S.NOT_SERVING
    assert got[-1] == grpc.StatusCode.UNAVAILABLE


def _drain(stream):
    out = []
    try:
        for m in stream:
            out.append(m.status)
    except grpc.RpcError as e:
        out.append(e.code())
    return out


@pytest.fixture(scope="module")
def reflection(tmp_path_factory):
    """Request and response classes of grpc.reflection.v1, built from
    proto/ into a private pool (generated modules named grpc.reflection
    would shadow grpcio's own grpc package)."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("refl") / "reflection.desc"
    include = grpc_tools.__path__[0] + "/_proto"
    assert protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}",
                        f"--descriptor_set_out={out}",
                        "grpc/reflection/v1/reflection.proto"]) == 0
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(
            out.read_bytes()).file:
        pool.Add(f)

    def cls(name):
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1." + name))
    return cls("ServerReflectionRequest"), cls("ServerReflectionResponse")


def test_reflection_serves_files_with_comments(channel, reflection):
    Req, Resp = reflection
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=Req.SerializeToString,
        response_deserializer=Resp.FromString)
    by_name, by_symbol = info(iter([
        Req(file_by_filename="kubemedic/v1/health.proto"),
        Req(file_containing_symbol="kubemedic.v1.HealthService.GetHealth"),
    ]), timeout=10)
    # The same file and imports either way, the asked-for file first.
    files = list(by_name.file_descriptor_response.file_descriptor_proto)
    assert files == list(
        by_symbol.file_descriptor_response.file_descriptor_proto)
    fds = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in files]
    assert [f.name for f in fds] == ["kubemedic/v1/health.proto",
                                     "google/protobuf/timestamp.proto",
                                     "kubemedic/v1/common.proto"]
    # Source info: every file has it; health.proto's comments are those
    # of the .proto, leading (a method) and trailing (a field).
    assert all(f.source_code_info.location for f in fds)
    health = fds[0]
    comments = {tuple(loc.path): loc for loc in
                health.source_code_info.location}
    methods = [m.name for m in health.service[0].method]
    get_health = comments[(6, 0, 2, methods.index("GetHealth"))]
    assert get_health.leading_comments.startswith(
        " The current verdict on one target, with its last result and last\n")
    messages = [m.name for m in health.message_type]
    target = comments[(4, messages.index("GetHealthRequest"), 2, 0)]
    assert target.trailing_comments.strip() == \
        'full name, e.g. "probe//checkout-http"'
    # Comments make the files about three times larger; an answer stays
    # far below the 4 MiB a gRPC client accepts by default.
    assert by_name.ByteSize() < 128 * 1024
