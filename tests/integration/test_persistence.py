"""What survives: a restart, and kill -9 in the middle of heavy writes.

km_seed writes through the storage layer from another process, so it runs
before kubemedicd starts: a running daemon holds the database's lock."""
import contextlib
import datetime
import json
import os
import shutil
import socket
import sqlite3
import threading
import time

import grpc

from conftest import SLOW, run_cli, seed

S = 1_000_000


def tcp_probe(pb, name, period_ms=0):
    return pb.probe.Probe(name=name, tcp_socket=pb.probe.TCPSocketAction(
        host="127.0.0.1", port=9), labels={"writer": name.split("-")[0]},
        period_milliseconds=period_ms)


def seeded_runs(t, n, fail_every):
    """The runs km_seed's n results from t (one a second, every
    fail_every-th an HTTP 500) fold into: (first start, last start,
    count, success)."""
    out, i = [], 0
    while i < n:
        fail = i % fail_every == fail_every - 1
        k = 1 if fail else min(fail_every - 1 - i % fail_every, n - i)
        out.append((t + i * S, t + (i + k - 1) * S, k, not fail))
        i += k
    return out


def run_tuples(got):
    """CLI JSON runs as seeded_runs' tuples."""
    def us(stamp):  # RFC 3339, 0, 3, 6 or 9 digits of fraction
        whole, _, frac = stamp.rstrip("Z").partition(".")
        dt = datetime.datetime.fromisoformat(whole + "+00:00")
        return int(dt.timestamp()) * S + int((frac + "000000")[:6])
    return [(us(g["startTime"]), us(g["lastStartTime"]), int(g["count"]),
             bool(g.get("success"))) for g in got]


