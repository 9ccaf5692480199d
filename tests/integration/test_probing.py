"""The probe engine against real targets on loopback that the tests switch
between healthy and failing. Every wait is on an event (a WatchHealth
message, a standard health Watch message); every transition is checked to
come after exactly failureThreshold / successThreshold results, in the
history (runs: consecutive results of one outcome, with their counts)."""
import http.server
import os
import queue
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import SLOW

HEALTHY, UNHEALTHY, UNKNOWN = 2, 3, 1


# ---- targets ------------------------------------------------------------------

class Web:
    """An HTTP server whose answer the test sets: ok, 500, hang, drop,
    flap (200 and 500 in turn)."""

    def __init__(self):
        self.mode = "ok"
        self.release = threading.Event()
        self.turn = 0
        web = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mode = web.mode
                if mode == "flap":
                    web.turn += 1
                    mode = "ok" if web.turn % 2 else "500"
                if mode == "hang":
                    web.release.wait(10)
                    return
                if mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                code = 200 if mode == "ok" else 500
                body = b"fine" if code == 200 else b"broken"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def web():
    w = Web()
    yield w
    w.close()


@pytest.fixture
def trusting_channel(daemon_factory, tmp_path):
    """A channel to a daemon whose config lets probes created through the
    API run programs and look at files under tmp_path (both off by
    default)."""
    cfg = tmp_path / "trusting.yaml"
    cfg.write_text("api: {allowExec: true, allowFile: true, "
                   f"filePathPrefixes: [{tmp_path}]}}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        yield ch
    rc = d.stop()
    assert rc == 0, f"kubemedicd exit {rc}:\n{d.log()}"


# ---- watching -----------------------------------------------------------------

class Watch:
    """A WatchHealth stream read by a thread into a queue."""

    def __init__(self, pb, channel, **filters):
        self.q = queue.Queue()
        self.call = pb.health_grpc.HealthServiceStub(channel).WatchHealth(
            pb.health.WatchHealthRequest(**filters))
        # The server sends its headers once the watcher is registered:
        # from here on, no transition can be missed.
        self.call.initial_metadata()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for ev in self.call:
                self.q.put(ev)
        except grpc.RpcError as e:
            self.q.put(e)

    def next(self, timeout=20):
        ev = self.q.get(timeout=timeout * SLOW)
        if isinstance(ev, Exception):
            raise ev
        return ev

    def until(self, target, to_state=None, flapping=None, timeout=30):
        """The next transition of target into to_state (and/or with that
        flapping flag)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            ev = self.next(max(0.1, deadline - time.monotonic()))
            t = ev.transition
            if t.target != target:
                continue
            if to_state is not None and t.to_state != to_state:
                continue
            if flapping is not None and t.flapping != flapping:
                continue
            return ev

    def collect(self, want, timeout=30):
        """The first transition of each target into its state in want
        (events come in any order across targets)."""
        deadline = time.monotonic() + timeout * SLOW
        got = {}
        while len(got) < len(want):
            ev = self.next(max(0.1, deadline - time.monotonic()))
            t = ev.transition
            if want.get(t.target) == t.to_state and t.target not in got:
                got[t.target] = ev
        return got

    def close(self):
        self.call.cancel()


def history(pb, channel, target):
    """Every run of target (consecutive results of one outcome), oldest
    first."""
    stub = pb.health_grpc.HealthServiceStub(channel)
    out, token = [], ""
    while True:
        r = stub.QueryProbeHistory(pb.health.QueryProbeHistoryRequest(
            target=target, order=pb.common.ORDER_OLDEST_FIRST,
            page_size=1000, page_token=token))
        out += list(r.results)
        token = r.next_page_token
        if not token:
            return out


def results(pb, channel, target):
    """How many results target's history holds."""
    return sum(r.count for r in history(pb, channel, target))


def messages(run):
    """A run's first and last result's messages."""
    return (run.first_message, run.message)


def assert_after_exactly(pb, channel, ev, n, success):
    """The transition of ev came with the n-th result of a streak of n
    results of one outcome: exactly the threshold, not one more. History
    is runs (readers see the writer's open run live), so the streak is the
    runs of that outcome before the transition's run, and the results of
    its run up to the one that caused it. Returns the streak's runs (the
    last one may have grown since)."""
    t = ev.transition
    at = t.time.ToMicroseconds()
    runs = history(pb, channel, t.target)
    # The result that caused it ends at the transition's time: it is in
    # the last run begun before then (one check at a time: the next
    # result starts after this one ended).
    i = max((i for i, r in enumerate(runs)
             if r.start_time.ToMicroseconds() < at), default=None)
    assert i is not None, f"no result before the transition ({t})"
    run = runs[i]
    first = run.start_time.ToMicroseconds()
    last = run.last_start_time.ToMicroseconds()
    assert first + run.duration_min_us <= at <= \
        last + run.duration_max_us, (
            f"no result of {run} ends at the transition ({t})")
    assert run.success == success, (t, run)
    if at - last >= run.duration_min_us:
        # The run's last result ended it (the usual case: the next one
        # was not yet taken).
        k = run.count
    else:
        # The run went on after it. Its results were one period apart
        # (fixed rate); the one that ended at the transition's time is
        # found by its start.
        period = pb.probe_grpc.ProbeServiceStub(channel).GetProbe(
            pb.probe.GetProbeRequest(name=t.target.split("//", 1)[1]))\
            .period_milliseconds * 1000
        k = round((at - run.duration_us - first) / period) + 1
        assert 1 <= k < run.count, (k, run, t)
    j = i
    while j > 0 and runs[j - 1].success == success:
        j -= 1
    streak = sum(r.count for r in runs[j:i]) + k
    assert streak == n, (
        f"{t.target} went {t.from_state}->{t.to_state} after a streak of "
        f"{streak} {'successes' if success else 'failures'}, want {n}: "
        f"{runs[j:i + 1]}")
    return runs[j:i + 1]


def create(pb, channel, probe):
    return pb.probe_grpc.ProbeServiceStub(channel).CreateProbe(
        pb.probe.CreateProbeRequest(probe=probe))


def timing(**kw):
    base = dict(period_milliseconds=200, timeout_milliseconds=150,
                failure_threshold=3, success_threshold=2)
    base.update(kw)
    return base


# ---- tests --------------------------------------------------------------------

def test_http_failures_and_recoveries(pb, channel, web):
    w = Watch(pb, channel, targets=["probe//web"])
    create(pb, channel, pb.probe.Probe(
        name="web", labels={"team": "shop"},
        http_get=pb.probe.HTTPGetAction(host="127.0.0.1", port=web.port,
                                        path="/healthz"),
        **timing()))
    ev = w.until("probe//web", HEALTHY)
    assert ev.transition.from_state == UNKNOWN
    assert ev.target.labels["team"] == "shop"
    assert_after_exactly(pb, channel, ev, 2, True)

    for mode, klass, code in [("500", pb.common.ERROR_CLASS_HTTP_STATUS, 500),
                              ("hang", pb.common.ERROR_CLASS_TIMEOUT, 0),
                              ("drop", pb.common.ERROR_CLASS_NETWORK, 0)]:
        web.release.clear()
        web.mode = mode
        ev = w.until("probe//web", UNHEALTHY)
        failures = assert_after_exactly(pb, channel, ev, 3, False)
        assert all(r.error_class == klass and r.status_code == code
                   for r in failures), (mode, failures)
        assert "3 consecutive failures" in ev.transition.cause
        web.mode = "ok"
        web.release.set()
        ev = w.until("probe//web", HEALTHY)
        assert_after_exactly(pb, channel, ev, 2, True)
        assert ev.transition.cause == "2 consecutive successes"
    w.close()


def test_tcp_closed_port_and_back(pb, channel):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    port = lst.getsockname()[1]
    w = Watch(pb, channel, targets=["probe//tcp"])
    create(pb, channel, pb.probe.Probe(
        name="tcp", tcp_socket=pb.probe.TCPSocketAction(host="127.0.0.1",
                                                        port=port),
        **timing(success_threshold=1)))
    assert_after_exactly(pb, channel, w.until("probe//tcp", HEALTHY), 1, True)
    lst.close()
    ev = w.until("probe//tcp", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_REFUSED
               for r in failures)
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(64)
    assert_after_exactly(pb, channel, w.until("probe//tcp", HEALTHY), 1, True)
    lst.close()
    w.close()


def test_grpc_not_serving_and_standard_watch(pb, channel):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    S = health_pb2.HealthCheckResponse
    servicer.set("payments", S.SERVING)
    std = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="probe//pay"))
    seen = queue.Queue()

    def read_std():
        try:
            for m in std:
                seen.put(m.status)
        except grpc.RpcError:
            pass  # cancelled at the end of the test
    threading.Thread(target=read_std, daemon=True).start()
    assert seen.get(timeout=10 * SLOW) == S.SERVICE_UNKNOWN

    w = Watch(pb, channel, targets=["probe//pay"])
    create(pb, channel, pb.probe.Probe(
        name="pay", grpc=pb.probe.GRPCAction(host="127.0.0.1", port=port,
                                            service="payments"),
        **timing(timeout_milliseconds=1000, period_milliseconds=300)))
    assert_after_exactly(pb, channel, w.until("probe//pay", HEALTHY), 2, True)
    assert seen.get(timeout=10 * SLOW) == S.SERVING
    servicer.set("payments", S.NOT_SERVING)
    ev = w.until("probe//pay", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_GRPC_STATUS and
               r.status_code == S.NOT_SERVING for r in failures)
    # Standard gRPC health tooling sees kubemedic's verdict change too.
    assert seen.get(timeout=10 * SLOW) == S.NOT_SERVING
    servicer.set("payments", S.SERVING)
    w.until("probe//pay", HEALTHY)
    assert seen.get(timeout=10 * SLOW) == S.SERVING
    std.cancel()
    w.close()
    server.stop(0)


