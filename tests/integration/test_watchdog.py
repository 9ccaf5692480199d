"""prober.watchdog in the real daemon: a probe engine loop that does not
turn makes grpc.health.v1 for the daemon itself ("") NOT_SERVING, and it
is SERVING again once the loop turns.

The loop is stalled from outside, without touching the rest of the daemon:
its thread (km-prober) alone is stopped with ptrace (PTRACE_SEIZE, then
PTRACE_INTERRUPT stop one thread, not its process), then let go
(PTRACE_DETACH). Every wait is on a message of the health Watch stream."""
import ctypes
import os
import pathlib
import queue
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import SLOW

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]


def ptrace(req, tid):
    if libc.ptrace(req, tid, None, None) < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({req}, {tid}): {os.strerror(e)}")


def thread_named(pid, name):
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == name:
            return int(task.name)
    raise LookupError(f"no thread {name} in {pid}")


def test_stalled_loop_turns_health_not_serving_and_back(daemon_factory,
                                                         tmp_path):
    cfg = tmp_path / "km.yaml"
    cfg.write_text("prober: {watchdog: 1s}\n")
    d = daemon_factory(config=cfg).start()
    S = health_pb2.HealthCheckResponse
    seen = queue.Queue()
    with grpc.insecure_channel(d.addr) as ch:
        call = health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest(service=""))

        def read():
            try:
                for m in call:
                    seen.put(m.status)
            except grpc.RpcError:
                pass  # cancelled at the end
        threading.Thread(target=read, daemon=True).start()
        assert seen.get(timeout=10 * SLOW) == S.SERVING

        tid = thread_named(d.proc.pid, "km-prober")
        try:
            ptrace(PTRACE_SEIZE, tid)
        except OSError as e:
            pytest.fail(f"cannot stop the prober's thread here: {e}")
        stopped = True
        try:
            ptrace(PTRACE_INTERRUPT, tid)
            os.waitpid(tid, WALL)  # the thread is in its ptrace stop
            assert seen.get(timeout=10 * SLOW) == S.NOT_SERVING
            d.wait_for_log("prober loop stalled", 10 * SLOW)
            # A plain Check says so too (answered by another thread).
            r = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert r.status == S.NOT_SERVING
            ptrace(PTRACE_DETACH, tid)
            stopped = False
            assert seen.get(timeout=10 * SLOW) == S.SERVING
            d.wait_for_log("prober loop turns again", 10 * SLOW)
        finally:
            if stopped:
                libc.ptrace(PTRACE_DETACH, tid, None, None)
        call.cancel()
    assert d.stop() == 0, d.log()
