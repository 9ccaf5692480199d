"""Bounded everything and input hygiene (issue 9, items 8 and 10), against
the real daemon on loopback: a giant label selector beside health checks,
grpc.health.v1 Check on its own thread while the workers are busy, the
limits of the config's limits: section (selectors, watch filters, probes,
streams, decoding memory) refused with their names, memory that comes back
after a hostile request, strings that are not UTF-8 or hold a NUL,
duplicate label keys, and what the CLI prints of what a probe said."""
import concurrent.futures
import hashlib
import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import SANITIZED, SLOW, run_cli
from test_probing import Watch

UNHEALTHY = 3


def probes(pb, channel):
    return pb.probe_grpc.ProbeServiceStub(channel)


def health(pb, channel):
    return pb.health_grpc.HealthServiceStub(channel)


def tcp_probe(pb, name, **kw):
    return pb.probe.Probe(name=name, tcp_socket=pb.probe.TCPSocketAction(
        host="127.0.0.1", port=9), **kw)


def code_of(call, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        call(*args, **kw)
    return e.value.code(), e.value.details()


def raw(channel, method):
    """A unary method called with bytes, answering bytes."""
    return channel.unary_unary(method, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)


def varint(v):
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def config(tmp_path, text):
    f = tmp_path / "km.yaml"
    f.write_text(text)
    return f


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- label selectors and health checks -------------------------------------

def test_giant_selector_refused_beside_health_checks(pb, channel):
    stub = probes(pb, channel)
    for i in range(3):
        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=tcp_probe(
            pb, f"p{i}", labels={"a": "b"})))
    hc = health_pb2_grpc.HealthStub(channel)
    # Just under the receive limit: refused by its size before parsing,
    # naming the field and the limit.
    big = ",".join(["a"] * 100_000)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        lists = [ex.submit(code_of, stub.ListProbes,
                           pb.probe.ListProbesRequest(label_selector=big),
                           timeout=30 * SLOW) for _ in range(6)]
        checks = [ex.submit(hc.Check, health_pb2.HealthCheckRequest(),
                            timeout=5 * SLOW) for _ in range(6)]
        for f in lists:
            code, msg = f.result()
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert msg == ("label_selector: the selector is 199999 bytes "
                           "long; this server takes at most 4096 "
                           "(limits.maxSelectorBytes)")
        for f in checks:
            assert f.result().status == health_pb2.HealthCheckResponse.SERVING
    # The 3.5 MB of the report: over the receive limit, refused by gRPC.
    code, _ = code_of(stub.ListProbes, pb.probe.ListProbesRequest(
        label_selector=",".join(["a"] * 1_750_000)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Too many requirements, in few bytes; commas in a list do not count.
    code, msg = code_of(health(pb, channel).ListTargets,
                        pb.health.ListTargetsRequest(
                            label_selector=",".join(["a"] * 65)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "the selector has 65 requirements" in msg
    assert "(limits.maxSelectorRequirements)" in msg
    r = stub.ListProbes(pb.probe.ListProbesRequest(
        label_selector="a in (" + ",".join(["b"] * 100) + ")"))
    assert len(r.probes) == 3


def test_check_answers_while_workers_are_busy(pb, daemon_factory, tmp_path):
    """The report's situation, with the selector limits raised so that
    ListProbes is slow again: the one worker busy for a long call with
    more queued behind it, and Check, from another connection, still
    answered at once. It has a thread of its own, and that thread reads
    the sockets itself while no worker does (a worker in a handler reads
    nothing, so without it Check would not even arrive)."""
    cfg = config(tmp_path, """
threads: 1
maxReceiveMessageBytes: 8388608
limits:
  maxSelectorBytes: 8388608
  maxSelectorRequirements: 1000000
  maxRequestMemoryBytes: 268435456
""")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr, options=[
            ("grpc.max_send_message_length", 16 << 20)]) as ch, \
            grpc.insecure_channel(d.addr, options=[
                ("grpc.use_local_subchannel_pool", 1)]) as hch:
        stub = probes(pb, ch)
        for i in range(100):
            stub.CreateProbe(pb.probe.CreateProbeRequest(probe=tcp_probe(
                pb, f"p{i:03d}", labels={"a": "b"})))
        # 1.8 MB, every probe matches
        sel = ",".join(["a"] * 900_000)
        hc = health_pb2_grpc.HealthStub(hch)
        hc.Check(health_pb2.HealthCheckRequest())  # connected
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            t0 = time.monotonic()
            lists = [ex.submit(stub.ListProbes, pb.probe.ListProbesRequest(
                label_selector=sel), timeout=300 * SLOW) for _ in range(3)]
            # One done: the worker is in the handler of the next one,
            # and the third waits in its queue.
            done, _ = concurrent.futures.wait(
                lists, return_when=concurrent.futures.FIRST_COMPLETED)
            one_call = time.monotonic() - t0
            assert len(next(iter(done)).result().probes) == 100
            t1 = time.monotonic()
            r = hc.Check(health_pb2.HealthCheckRequest(), timeout=60 * SLOW)
            check_took = time.monotonic() - t1
            pending = sum(not f.done() for f in lists)
            for f in lists:
                f.result()
    assert r.status == health_pb2.HealthCheckResponse.SERVING
    # Waiting for the worker, Check would take most of a call's time.
    assert check_took < one_call / 4, (check_took, one_call)
    assert pending >= 1
    assert d.stop() == 0


# ---- input hygiene ------------------------------------------------------------

def test_nul_and_bad_utf8_are_refused(pb, channel):
    probes(pb, channel).CreateProbe(pb.probe.CreateProbeRequest(
        probe=tcp_probe(pb, "up-http")))
    get_health = raw(channel, "/kubemedic.v1.HealthService/GetHealth")
    # The reproduction: this answered for probe//up-http.
    code, msg = code_of(get_health, field(1, b"probe//up-http\0junk"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == "target: must not contain NUL characters (byte 14)"
    code, msg = code_of(get_health, field(1, b"probe//up-\xffhttp"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == "target: not valid UTF-8 (byte 10 is 0xff)"
    # A good one still answers.
    get_health(field(1, b"probe//up-http"))
    # grpc.health.v1 too, on its own thread.
    check = raw(channel, "/grpc.health.v1.Health/Check")
    code, msg = code_of(check, field(1, b"probe//up-http\0"))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT,
                           "service: must not contain NUL characters "
                           "(byte 14)")
    # Nested: CreateProbeRequest.probe.labels[1].value, a surrogate.
    entry0 = field(1, b"team") + field(2, b"shop")
    entry1 = field(1, b"tier") + field(2, b"\xed\xa0\x80")
    probe = field(1, b"bad") + field(2, entry0) + field(2, entry1)
    code, msg = code_of(raw(channel, "/kubemedic.v1.ProbeService/CreateProbe"),
                        field(1, probe))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == "probe.labels[1].value: not valid UTF-8 (byte 0 is 0xed)"
    # A watch's targets, by index.
    watch = channel.unary_stream(
        "/kubemedic.v1.HealthService/WatchHealth",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    code, msg = code_of(lambda: next(watch(
        field(4, b"probe//a") + field(4, b"probe//b\0"))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == "targets[1]: must not contain NUL characters (byte 8)"


def test_duplicate_label_keys_are_refused(pb, channel):
    p = tcp_probe(pb, "dup", labels={"team": "shop"}).SerializeToString()
    again = pb.probe.Probe(labels={"team": "infra"}).SerializeToString()
    create = raw(channel, "/kubemedic.v1.ProbeService/CreateProbe")
    code, msg = code_of(create, field(1, p + again))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == ('probe.labels: Duplicate value: "team": a label key may '
                   'be given once')
    create(field(1, p))  # once is fine


def test_page_size_error_names_page_size(pb, channel):
    code, msg = code_of(probes(pb, channel).ListProbes,
                        pb.probe.ListProbesRequest(page_size=1001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == "page_size: at most 1000 per page, got 1001"


# ---- limits --------------------------------------------------------------------

def test_max_probes(pb, daemon_factory, tmp_path):
    cfg = config(tmp_path, """
limits: {maxProbes: 3}
probes:
  - {name: from-config, tcpSocket: {host: 127.0.0.1, port: 9}}
""")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)
        for name in ("a", "b"):
            stub.CreateProbe(pb.probe.CreateProbeRequest(
                probe=tcp_probe(pb, name)))
        code, msg = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest(
            probe=tcp_probe(pb, "c")))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert msg == ("probe: 3 probes exist; this server takes at most 3 "
                       "(limits.maxProbes): delete one first")
        # Deleting one makes room for one.
        stub.DeleteProbe(pb.probe.DeleteProbeRequest(name="a"))
        stub.CreateProbe(pb.probe.CreateProbeRequest(
            probe=tcp_probe(pb, "c")))
        code, _ = code_of(stub.CreateProbe, pb.probe.CreateProbeRequest(
            probe=tcp_probe(pb, "d")))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert d.stop() == 0


def test_max_probes_per_identity(pb, daemon_factory, tmp_path):
    """Each identity creates at most limits.maxProbesPerIdentity probes:
    alice and bob (tokens) and the local user each have their own count;
    probes of the config file count for no one; updating keeps the
    creator, deleting frees a place, and a restart keeps who made what."""
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(
        f"{hashlib.sha256(t.encode()).hexdigest()} {u} ops\n"
        for u, t in (("alice", "tok-a"), ("bob", "tok-b"))))
    cfg = config(tmp_path, f"""
limits: {{maxProbesPerIdentity: 2}}
auth:
  localRole: operator
  tokenFile: {tokens}
  bindings: [{{role: operator, groups: [ops]}}]
probes:
  - {{name: cfg-1, tcpSocket: {{host: 127.0.0.1, port: 9}}}}
  - {{name: cfg-2, tcpSocket: {{host: 127.0.0.1, port: 9}}}}
""")
    alice = (("authorization", "Bearer tok-a"),)
    bob = (("authorization", "Bearer tok-b"),)

    def create(stub, name, md=()):
        stub.CreateProbe(pb.probe.CreateProbeRequest(
            probe=tcp_probe(pb, name)), metadata=md)

    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)
        create(stub, "a1", alice)
        create(stub, "a2", alice)
        code, msg = code_of(create, stub, "a3", alice)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert msg == ('probe: "alice" has created 2 probes; one identity '
                       "may create at most 2 (limits.maxProbesPerIdentity): "
                       "delete one of them first")
        # Others have places of their own.
        create(stub, "b1", bob)
        create(stub, "l1")
        create(stub, "l2")
        code, msg = code_of(create, stub, "l3")
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert '"local" has created 2' in msg
        # bob updating alice's probe does not make it his.
        p = stub.GetProbe(pb.probe.GetProbeRequest(name="a1"), metadata=bob)
        p.labels["by"] = "bob"
        stub.UpdateProbe(pb.probe.UpdateProbeRequest(probe=p), metadata=bob)
        create(stub, "b2", bob)
        code, _ = code_of(create, stub, "b3", bob)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        stub.DeleteProbe(pb.probe.DeleteProbeRequest(name="a1"),
                         metadata=bob)
    assert d.stop() == 0
    # After a restart, from the database: alice has one place again.
    d = daemon_factory(config=cfg, db=d.db).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)
        create(stub, "a3", alice)
        code, _ = code_of(create, stub, "a4", alice)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        names = {p.name for p in stub.ListProbes(
            pb.probe.ListProbesRequest()).probes}
        assert names == {"cfg-1", "cfg-2", "a2", "a3", "b1", "b2", "l1", "l2"}
    assert d.stop() == 0


def test_max_probes_lets_one_of_many_in(pb, daemon_factory, tmp_path):
    cfg = config(tmp_path, "limits: {maxProbes: 1}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)

        def create(name):
            try:
                stub.CreateProbe(pb.probe.CreateProbeRequest(
                    probe=tcp_probe(pb, name)))
                return "ok"
            except grpc.RpcError as e:
                return e.code()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            got = list(ex.map(create, [f"c{i}" for i in range(8)]))
        assert got.count("ok") == 1, got
        assert got.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 7
        assert len(stub.ListProbes(pb.probe.ListProbesRequest()).probes) == 1
    assert d.stop() == 0


def test_stream_limits(pb, daemon_factory, tmp_path):
    cfg = config(tmp_path, "limits: {maxStreams: 10, maxStreamsPerPeer: 3}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        # WatchHealth and grpc.health.v1 Watch both count: every watcher
        # is a stream.
        w1 = Watch(pb, ch)
        w2 = Watch(pb, ch, label_selector="team=shop")
        hw = health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest())
        assert next(hw).status == health_pb2.HealthCheckResponse.SERVING
        over = health(pb, ch).WatchHealth(pb.health.WatchHealthRequest())
        code, msg = code_of(lambda: next(over))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert msg.startswith("too many streams from ipv4:127.0.0.1: 3 are "
                              "open")
        assert "(limits.maxStreamsPerPeer)" in msg
        # Unary calls are not streams.
        assert health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest()).status == 1
        for call in (w1.call, w2.call, hw):
            call.cancel()
    assert d.stop() == 0


def test_watch_filter_limits(pb, channel):
    h = health(pb, channel)
    targets = [f"probe//t{i}" for i in range(101)]
    code, msg = code_of(lambda: next(h.WatchHealth(
        pb.health.WatchHealthRequest(targets=targets))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg == ("targets: 101 targets; a watch takes at most 100 "
                   "(limits.maxWatchTargets): watch by label selector "
                   "instead")
    code, msg = code_of(lambda: next(h.WatchHealth(
        pb.health.WatchHealthRequest(label_selector="x" * 5000))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg.startswith("label_selector: the selector is 5000 bytes long")
    w = Watch(pb, channel, targets=targets[:100])  # at the limit: taken
    w.call.cancel()


# ---- memory --------------------------------------------------------------------

def unknown_fields(size):
    """size bytes of 2-byte unknown fields (number 15, varint 1)."""
    return b"\x78\x01" * (size // 2)


@pytest.mark.skipif(SANITIZED, reason="ASan's allocator keeps freed "
                    "memory in its quarantine: RSS says nothing")
@pytest.mark.parametrize("limits,size,code,growth_mib", [
    # Defaults: 250 KB is under the receive limit, and over the decoding
    # budget once unpacked. (Measured: +1 MB.)
    ("", 250_000, grpc.StatusCode.RESOURCE_EXHAUSTED, 8),
    # The report's 4 MiB, with the budget raised out of the way: decoded
    # (about 180 MB), refused by the handler, and the memory returned.
    # What stays is gRPC's own buffers in malloc's heaps (measured: +9 to
    # +21 MB after 5 to 120 such requests; it was +150 MB after 5, and
    # growing, before arenas returned their big chunks).
    ("maxReceiveMessageBytes: 8388608\n"
     "limits: {maxRequestMemoryBytes: 1073741824}\n",
     (4 << 20) - 64, grpc.StatusCode.INVALID_ARGUMENT, 32),
])
def test_memory_of_a_request_comes_back(pb, daemon_factory, tmp_path, limits,
                                        size, code, growth_mib):
    d = daemon_factory(config=config(tmp_path, limits),
                       args=["--threads", "1"]).start()
    with grpc.insecure_channel(d.addr, options=[
            ("grpc.max_send_message_length", 16 << 20)]) as ch:
        get_probe = raw(ch, "/kubemedic.v1.ProbeService/GetProbe")
        # A first call of each size, so that what any first call costs
        # (gRPC's buffers, a reader's cache) is in the baseline.
        code_of(get_probe, field(1, b"warm-up"))
        code_of(get_probe, unknown_fields(size))
        # The one worker answers this after it has released the last
        # call's memory: an event, not a wait.
        code_of(get_probe, field(1, b"barrier"))
        before = rss_kib(d.proc.pid)
        body = unknown_fields(size)
        for _ in range(5):
            got, msg = code_of(get_probe, body, timeout=60)
            assert got == code, msg
        got, _ = code_of(get_probe, field(1, b"barrier"))
        assert got == grpc.StatusCode.NOT_FOUND
        after = rss_kib(d.proc.pid)
    print(f"RSS {before} KiB -> {after} KiB after 5 requests of {size} B")
    assert after - before < growth_mib * 1024, (before, after)
    assert d.stop() == 0


def test_decoding_budget_names_the_limit(pb, channel):
    code, msg = code_of(raw(channel, "/kubemedic.v1.ProbeService/GetProbe"),
                        unknown_fields(250_000))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert msg == ("request too large: decoding the "
                   "kubemedic.v1.GetProbeRequest needs more than 4194304 "
                   "bytes of memory (limits.maxRequestMemoryBytes)")


# ---- the CLI -------------------------------------------------------------------

ESC_OUTPUT = "\x1b[31mred\x1b]0;pwned\x07\x1b[2J"


def test_cli_escapes_what_a_probe_said(pb, daemon_factory, tmp_path):
    # An exec probe through the API: allowed by the config.
    daemon = daemon_factory(
        config=config(tmp_path, "api: {allowExec: true}\n")).start()
    channel = grpc.insecure_channel(daemon.addr)
    a = daemon.addr
    w = Watch(pb, channel, targets=["probe//esc"])
    run_cli(a, "probes", "create", "esc", "--exec", "--period", "100ms",
            "--failure-threshold", "1", "--", "sh", "-c",
            r"printf '\033[31mred\033]0;pwned\007\033[2J'; exit 1",
            "\x1b[5marg", check=0)
    # The failure is committed with its transition: then history has it.
    w.until("probe//esc", to_state=UNHEALTHY)
    w.call.cancel()
    outs = {
        "history": run_cli(a, "history", "probe//esc", check=0).stdout,
        "status": run_cli(a, "status", "probe//esc", check=0).stdout,
        "transitions": run_cli(a, "transitions", "probe//esc",
                               check=0).stdout,
        "get": run_cli(a, "probes", "get", "esc", check=0).stdout,
    }
    for what, out in outs.items():
        assert "\x1b" not in out and "\x07" not in out, (what, out)
    assert "\\x1b[31mred\\x1b]0;pwned\\x07\\x1b[2J" in outs["history"]
    assert "\\x1b[31mred" in outs["status"]
    assert "\\x1b[5marg" in outs["get"]
    # JSON escapes them its own way, and stays JSON.
    got = json.loads(run_cli(a, "-o", "json", "history", "probe//esc",
                             "--limit", 1, check=0).stdout)
    assert got[0]["message"] == ESC_OUTPUT
    # An error message from the server is escaped too.
    p = run_cli(a, "probes", "get", "no\x1b[2Jpe", check=1)
    assert "\x1b" not in p.stderr and "\\x1b[2J" in p.stderr
    channel.close()
    assert daemon.stop() == 0, daemon.log()


def test_cli_empty_json_list_is_a_list(daemon):
    a = daemon.addr
    assert run_cli(a, "-o", "json", "probes", "list", check=0).stdout == "[]\n"
    assert run_cli(a, "-o", "json", "targets", check=0).stdout == "[]\n"
    run_cli(a, "probes", "create", "one", "--tcp", "127.0.0.1:9", check=0)
    assert json.loads(run_cli(a, "-o", "json", "history", "probe//one",
                              check=0).stdout) == []
    assert json.loads(run_cli(a, "-o", "json", "transitions", "probe//one",
                              check=0).stdout) == []
    got = run_cli(a, "-o", "json", "probes", "list", check=0).stdout
    assert [p["name"] for p in json.loads(got)] == ["one"]
    assert got.startswith("[\n{") and got.endswith("}\n]\n")


def test_identity_filters(pb, channel):
    """ListTargets and WatchHealth filter by a target's namespace, node,
    owner and uid (the Kubernetes targets'; a probe has none of them), and
    refuse a filter longer than any identity can be."""
    stub = probes(pb, channel)
    for name in ("id-a", "id-b"):
        stub.CreateProbe(pb.probe.CreateProbeRequest(
            probe=tcp_probe(pb, name)))
    hs = health(pb, channel)
    names = {t.name for t in hs.ListTargets(
        pb.health.ListTargetsRequest()).targets}
    assert {"probe//id-a", "probe//id-b"} <= names
    for field in ("namespace", "node", "owner", "uid"):
        r = hs.ListTargets(pb.health.ListTargetsRequest(**{field: "x"}))
        assert list(r.targets) == [], field
        code, msg = code_of(hs.ListTargets, pb.health.ListTargetsRequest(
            **{field: "x" * 1025}))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert msg == (f"{field}: 1025 bytes; a target's {field} is at "
                       "most 1024")
        w = hs.WatchHealth(pb.health.WatchHealthRequest(
            **{field: "y" * 1025}))
        code, msg = code_of(next, w)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert msg.startswith(f"{field}: 1025 bytes")
    # A page token is bound to its filters.
    page = hs.ListTargets(pb.health.ListTargetsRequest(page_size=1))
    assert page.next_page_token
    code, _ = code_of(hs.ListTargets, pb.health.ListTargetsRequest(
        page_size=1, node="n1", page_token=page.next_page_token))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
