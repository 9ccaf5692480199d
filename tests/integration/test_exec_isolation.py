"""Exec probes leave nothing behind and see nothing of the daemon: the
real kubemedicd running real programs. Orphans are reaped (no zombie
child of the daemon), also when it is PID 1 of a PID namespace; a process
that escapes its run's session with setsid is killed at the timeout; a
child sees none of the daemon's environment; prober.maxExecChildren holds.

Waits are on events: a pidfd for a process's exit, a WatchHealth
transition for a run's result. Whether an exited process has been reaped
has no event outside the daemon: that is looked up in /proc until a
deadline."""
import os
import pathlib
import select
import signal
import time

import grpc
import pytest

from conftest import SLOW
from test_probing import UNHEALTHY, Watch, history


def exec_probe(name, script, period_ms=200, timeout_ms=1000, failures=1):
    cmd = ", ".join(f'"{a}"' for a in ["sh", "-c", script])
    return (f"  - name: {name}\n"
            f"    exec: {{command: [{cmd}]}}\n"
            f"    periodMilliseconds: {period_ms}\n"
            f"    timeoutMilliseconds: {timeout_ms}\n"
            f"    failureThreshold: {failures}\n")


def write_config(path, probes, extra=""):
    path.write_text(extra + "probes:\n" + "".join(probes))
    return path


def children(pid):
    """The pids of pid's children (every thread's)."""
    out = []
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return out


def state(pid):
    """A process's state letter, or None when no process has the pid."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2]


def zombies_of(pid):
    return [c for c in children(pid) if state(c) == "Z"]


def wait_exit(pid, timeout=10):
    """Returns once pid has exited (its pidfd is readable)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(timeout * SLOW * 1000), f"pid {pid} still runs"
    finally:
        os.close(fd)


def wait_reaped(pid, timeout=5):
    """pid exits, then is reaped: no process has its pid any more."""
    wait_exit(pid)
    deadline = time.monotonic() + timeout * SLOW
    while state(pid) is not None:
        assert time.monotonic() < deadline, (
            f"pid {pid} exited and is not reaped ({state(pid)})")
        time.sleep(0.01)


