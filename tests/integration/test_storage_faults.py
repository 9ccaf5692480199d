"""Storage faults show: a database kubemedicd cannot write is refused at
start, a second daemon on one database is refused, a full disk turns the
daemon NOT_SERVING (and back when space is freed) with a rate-limited log,
probe changes answer RESOURCE_EXHAUSTED meanwhile, and a transition made
while nothing could be committed is published once, when it is.

The read-only cases run kubemedicd as another user (nobody) when the tests
run as root: root writes whatever the permissions say. The mounts (a small
tmpfs, a read-only bind mount) are made in a mount namespace of the
daemon's own (unshare -m), so nothing leaks into the machine's mounts; a
test reaches the daemon's files through /proc/PID/root. Nothing here is
skipped: a machine where these cannot be set up fails them."""
import errno
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import tempfile
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import SLOW

NOBODY = 65534
S = health_pb2.HealthCheckResponse


def private_mount(script):
    """A wrapper that runs script (sh) in a mount namespace of its own,
    then execs the daemon there (same pid). As root that is unshare -m;
    otherwise a user namespace maps us to root for the mount."""
    base = ["unshare", "-m", "--propagation", "private"]
    if os.geteuid() != 0:
        base = ["unshare", "-r", "-m", "--propagation", "private"]
    return base + ["sh", "-euc", script + '\nexec "$@"', "sh"]