def disk_runs(db, target):
    """sum(count) and the number of rows of target's runs in db's files."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        return c.execute(
            "SELECT coalesce(sum(r.count), 0), count(*) FROM runs r JOIN "
            "targets t ON t.id = r.target_id WHERE t.name = ?",
            (target,)).fetchone()


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
    # The daemon's own history: a probe every 100 ms of a port that
    # listens. Its run is open in the writer's memory (written every
    # historyFlush, 10 s) when the daemon stops: a clean stop writes it.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    with grpc.insecure_channel(d.addr) as ch:
        h = pb.health_grpc.HealthServiceStub(ch)
        watch = h.WatchHealth(pb.health.WatchHealthRequest(
            targets=["probe//tick"]), timeout=30 * SLOW)
        watch.initial_metadata()
        pb.probe_grpc.ProbeServiceStub(ch).CreateProbe(
            pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
                name="tick", tcp_socket=pb.probe.TCPSocketAction(
                    host="127.0.0.1", port=lst.getsockname()[1]),
                period_milliseconds=100, success_threshold=3)))
        for ev in watch:
            if ev.transition.to_state == 2:  # HEALTHY: 3 results in
                break
        watch.cancel()
        seen = sum(r.count for r in h.QueryProbeHistory(
            pb.health.QueryProbeHistoryRequest(target="probe//tick"))
            .results)
    assert seen >= 3
    assert d.stop() == 0
    lst.close()
    # Every result the daemon showed (and any taken after) is on disk.
    on_disk, rows = disk_runs(d.db, "probe//tick")
    assert on_disk >= seen and rows >= 1, (on_disk, rows, seen)

    d2 = daemon_factory(db=d.db).start()
    got = run_cli(d2.addr, "-o", "json", "probes", "list", check=0).stdout
    assert '"name":"keep"' in got and "gone" not in got
    # The seeded history whole: its 50 results as the runs they fold
    # into, in order, with their times (km_seed started them at its
    # now, a second apart).
    got = run_tuples(json.loads(run_cli(
        d2.addr, "-o", "json", "history", "probe//keep", "--limit", 1000,
        "--oldest-first", check=0).stdout))
    assert got == seeded_runs(got[0][0], 50, 7)
    assert sum(r[2] for r in got) == 50
    # The deleted probe's history would still be there; its target is not
    # listed.
    assert "probe//gone" not in run_cli(d2.addr, "targets", check=0).stdout
    # No migration ran twice.
    assert "migration applied" not in d2.log()
    assert d2.stop() == 0


def test_kill_9_during_heavy_writes(pb, daemon_factory, tmp_path):
    """Eight clients create probes as fast as they can while three hundred
    probes every 100 ms keep the writer busy with results and transitions,
    beside a large history of an old database that it converts into runs;
    kubemedicd is killed with SIGKILL in the middle. Every create that was
    acknowledged must be there after a restart, every transition that was
    published too, and of the history only what a crash may lose
    (docs/SECURITY.md): a target's results of the last historyFlush (1 s
    here), never older ones, and never a result of the converted history;
    SQLite's integrity check must pass."""
    flush_s = 1
    cfg = tmp_path / "flush.yaml"
    # (The writers create more than an identity's default 2,000 probes.)
    cfg.write_text(f"database: {{historyFlush: {flush_s}s}}\n"
                   "limits: {maxProbesPerIdentity: 1000000}\n")
    d = daemon_factory(config=cfg)
    # A large history before the start, as a long-running daemon of the
    # version before runs leaves it: 300,000 rows of `results`, which the
    # writer converts into runs (1,000 per transaction, each deleting what
    # it converted) between its batches, under the load (and, should it
    # last that long, the kill).
    bulk = 300000
    seed(d.db, "probe//bulk", "--raw", "--results", bulk)
    d.start()
    # The load: results (3,000 a second) and, as each probe's port 9
    # refuses, transitions, all through the daemon's own writer.
    # The creates start once the load flows: 50 transitions of it
    # published (so committed: they must survive the kill too).
    with grpc.insecure_channel(d.addr) as ch:
        health = pb.health_grpc.HealthServiceStub(ch)
        watch = health.WatchHealth(
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
        # What a client was shown of the load probes' history (live:
        # their open runs, as the writer holds them).
        shown = {}
        for i in range(300):
            name = f"probe//load-{i}"
            shown[name] = sum(r.count for r in health.QueryProbeHistory(
                pb.health.QueryProbeHistoryRequest(
                    target=name, page_size=1000)).results)
        shown_at = time.monotonic()
    assert sum(shown.values()) >= 300, shown
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
    # The kill comes once what was shown is older than a historyFlush
    # (and the writer's slack to get to it): the premise of what a crash
    # may lose, not a synchronization — the writers go on meanwhile.
    left = shown_at + flush_s + 2 * SLOW - time.monotonic()
    if left > 0:
        stop.wait(left)
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
    with contextlib.closing(sqlite3.connect(snapshot)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {r[0] for r in db.execute("SELECT name FROM probes")}
        # The load was real: the fast probes' results (folded into runs,
        # written at each flush and when an outcome flips) and
        # transitions were being written beside the creates.
        load_results = db.execute(
            "SELECT coalesce(sum(r.count), 0) FROM runs r JOIN targets t "
            "ON t.id = r.target_id WHERE t.name LIKE 'probe//load-%'"
        ).fetchone()[0]
        on_disk = dict(db.execute(
            "SELECT t.name, sum(r.count) FROM runs r JOIN targets t ON "
            "t.id = r.target_id WHERE t.name LIKE 'probe//load-%' "
            "GROUP BY t.name").fetchall())
        # The old history: each result either converted (in runs) or
        # still a row of `results`, none lost, none twice.
        bulk_left = db.execute(
            "SELECT count(*) FROM results r JOIN targets t ON "
            "t.id = r.target_id WHERE t.name = 'probe//bulk'").fetchone()[0]
        bulk_runs = db.execute(
            "SELECT coalesce(sum(r.count), 0) FROM runs r JOIN targets t "
            "ON t.id = r.target_id WHERE t.name = 'probe//bulk'"
        ).fetchone()[0]
        seqs = {r[0] for r in db.execute("SELECT seq FROM transitions")}
    assert load_results > 500, load_results
    lost = {n: (c, on_disk.get(n, 0)) for n, c in shown.items()
            if on_disk.get(n, 0) < c}
    assert not lost, f"results shown over a historyFlush ago lost: {lost}"
    assert bulk_left + bulk_runs == bulk, (bulk_left, bulk_runs)
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
