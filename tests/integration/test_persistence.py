"""What survives: a restart, and kill -9 in the middle of heavy writes.

km_seed writes through the storage layer from another process, so it runs
before kubemedicd starts: a running daemon holds the database's lock."""
import json
import os
import shutil
import sqlite3
import threading

import grpc

from conftest import SLOW, run_cli, seed


def tcp_probe(pb, name, period_ms=0):
    return pb.probe.Probe(name=name, tcp_socket=pb.probe.TCPSocketAction(
        host="127.0.0.1", port=9), labels={"writer": name.split("-")[0]},
        period_milliseconds=period_ms)


def test_everything_survives_a_restart(pb, daemon_factory):
    d = daemon_factory()
    # A history first (the daemon holds the database once it runs).
    seed(d.db, "probe//keep", "--results", 50, "--fail-every", 7)
    d.start()
    run_cli(d.addr, "probes", "create", "keep", "--tcp", "127.0.0.1:22",
            "--label", "a=b", check=0)
    run_cli(d.addr, "probes", "create", "gone", "--tcp", "127.0.0.1:23",
            check=0)
    run_cli(d.addr, "probes", "delete", "gone", check=0)
    assert d.stop() == 0

    d2 = daemon_factory(db=d.db).start()
    got = run_cli(d2.addr, "-o", "json", "probes", "list", check=0).stdout
    assert '"name":"keep"' in got and "gone" not in got
    got = json.loads(run_cli(d2.addr, "-o", "json", "history", "probe//keep",
                             "--limit", 1000, check=0).stdout)
    assert len(got) == 50
    # The deleted probe's history would still be there; its target is not
    # listed.
    assert "probe//gone" not in run_cli(d2.addr, "targets", check=0).stdout
    # No migration ran twice.
    assert "migration applied" not in d2.log()
    assert d2.stop() == 0


def test_kill_9_during_heavy_writes(pb, daemon_factory, tmp_path):
    """Eight clients create probes as fast as they can while three hundred
    probes every 100 ms keep the writer busy with results and transitions;
    kubemedicd is killed with SIGKILL in the middle. Every create that was
    acknowledged must be there after a restart, and SQLite's integrity
    check must pass."""
    d = daemon_factory()
    # A large history before the start, as a long-running daemon has.
    seed(d.db, "probe//bulk", "--results", 300000)
    d.start()
    # The load: results (3,000 a second) and, as each probe's port 9
    # refuses, transitions, all through the daemon's own writer.
    # The creates start once the load flows: 50 transitions of it
    # published (so committed: they must survive the kill too).
    with grpc.insecure_channel(d.addr) as ch:
        watch = pb.health_grpc.HealthServiceStub(ch).WatchHealth(
            pb.health.WatchHealthRequest(label_selector="writer=load"),
            timeout=60 * SLOW)
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        for i in range(300):
            stub.CreateProbe(pb.probe.CreateProbeRequest(
                probe=tcp_probe(pb, f"load-{i}", period_ms=100)))
        published = set()
        for ev in watch:
            published.add(ev.transition.sequence)
            if len(published) >= 50:
                break
        watch.cancel()
    acked, lock = [], threading.Lock()
    stop = threading.Event()
    enough = threading.Event()
    errors = []

    def writer(w):
        with grpc.insecure_channel(d.addr) as ch:
            stub = pb.probe_grpc.ProbeServiceStub(ch)
            i = 0
            while not stop.is_set():
                name = f"w{w}-{i}"
                try:
                    stub.CreateProbe(pb.probe.CreateProbeRequest(
                        probe=tcp_probe(pb, name)), timeout=10 * SLOW)
                except grpc.RpcError as e:
                    if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.CANCELLED,
                                        grpc.StatusCode.DEADLINE_EXCEEDED):
                        errors.append(e)
                    return  # the server is gone
                with lock:
                    acked.append(name)
                    if len(acked) >= 400:
                        enough.set()
                i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    assert enough.wait(120 * SLOW), "writers made no progress"
    d.kill9()
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors

    # The files as the kill left them (WAL included) must be consistent.
    snapshot = tmp_path / "snapshot.db"
    for suffix in ("", "-wal", "-shm"):
        src = d.db + suffix
        if os.path.exists(src):
            shutil.copy(src, str(snapshot) + suffix)
    with sqlite3.connect(snapshot) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {r[0] for r in db.execute("SELECT name FROM probes")}
        # The load was real: the fast probes' results (folded into runs,
        # written at each flush and when an outcome flips) and
        # transitions were being written beside the creates.
        load_results = db.execute(
            "SELECT coalesce(sum(r.count), 0) FROM runs r JOIN targets t "
            "ON t.id = r.target_id WHERE t.name LIKE 'probe//load-%'"
        ).fetchone()[0]
        seqs = {r[0] for r in db.execute("SELECT seq FROM transitions")}
    assert load_results > 500, load_results
    assert published <= seqs, "published transitions lost"
    missing = [n for n in acked if n not in names]
    assert not missing, f"{len(missing)} acknowledged creates lost"

    # And kubemedicd starts on it and serves them.
    d2 = daemon_factory(db=d.db).start()
    with grpc.insecure_channel(d2.addr) as ch:
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        listed, token = set(), ""
        while True:
            r = stub.ListProbes(pb.probe.ListProbesRequest(
                page_size=1000, page_token=token))
            listed |= {p.name for p in r.probes}
            token = r.next_page_token
            if not token:
                break
    assert set(acked) <= listed
    assert d2.stop() == 0