def as_nobody():
    """A wrapper that runs the daemon as nobody when we are root (for whom
    permissions do not apply); as anyone else, as ourselves."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
            "--clear-groups"]


def readable_config(d):
    """A config nobody can read (pytest's tmp_path, where the fixture
    writes one, is 0700)."""
    cfg = d / "km.yaml"
    cfg.write_text("auth: {localRole: admin}\n")
    os.chmod(cfg, 0o644)
    return cfg


def refused(d):
    """Starts d, which must refuse to start: its exit status is 1 and the
    "kubemedicd failed" line is returned."""
    with pytest.raises(RuntimeError) as e:
        d.start()
    assert d.proc.wait(timeout=30 * SLOW) == 1, d.log()
    return str(e.value)


@pytest.fixture
def shared_dir():
    """A directory others may enter (pytest's tmp_path is 0700)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="km-ro-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    for root, dirs, _ in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
    shutil.rmtree(d)


def make_db(daemon_factory, path):
    """A kubemedic database as a stopped daemon leaves it."""
    d = daemon_factory(db=path).start()
    assert d.stop() == 0, d.log()
    for suffix in ("-wal", "-shm", ".lock"):
        if os.path.exists(f"{path}{suffix}"):
            os.unlink(f"{path}{suffix}")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()  # the last connection: SQLite removes -wal and -shm


# ---- refused at start --------------------------------------------------------


def test_read_only_file_refused(daemon_factory, shared_dir):
    db = shared_dir / "km.db"
    make_db(daemon_factory, db)
    os.chmod(db, 0o444)
    if os.geteuid() == 0:
        os.chown(shared_dir, NOBODY, NOBODY)  # the directory is not it
    d = daemon_factory(db=db, wrapper=as_nobody(),
                       config=readable_config(shared_dir))
    line = refused(d)
    assert f"database {db} is a read-only file for uid" in line, line
    assert "chmod" in line


def test_read_only_directory_refused(daemon_factory, shared_dir):
    sub = shared_dir / "ro"
    sub.mkdir()
    db = sub / "km.db"
    make_db(daemon_factory, db)
    if os.geteuid() == 0:
        os.chown(db, NOBODY, NOBODY)  # the file is writable, its dir not
    else:
        os.chmod(sub, 0o555)
    d = daemon_factory(db=db, wrapper=as_nobody(),
                       config=readable_config(shared_dir))
    line = refused(d)
    assert f"the directory {sub} is not writable by uid" in line, line
    assert "-wal" in line and "-shm" in line
    # Nothing was created beside it.
    assert sorted(os.listdir(sub)) == ["km.db"]


def test_read_only_mount_refused(daemon_factory, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    make_db(daemon_factory, ro / "km.db")
    d = daemon_factory(db=ro / "km.db", wrapper=private_mount(
        f"mount --bind {ro} {ro}\nmount -o remount,ro,bind {ro}"))
    line = refused(d)
    assert f"database {ro}/km.db is on a read-only file system" in line, line


def test_second_daemon_on_one_database_refused(pb, daemon_factory, tmp_path):
    first = daemon_factory().start()
    alias = tmp_path / "alias.db"
    alias.symlink_to(first.db)
    for db in (first.db, alias):
        second = daemon_factory(db=db)
        line = refused(second)
        assert f"database {db} is in use by another kubemedicd " \
               f"(pid {first.proc.pid}," in line, line
        assert f"{first.db}.lock" in line
    # The first one goes on undisturbed.
    with grpc.insecure_channel(first.addr) as ch:
        hc = health_pb2_grpc.HealthStub(ch)
        assert hc.Check(health_pb2.HealthCheckRequest()).status == S.SERVING
    # SIGKILL: the kernel drops the lock with the process.
    first.kill9()
    third = daemon_factory(db=first.db).start()
    assert third.stop() == 0, third.log()


# ---- a full disk while running -------------------------------------------------


class Target:
    """A TCP port that accepts (a probe of it succeeds) until stopped."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.close()

    def stop(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(10)


def fill(path):
    """Writes path until the file system is full; returns bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                return n


def until(what, fn, timeout):
    """Polls fn (a query of current state, quick) until it is true."""
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stats(d):
    """The daemon's counters: SIGUSR1, and its "prober stats" line."""
    d.proc.send_signal(signal.SIGUSR1)
    line = d.wait_for_log('msg="prober stats"', 30 * SLOW)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_disk_full_not_serving_then_back(pb, daemon_factory, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    d = daemon_factory(db=mnt / "km.db", wrapper=private_mount(
        f"mount -t tmpfs -o size=4m kmfull {mnt}"))
    d.start()
    # The daemon's view of the directory is the tmpfs; ours is not.
    files = pathlib.Path(f"/proc/{d.proc.pid}/root{mnt}")
    assert (files / "km.db").exists() and not (mnt / "km.db").exists()

    target = Target()
    with grpc.insecure_channel(d.addr) as ch:
        hc = health_pb2_grpc.HealthStub(ch)
        health = pb.health_grpc.HealthServiceStub(ch)
        probes = pb.probe_grpc.ProbeServiceStub(ch)
        self_watch = hc.Watch(health_pb2.HealthCheckRequest(),
                              timeout=120 * SLOW)
        assert next(self_watch).status == S.SERVING
        watch = health.WatchHealth(pb.health.WatchHealthRequest(
            targets=["probe//fast"]), timeout=120 * SLOW)
        fast = pb.probe.Probe(
            name="fast", period_milliseconds=100, failure_threshold=1,
            success_threshold=1, tcp_socket=pb.probe.TCPSocketAction(
                host="127.0.0.1", port=target.port))
        probes.CreateProbe(pb.probe.CreateProbeRequest(probe=fast))
        up = next(watch).transition
        assert up.to_state == pb.common.HEALTH_STATE_HEALTHY

        # The disk fills up; ten results a second keep failing to commit.
        filled = fill(files / "filler")
        assert filled > 0
        t_full = time.monotonic()
        assert next(self_watch).status == S.NOT_SERVING

        # A probe change is refused with what to do about it.
        with pytest.raises(grpc.RpcError) as e:
            probes.CreateProbe(pb.probe.CreateProbeRequest(
                probe=pb.probe.Probe(name="refused",
                                     tcp_socket=fast.tcp_socket)))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "disk is full" in e.value.details()
        assert "free" in e.value.details()

        # The target goes down: the ledger moves (the newest result is
        # current health at once), the published verdict waits for the
        # commit.
        target.stop()
        q = pb.health.GetHealthRequest(target="probe//fast")
        until("a failed result", lambda: not health.GetHealth(q)
              .last_result.success, 30 * SLOW)
        # Its transition has been in a commit that failed, and waits.
        until("the transition retried",
              lambda: stats(d)["transitions_retried"] >= 1, 30 * SLOW)
        during = health.GetHealth(q)
        assert during.target.state == pb.common.HEALTH_STATE_HEALTHY
        assert hc.Check(health_pb2.HealthCheckRequest(
            service="probe//fast")).status == S.SERVING

        # Space again: SERVING, and the transition is published, once.
        os.unlink(files / "filler")
        assert next(self_watch).status == S.SERVING
        fault_s = time.monotonic() - t_full
        down = next(watch).transition
        assert down.from_state == pb.common.HEALTH_STATE_HEALTHY
        assert down.to_state == pb.common.HEALTH_STATE_UNHEALTHY
        assert down.sequence > up.sequence
        after = health.GetHealth(q)
        assert after.target.state == pb.common.HEALTH_STATE_UNHEALTHY
        assert after.target.sequence == down.sequence
        stored = health.QueryTransitions(pb.health.QueryTransitionsRequest(
            target="probe//fast")).transitions
        assert sorted(t.sequence for t in stored) == [up.sequence,
                                                      down.sequence]
        # And probe changes work again.
        probes.CreateProbe(pb.probe.CreateProbeRequest(
            probe=pb.probe.Probe(name="after", tcp_socket=fast.tcp_socket)))
        self_watch.cancel()
        watch.cancel()

    # The log: one line when the fault began, one when it ended, at most
    # one per 10 s between, each with counts: not one per failed batch.
    assert d.stop() == 0, d.log()
    log = d.log()
    began = log.count('msg="database writes failing; retrying"')
    still = log.count('msg="database writes still failing"')
    ended = re.findall(r'msg="database writes succeed again".*'
                       r'failed_commits=(\d+)', log)
    assert began == 1 and len(ended) == 1, log
    assert still <= 1 + int(fault_s / 10), log
    assert int(ended[0]) >= 3 > 0, log
    assert int(ended[0]) > began + still, log
