"""Integration tests: the real kubemedicd on a loopback port with a
temporary database, driven by the CLI, a Python grpcio client with stubs
generated from proto/ at session start, and grpcurl.

Environment:
  KM_BUILD      the CMake build directory (default: <repo>/build)
  KM_GRPCURL    grpcurl binary (default: grpcurl on PATH)
  KM_SANITIZED  set when the build has ASan/UBSan: clean exits then also
                mean "no leak report"
"""
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KM_BUILD", REPO / "build")).resolve()
KUBEMEDICD = BUILD / "kubemedicd"
KUBEMEDIC = BUILD / "kubemedic"
KM_SEED = BUILD / "km_seed"
GRPCURL = os.environ.get("KM_GRPCURL") or shutil.which("grpcurl") or "grpcurl"
SANITIZED = bool(os.environ.get("KM_SANITIZED"))
# Sanitized binaries are several times slower; give waits room.
SLOW = 4 if SANITIZED else 1


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The API's Python modules, generated from proto/ for this session."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("pb")
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(REPO / "proto"))
                    for p in (REPO / "proto" / "kubemedic").rglob("*.proto"))
    rc = protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}",
                      f"--python_out={out}", f"--grpc_python_out={out}",
                      *protos])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, str(out))
    import importlib

    class Modules:
        common = importlib.import_module("kubemedic.v1.common_pb2")
        probe = importlib.import_module("kubemedic.v1.probe_pb2")
        probe_grpc = importlib.import_module("kubemedic.v1.probe_pb2_grpc")
        health = importlib.import_module("kubemedic.v1.health_pb2")
        health_grpc = importlib.import_module("kubemedic.v1.health_pb2_grpc")
        recovery = importlib.import_module("kubemedic.v1.recovery_pb2")
        recovery_grpc = importlib.import_module(
            "kubemedic.v1.recovery_pb2_grpc")
        audit = importlib.import_module("kubemedic.v1.audit_pb2")
        audit_grpc = importlib.import_module("kubemedic.v1.audit_pb2_grpc")
    return Modules


# What most tests need of the daemon's security: the local identity
# (plaintext loopback callers) may do everything. Tests of authentication
# and roles give their own `auth:` section, which replaces this.
TRUSTED_LOCAL = "auth: {localRole: admin}\n"


def with_trusted_local(workdir, config):
    """The config file to start with: config's text (if any) plus
    TRUSTED_LOCAL unless it has an auth section of its own."""
    text = pathlib.Path(config).read_text() if config else ""
    if re.search(r"^auth:", text, re.M):
        return config
    out = pathlib.Path(workdir) / f"trusted-{os.getpid()}-{id(text)}.yaml"
    out.write_text(text + ("\n" if text and not text.endswith("\n")
                           else "") + TRUSTED_LOCAL)
    return out


class Daemon:
    """One kubemedicd process. Its stderr (the log) is collected by a
    thread; start() returns once the "kubemedicd started" line names the
    bound address. Unless its config has an `auth:` section, the local
    identity may do everything (TRUSTED_LOCAL)."""

    def __init__(self, workdir, db=None, config=None, args=(), env=None,
                 wrapper=()):
        self.workdir = pathlib.Path(workdir)
        self.db = str(db or self.workdir / "km.db")
        self.config = with_trusted_local(workdir, config)
        self.args = list(args)
        self.env = env
        self.wrapper = list(wrapper)
        self.proc = None
        self.addr = None
        self.lines = []
        self._lines_q = queue.Queue()

    def start(self, timeout=30):
        cmd = self.wrapper + [str(KUBEMEDICD), "--listen", "127.0.0.1:0",
                              "--db", self.db] + self.args
        if self.config:
            cmd += ["--config", str(self.config)]
        self.lines = []
        self._lines_q = queue.Queue()
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                     cwd=self.workdir, env=self.env)
        threading.Thread(target=self._pump, args=(self.proc,),
                         daemon=True).start()
        line = self.wait_for_log("kubemedicd started|kubemedicd failed",
                                 timeout * SLOW)
        if "kubemedicd failed" in line:
            raise RuntimeError("kubemedicd failed to start: " + line)
        self.addr = re.search(r"listen=(\S+)", line).group(1)
        return self

    def _pump(self, proc):
        for line in proc.stderr:
            self.lines.append(line)
            self._lines_q.put(line)
        self._lines_q.put(None)

    def wait_for_log(self, pattern, timeout=30):
        """The first new log line matching pattern (an event, not a
        sleep)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no log line matching {pattern!r}; "
                                   f"log so far:\n{''.join(self.lines)}")
            try:
                line = self._lines_q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"kubemedicd exited "
                                   f"({self.proc.wait()}) before logging "
                                   f"{pattern!r}:\n{''.join(self.lines)}")
            if rx.search(line):
                return line

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the daemon and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout * SLOW)

    def kill9(self):
        self.proc.kill()
        return self.proc.wait(timeout=30)

    def log(self):
        return "".join(self.lines)


@pytest.fixture
def daemon_factory(tmp_path):
    started = []

    def make(**kw):
        d = Daemon(tmp_path, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture
def daemon(daemon_factory):
    """A running daemon; the test ends with a clean SIGTERM stop (exit 0,
    and under sanitizers: no leak report)."""
    d = daemon_factory().start()
    yield d
    if d.proc.poll() is None:
        rc = d.stop()
        assert rc == 0, f"kubemedicd exit {rc}:\n{d.log()}"


@pytest.fixture
def channel(daemon):
    with grpc.insecure_channel(daemon.addr) as ch:
        yield ch


def run_cli(addr, *args, input=None, env=None, check=None):
    """Runs the kubemedic CLI against addr; returns CompletedProcess."""
    p = subprocess.run([str(KUBEMEDIC), "--server", addr, *map(str, args)],
                       capture_output=True, text=True, input=input,
                       env=env, timeout=60 * SLOW)
    if check is not None:
        assert p.returncode == check, (
            f"kubemedic {' '.join(map(str, args))} -> {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def seed(db, target, *args):
    """Writes results/transitions through the storage layer (km_seed)."""
    p = subprocess.run([str(KM_SEED), "--db", str(db), "--target", target,
                        *map(str, args)], capture_output=True, text=True,
                       timeout=120 * SLOW)
    assert p.returncode == 0, p.stderr
    return int(p.stdout)