def test_file_missing_and_stale(pb, trusting_channel, tmp_path):
    channel = trusting_channel
    beat = tmp_path / "heartbeat"
    beat.write_text("alive")
    w = Watch(pb, channel, targets=["probe//beat"])
    create(pb, channel, pb.probe.Probe(
        name="beat", file=pb.probe.FileAction(path=str(beat), min_size=1,
                                              max_age_seconds=60),
        **timing(success_threshold=1)))
    assert_after_exactly(pb, channel, w.until("probe//beat", HEALTHY), 1,
                         True)
    beat.unlink()
    ev = w.until("probe//beat", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_FILE_MISSING
               for r in failures)
    beat.write_text("alive")
    w.until("probe//beat", HEALTHY)
    old = time.time() - 3600
    os.utime(beat, (old, old))  # an hour since the last heartbeat
    ev = w.until("probe//beat", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_FILE_STALE
               for r in failures)
    assert all("maxAgeSeconds 60" in m for r in failures
               for m in messages(r))
    beat.write_text("alive")
    w.until("probe//beat", HEALTHY)
    beat.write_text("")  # fresh, but empty: smaller than minSize
    ev = w.until("probe//beat", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_FILE_TOO_SMALL
               for r in failures)
    w.close()


def test_exec_exit_and_hang(pb, trusting_channel, tmp_path):
    channel = trusting_channel
    mode = tmp_path / "mode"
    mode.write_text("0")
    script = tmp_path / "check.sh"
    # Exits with the code in the mode file; "hang" starts a child that
    # would outlive us unless the whole process group is killed.
    script.write_text(f"""#!/bin/sh
m=$(cat {mode})
if [ "$m" = hang ]; then
  sleep 300 &
  echo $! > {tmp_path}/child
  echo hanging; sleep 300
fi
echo "exit $m"
exit $m
""")
    script.chmod(0o755)
    w = Watch(pb, channel, targets=["probe//job"])
    create(pb, channel, pb.probe.Probe(
        name="job", exec=pb.probe.ExecAction(command=[str(script)]),
        **timing(timeout_milliseconds=300, period_milliseconds=400,
                 success_threshold=1)))
    w.until("probe//job", HEALTHY)
    mode.write_text("1")
    ev = w.until("probe//job", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_EXIT_CODE and
               r.status_code == 1 and
               all("exit 1" in m for m in messages(r))
               for r in failures)
    mode.write_text("0")
    w.until("probe//job", HEALTHY)
    mode.write_text("hang")
    ev = w.until("probe//job", UNHEALTHY)
    failures = assert_after_exactly(pb, channel, ev, 3, False)
    assert all(r.error_class == pb.common.ERROR_CLASS_TIMEOUT
               for r in failures)
    mode.write_text("0")
    w.until("probe//job", HEALTHY)
    # The grandchildren of the hung runs were killed with their group.
    # (Dead, or a zombie waiting for whoever inherited it to reap it.)
    child = int((tmp_path / "child").read_text())
    assert process_state(child) in (None, "Z"), process_state(child)
    w.close()


