"""Stopping: SIGTERM under load, signals, flags, and valgrind's view of the
shutdown path."""
import os
import shutil
import signal
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import KUBEMEDICD, SANITIZED, SLOW, Daemon, run_cli

OK_WHILE_STOPPING = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


def test_sigterm_under_load_is_clean(pb, daemon_factory):
    d = daemon_factory().start()
    run_cli(d.addr, "probes", "create", "x", "--tcp", "127.0.0.1:9",
            check=0)
    served = [0] * 6
    warmed = [threading.Event() for _ in range(6)]
    bad = []

    def client(i):
        with grpc.insecure_channel(d.addr) as ch:
            stub = pb.health_grpc.HealthServiceStub(ch)
            while True:
                try:
                    stub.GetHealth(pb.health.GetHealthRequest(
                        target="probe//x"), timeout=10 * SLOW)
                    served[i] += 1
                    if served[i] == 20:
                        warmed[i].set()
                except grpc.RpcError as e:
                    if e.code() not in OK_WHILE_STOPPING:
                        bad.append(e)
                    warmed[i].set()
                    return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    # Every client has had answers before the stop.
    for w in warmed:
        assert w.wait(60 * SLOW)
    assert not bad, bad
    assert d.stop(signal.SIGTERM) == 0
    for t in threads:
        t.join(30)
    assert not bad, bad
    assert "stopping" in d.log() and "level=info msg=stopped" in d.log()
    # The database was closed properly: the WAL was checkpointed away.
    assert not os.path.exists(d.db + "-wal")


def test_sigint_stops_too(daemon_factory):
    d = daemon_factory().start()
    assert d.stop(signal.SIGINT) == 0
    assert "signal=Interrupt" in d.log()


def test_flags_and_config_errors(tmp_path):
    import subprocess
    for args, expect in [
        (["--threads", "0"], "--threads"),
        (["--bogus"], "usage"),
        (["--log-format", "xml"], "--log-format"),
        (["--config", str(tmp_path / "missing.yaml")], "missing.yaml"),
    ]:
        p = subprocess.run([str(KUBEMEDICD), *args], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2, (args, p.stderr)
        assert expect in p.stderr
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("listen: 127.0.0.1:7070\nretention:\n  results: 30d\n"
                   "  colour: blue\n")
    p = subprocess.run([str(KUBEMEDICD), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert f"{cfg}:4" in p.stderr and '"colour"' in p.stderr


def test_database_newer_than_binary_is_refused(daemon_factory):
    import sqlite3
    d = daemon_factory().start()
    assert d.stop() == 0
    with sqlite3.connect(d.db) as db:
        db.execute("INSERT INTO schema_migrations VALUES "
                   "(99, 'future.sql', 'x', 0)")
    d2 = daemon_factory(db=d.db)
    with pytest.raises(RuntimeError) as e:
        d2.start()
    assert "newer than this kubemedicd" in str(e.value)
    assert d2.proc.wait(30) == 1


def test_port_in_use_is_a_clear_error(daemon, tmp_path):
    import subprocess
    p = subprocess.run([str(KUBEMEDICD), "--listen", daemon.addr, "--db",
                        str(tmp_path / "other.db")], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert f"cannot listen on {daemon.addr}" in p.stderr


@pytest.mark.skipif(SANITIZED, reason="ASan and valgrind do not mix; the "
                    "sanitized run checks leaks with LeakSanitizer instead")
@pytest.mark.skipif(not shutil.which("valgrind"), reason="needs valgrind")
def test_valgrind_shutdown_path_leaks_nothing(pb, tmp_path):
    d = Daemon(tmp_path, wrapper=[
        "valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
        "--error-exitcode=99", f"--log-file={tmp_path}/vg.log"])
    d.start(timeout=120)
    try:
        run_cli(d.addr, "probes", "create", "v", "--http",
                "http://127.0.0.1:1/", "--label", "a=b", check=0)
        run_cli(d.addr, "probes", "list", "-l", "a=b", check=0)
        run_cli(d.addr, "status", "probe//v", check=0)
        run_cli(d.addr, "probes", "get", "nope", check=1)
        with grpc.insecure_channel(d.addr) as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(
                health_pb2.HealthCheckRequest())
            assert next(watch).status == \
                health_pb2.HealthCheckResponse.SERVING
            # The stream stays open across the stop: shutdown must end it
            # and free it.
            rc = d.stop(timeout=120)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    log = (tmp_path / "vg.log").read_text()
    assert rc == 0, log[-4000:]
    assert "definitely lost: 0 bytes" in log or \
        "All heap blocks were freed" in log, log[-4000:]