def read_pids(path, n, timeout=20):
    """The first n pids written to path, one a line, as they come."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= n:
            return [int(x) for x in lines[:n]]
        assert time.monotonic() < deadline, f"{path}: {lines}"
        time.sleep(0.05)


def assert_orphans_reaped(tmp_path, daemon_pid):
    pids = read_pids(tmp_path / "bg", 5)
    for p in pids:
        wait_reaped(p)
    # Nothing the runs left is a zombie of the daemon's.
    assert zombies_of(daemon_pid) == []


def test_orphans_of_background_jobs_are_reaped(daemon_factory, tmp_path):
    cfg = write_config(tmp_path / "km.yaml", [exec_probe(
        "bg", f"sleep 5 & echo $! >> {tmp_path}/bg; exit 0")])
    d = daemon_factory(config=cfg).start()
    assert_orphans_reaped(tmp_path, d.proc.pid)
    assert d.stop() == 0, d.log()


def test_orphans_reaped_as_pid_1(daemon_factory, tmp_path):
    """kubemedicd as PID 1 of a PID namespace (a container's init): what
    exec runs leave is reaped; as PID 1 it kills no process it did not
    start a run for."""
    cfg = write_config(tmp_path / "km.yaml", [exec_probe(
        "bg", f"sleep 5 & echo $! >> {tmp_path}/bg; exit 0")])
    wrapper = ["unshare", "-r", "--pid", "--fork", "--mount-proc"]
    probe = os.spawnvp(os.P_WAIT, "unshare", wrapper + ["true"])
    if probe != 0:
        pytest.fail("unshare -r --pid --fork --mount-proc does not work "
                    "here")
    d = daemon_factory(config=cfg, wrapper=wrapper).start()
    # Logged before "started": the checker says how it treats orphans.
    line = [x for x in d.lines if "exec checks" in x]
    assert line and "PID 1" in line[0], d.log()
    kids = children(d.proc.pid)
    assert len(kids) == 1, kids
    inner = kids[0]  # kubemedicd, as seen from outside its namespace
    # The background jobs' pids as written from inside the namespace are
    # not ours: wait on the processes by their outside pids instead,
    # found as the children of kubemedicd's runs.
    read_pids(tmp_path / "bg", 5)
    deadline = time.monotonic() + 10 * SLOW
    while zombies_of(inner):
        assert time.monotonic() < deadline, zombies_of(inner)
        time.sleep(0.01)
    # Once more after a few runs: still no zombie piles up.
    before = len(read_pids(tmp_path / "bg", 5))
    read_pids(tmp_path / "bg", before + 5)
    deadline = time.monotonic() + 10 * SLOW
    while zombies_of(inner):
        assert time.monotonic() < deadline, zombies_of(inner)
        time.sleep(0.01)
    # unshare waits for its child; the signal goes to kubemedicd.
    os.kill(inner, signal.SIGTERM)
    assert d.proc.wait(timeout=30 * SLOW) == 0, d.log()


def test_setsid_escape_killed_at_timeout(daemon_factory, tmp_path):
    script = (f"setsid sleep 30 & echo $! > {tmp_path}/esc.tmp; "
              f"mv {tmp_path}/esc.tmp {tmp_path}/esc; exec sleep 60")
    cfg = write_config(tmp_path / "km.yaml", [exec_probe(
        "esc", script, period_ms=60000, timeout_ms=1000)])
    d = daemon_factory(config=cfg).start()
    esc = read_pids(tmp_path / "esc", 1)[0]
    # In a session of its own: out of the run's process group.
    assert os.getsid(esc) == esc
    wait_reaped(esc, timeout=10)
    assert zombies_of(d.proc.pid) == []
    assert d.stop() == 0, d.log()


def test_child_sees_none_of_the_daemons_environment(pb, daemon_factory,
                                                    tmp_path):
    cfg = tmp_path / "km.yaml"
    cfg.write_text("api: {allowExec: true}\n")
    env = dict(os.environ, KM_SECRET="x")
    d = daemon_factory(config=cfg, env=env).start()
    with grpc.insecure_channel(d.addr) as ch:
        w = Watch(pb, ch, targets=["probe//env"])
        pb.probe_grpc.ProbeServiceStub(ch).CreateProbe(
            pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
                name="env",
                exec=pb.probe.ExecAction(
                    command=["sh", "-c", "env; exit 1"],
                    env=[pb.probe.EnvVar(name="MINE", value="probe")]),
                period_milliseconds=200, timeout_milliseconds=2000,
                failure_threshold=1)))
        w.until("probe//env", UNHEALTHY)
        w.close()
        out = history(pb, ch, "probe//env")[0].message
    assert "MINE=probe" in out, out
    assert "KM_SECRET" not in out, out
    # Nor anything else of the daemon's (its HOME, say).
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    assert "HOME" not in names, names
    assert d.stop() == 0, d.log()


def test_max_exec_children(pb, daemon_factory, tmp_path):
    """Two long runs hold prober.maxExecChildren (2); a third probe's run
    then fails at once with a message naming the key."""
    cfg = write_config(
        tmp_path / "km.yaml",
        [exec_probe(name, "sleep 30", period_ms=60000, timeout_ms=30000)
         for name in ("hold-a", "hold-b")] + [
         exec_probe("quick", "exit 0", period_ms=200, timeout_ms=1000)],
        extra="prober: {maxExecChildren: 2}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        w = Watch(pb, ch, targets=["probe//quick"])
        ev = w.until("probe//quick", UNHEALTHY)
        w.close()
        assert ev.transition.to_state == UNHEALTHY
        msgs = [r.message for r in history(pb, ch, "probe//quick")
                if not r.success]
    assert msgs, "no failed run"
    assert all(m == "not run: too many exec probes running (2, "
               "prober.maxExecChildren)" for m in msgs), msgs
    assert d.stop() == 0, d.log()