def process_state(pid):
    """The state letter of a process (R, S, Z, ...), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_flapping_is_flagged(pb, channel, web):
    web.mode = "flap"
    w = Watch(pb, channel, targets=["probe//flappy"])
    create(pb, channel, pb.probe.Probe(
        name="flappy", http_get=pb.probe.HTTPGetAction(
            host="127.0.0.1", port=web.port),
        **timing(period_milliseconds=100, success_threshold=1,
                 failure_threshold=3)))
    ev = w.until("probe//flappy", flapping=True)
    assert "started flapping" in ev.transition.cause
    assert ev.target.flapping
    web.mode = "ok"
    ev = w.until("probe//flappy", flapping=False)
    assert "stopped flapping" in ev.transition.cause
    w.close()


def test_changes_take_effect_at_once(pb, channel, web):
    stub = pb.probe_grpc.ProbeServiceStub(channel)
    w = Watch(pb, channel, targets=["probe//live"])
    p = pb.probe.Probe(name="live", http_get=pb.probe.HTTPGetAction(
        host="127.0.0.1", port=web.port, path="/"),
        **timing(success_threshold=1, failure_threshold=1))
    create(pb, channel, p)
    w.until("probe//live", HEALTHY)
    # Pointed at a closed port by an update: down, without a restart.
    p.http_get.port = 1
    stub.UpdateProbe(pb.probe.UpdateProbeRequest(probe=p))
    ev = w.until("probe//live", UNHEALTHY)
    assert ev.transition.cause.startswith("1 consecutive failure")
    p.http_get.port = web.port
    stub.UpdateProbe(pb.probe.UpdateProbeRequest(probe=p))
    w.until("probe//live", HEALTHY)
    # Deleted: its results stop. A second probe's transitions mark the
    # passing of time without a sleep.
    stub.DeleteProbe(pb.probe.DeleteProbeRequest(name="live"))
    count = results(pb, channel, "probe//live")
    w2 = Watch(pb, channel, targets=["probe//clock"])
    create(pb, channel, pb.probe.Probe(
        name="clock", http_get=pb.probe.HTTPGetAction(host="127.0.0.1",
                                                      port=web.port),
        **timing(success_threshold=5)))
    w2.until("probe//clock", HEALTHY)  # >= 5 periods later
    assert results(pb, channel, "probe//live") <= count + 1
    w.close()
    w2.close()


def test_watch_resumes_without_gaps(pb, channel, web):
    w = Watch(pb, channel, targets=["probe//resume"])
    create(pb, channel, pb.probe.Probe(
        name="resume", http_get=pb.probe.HTTPGetAction(
            host="127.0.0.1", port=web.port),
        **timing(success_threshold=1, failure_threshold=1)))
    first = w.until("probe//resume", HEALTHY)
    w.close()
    # While nobody watches: down and up again.
    w_all = Watch(pb, channel)
    web.mode = "500"
    w_all.until("probe//resume", UNHEALTHY)
    web.mode = "ok"
    last = w_all.until("probe//resume", HEALTHY)
    w_all.close()
    # A client resuming from the first sequence gets both, in order,
    # from the database, then the live stream continues.
    r = Watch(pb, channel, targets=["probe//resume"],
              since_sequence=first.transition.sequence)
    a, b = r.next(), r.next()
    assert (a.transition.to_state, b.transition.to_state) == (UNHEALTHY,
                                                              HEALTHY)
    assert a.transition.sequence > first.transition.sequence
    assert b.transition.sequence == last.transition.sequence
    web.mode = "500"
    assert r.until("probe//resume", UNHEALTHY).transition.sequence > \
        b.transition.sequence
    r.close()
    # Asking for the future is refused.
    bad = Watch(pb, channel, since_sequence=10**9)
    with pytest.raises(grpc.RpcError) as e:
        bad.next()
    assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE


def test_https_verification_is_opt_in(pb, channel, tmp_path):
    """HTTPS like the kubelet: the certificate is not checked unless asked;
    when asked, against ca_file (or the system store)."""
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # The handshake in the handler's thread, not in the accepting one.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                 do_handshake_on_connect=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]

    def https(name, **kw):
        return pb.probe.Probe(name=name, http_get=pb.probe.HTTPGetAction(
            host="127.0.0.1", port=port, scheme="HTTPS", **kw),
            **timing(success_threshold=1, failure_threshold=1,
                     timeout_milliseconds=2000, period_milliseconds=500))

    w = Watch(pb, channel)
    create(pb, channel, https("tls-default"))
    create(pb, channel, https("tls-strict", tls_verify=True))
    create(pb, channel, https("tls-ca", tls_verify=True, ca_file=str(cert)))
    got = w.collect({"probe//tls-default": HEALTHY,
                     "probe//tls-strict": UNHEALTHY,
                     "probe//tls-ca": HEALTHY})
    failed = assert_after_exactly(pb, channel, got["probe//tls-strict"], 1,
                                  False)
    assert failed[0].error_class == pb.common.ERROR_CLASS_TLS
    assert all("self-signed" in m for m in messages(failed[0]))
    w.close()
    srv.shutdown()


def test_ca_file_read_off_the_loop_and_followed(pb, channel, tmp_path, web):
    """A probe's caFile is read off the loop and read again when it
    changes: a wrong CA fails, the right one written over it passes, and a
    FIFO put in its place (which froze every probe when libcurl opened it
    on the loop) fails that probe alone, naming the file."""
    import ssl

    def make_cert(name):
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        return cert, key

    cert, key = make_cert("server")
    other, _ = make_cert("other")

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                 do_handshake_on_connect=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    ca = tmp_path / "ca.pem"

    def put(data_from):
        tmp = tmp_path / "ca.new"
        tmp.write_bytes(data_from.read_bytes())
        os.replace(tmp, ca)

    put(other)
    w = Watch(pb, channel)
    create(pb, channel, pb.probe.Probe(
        name="steady", http_get=pb.probe.HTTPGetAction(host="127.0.0.1",
                                                       port=web.port),
        **timing(period_milliseconds=100, success_threshold=1)))
    create(pb, channel, pb.probe.Probe(
        name="tls", http_get=pb.probe.HTTPGetAction(
            host="127.0.0.1", port=srv.server_address[1], scheme="HTTPS",
            tls_verify=True, ca_file=str(ca)),
        **timing(success_threshold=1, failure_threshold=1,
                 timeout_milliseconds=2000, period_milliseconds=300)))
    ev = w.until("probe//tls", UNHEALTHY)
    failed = assert_after_exactly(pb, channel, ev, 1, False)
    assert failed[0].error_class == pb.common.ERROR_CLASS_TLS
    # The right CA, written over the wrong one: followed without a
    # restart or an update.
    put(cert)
    w.until("probe//tls", HEALTHY)
    # A FIFO in its place: that probe fails, naming it; no other waits.
    ca.unlink()
    os.mkfifo(ca)
    before = results(pb, channel, "probe//steady")
    t0 = time.monotonic()
    ev = w.until("probe//tls", UNHEALTHY)
    waited = time.monotonic() - t0
    failed = assert_after_exactly(pb, channel, ev, 1, False)
    assert failed[0].error_class == pb.common.ERROR_CLASS_TLS
    assert all(f"caFile {ca}: a FIFO, not a regular file" in m
               for m in messages(failed[0]))
    # The other probe kept its 100 ms schedule meanwhile (at least half
    # of its slots: the loop never stopped).
    ran = results(pb, channel, "probe//steady") - before
    assert ran >= waited / 0.1 / 2, (ran, waited)
    w.close()
    srv.shutdown()


def stats_fields(line):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)(?=\s|$)", line)}


def test_stats_line(daemon_factory, tmp_path, web):
    cfg = tmp_path / "stats.yaml"
    cfg.write_text(
        "log: {statsInterval: 1s}\n"
        "probes:\n"
        f"  - {{name: s, httpGet: {{host: 127.0.0.1, port: {web.port}}},\n"
        "     periodMilliseconds: 100}\n")
    d = daemon_factory(config=cfg).start()
    # Every interval: totals since start, which only grow.
    first = stats_fields(d.wait_for_log('msg="prober stats"', 10 * SLOW))
    prev = first
    while True:
        last = stats_fields(d.wait_for_log('msg="prober stats"', 10 * SLOW))
        # The interval fields cover exactly the runs since the last line.
        assert last["interval_runs"] == last["runs"] - prev["runs"]
        assert last["interval_lag_max_us"] <= last["lag_max_us"]
        assert (last["interval_lag_p99_us"] >= last["interval_lag_p50_us"]
                >= 0)
        if last["results_written"] >= 5:
            break
        prev = last
    assert last["probes"] == 1
    assert last["runs"] >= last["ok"] >= 5
    assert last["failed"] == last["results_dropped"] == 0
    assert last["skipped_late"] == 0 and last["transitions"] >= 1
    assert last["results_queued"] >= last["results_written"]
    # Percentiles are histogram bucket bounds (within 12.5%), the max is
    # exact: only their order among themselves is certain.
    assert last["lag_p99_us"] >= last["lag_p50_us"] >= 0
    for k in ("runs", "ok", "results_written", "batches"):
        assert last[k] >= first[k], k
    # SIGUSR1: one line now, and the daemon keeps running.
    d.proc.send_signal(signal.SIGUSR1)
    d.wait_for_log('msg="prober stats"', 5 * SLOW)
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_stats_line_off_by_default(daemon_factory):
    d = daemon_factory().start()
    d.proc.send_signal(signal.SIGUSR1)
    line = d.wait_for_log('msg="prober stats"', 5 * SLOW)
    assert "probes=0 runs=0" in line
    time.sleep(1.5)  # no periodic line without log.statsInterval
    assert d.log().count('msg="prober stats"') == 1
    assert d.stop() == 0
