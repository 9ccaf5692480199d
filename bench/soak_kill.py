#!/usr/bin/env python3
"""soak_kill.py — what SIGKILL loses: kubemedicd is killed KILLS times
while it is busy, and after each kill the database must hold every write
that was acknowledged and pass PRAGMA integrity_check. Run it through
bench/soak_kill.sh (which builds and finds the Python with grpcio).

Each life of the daemon (one database for all of them):
  - heavy ingest: LOAD probes every 100 ms against a local TCP port that
    opens and closes every 250 ms, so each probe writes ten results a
    second and a transition at every flip (failure and success thresholds
    of 1);
  - probe changes: CHANGERS clients create, update (a new label value,
    generation "any") and delete probes of their own (5 to 50 each) as
    fast as they are answered, each recording every acknowledged change;
  - recovery-shaped writes: RECOVERY clients update one of their probes
    after another with an attempt counter, acknowledged one by one (the
    shape of a recovery engine recording each action before taking it);
  - after a random time (--min-life to --max-life seconds from the start)
    SIGKILL. Once every client has seen its call fail, the files as the
    kill left them (the WAL included, opened read-only so nothing
    checkpoints) are checked: integrity, and each client's probes against
    what it was told. A change whose call failed in the kill may or may
    not be there (it was never acknowledged); everything else must be
    exactly as acknowledged (name, generation, label). The next life
    starts on the same files, as a restarted daemon would.

Exit status 0 when nothing acknowledged was lost and every check passed.
"""
import argparse
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Most probes of one change client at a time (see Client.step).
OWN_MAX = 50


def stubs(out):
    from grpc_tools import protoc
    import grpc_tools

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(ROOT / "proto"))
                    for p in (ROOT / "proto" / "kubemedic").rglob("*.proto"))
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}",
                    f"--python_out={out}", f"--grpc_python_out={out}",
                    *protos]):
        sys.exit("soak_kill: protoc failed")
    sys.path.insert(0, str(out))


class Flapper:
    """A loopback TCP port that listens for 250 ms, then refuses for
    250 ms, and so on: every probe of it changes verdict twice a second."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop.is_set():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
                s.listen(1024)
                s.settimeout(0.01)
                until = time.monotonic() + 0.25
                while time.monotonic() < until:
                    try:
                        c, _ = s.accept()
                        c.close()
                    except OSError:
                        pass
            finally:
                s.close()
            self.stop.wait(0.25)


def decode_labels(blob):
    parts = bytes(blob).split(b"\0")
    return {parts[i].decode(): parts[i + 1].decode()
            for i in range(0, len(parts) - 1, 2)}


class Daemon:
    def __init__(self, args, tmp, config):
        self.args, self.tmp, self.config = args, tmp, config
        self.proc = None
        self.addr = None
        self.lives = 0

    def start(self):
        self.lives += 1
        log = open(self.tmp / f"life-{self.lives:03d}.log", "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.args.kubemedicd, "--listen", "127.0.0.1:0", "--db",
             str(self.tmp / "km.db"), "--config", str(self.config)],
            stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            log.write(line)
            if "kubemedicd started" in line:
                self.addr = re.search(r"listen=(\S+)", line).group(1)
                break
            if "kubemedicd failed" in line:
                log.flush()
                sys.exit(f"soak_kill: life {self.lives} did not start: "
                         f"{line.strip()}")
        else:
            sys.exit(f"soak_kill: life {self.lives}: kubemedicd exited "
                     f"({self.proc.wait()}) before starting")
        started = time.monotonic() - t0
        threading.Thread(target=self._pump, args=(self.proc, log),
                         daemon=True).start()
        return started

    @staticmethod
    def _pump(proc, log):
        for line in proc.stderr:
            log.write(line)
        log.close()


class Client(threading.Thread):
    """One writer. Between lives it parks; in a life it writes until a
    call fails (the kill), records the change it was making as pending and
    parks again. acked: name -> (generation, label value) as last
    acknowledged, or None (absent); pending: name -> what the failed call
    would have made it."""

    def __init__(self, soak, kind, index):
        super().__init__(daemon=True)
        self.soak, self.kind, self.index = soak, kind, index
        self.prefix = f"{kind}{index}-"
        self.acked, self.pending = {}, {}
        self.rng = random.Random(soak.args.seed * 1000 + index +
                                 (500 if kind == "rec" else 0))
        self.counter = 0
        self.ops = 0
        self.anomalies = []
        self.parked = threading.Event()
        self.go = threading.Event()

    def run(self):
        import grpc

        pb = self.soak.pb
        while True:
            self.go.wait()
            self.go.clear()
            if self.soak.done:
                return
            with grpc.insecure_channel(self.soak.daemon.addr) as ch:
                stub = pb.probe_grpc.ProbeServiceStub(ch)
                try:
                    while True:
                        self.step(stub)
                except grpc.RpcError:
                    pass  # the kill; pending holds the change in flight
            self.parked.set()

    def probe(self, name, value):
        pb = self.soak.pb
        return pb.probe.Probe(
            name=name, labels={"soak": value},
            tcp_socket=pb.probe.TCPSocketAction(host="127.0.0.1",
                                                port=self.soak.flapper.port),
            period_seconds=60)

    def value(self):
        self.counter += 1
        return f"{self.index}.{self.counter}"

    def step(self, stub):
        pb = self.soak.pb
        live = [n for n, v in self.acked.items() if v is not None]
        if self.kind == "rec":
            # Recovery-shaped: one probe after another, attempt n+1 only
            # once attempt n is acknowledged.
            names = [f"{self.prefix}{k}" for k in range(4)]
            missing = [n for n in names if self.acked.get(n) is None]
            if missing:
                op, name = "create", missing[0]
            else:
                op, name = "update", names[self.counter % 4]
        else:
            # 5 to OWN_MAX probes each: creates, updates and deletes
            # mixed. Creates outnumber deletes, so without the bound the
            # probe count would grow life after life towards
            # limits.maxProbes (and every start would load more); at the
            # bound only updates and deletes.
            r = self.rng.random()
            if len(live) < 5 or (len(live) < OWN_MAX and r < 0.3):
                op, name = "create", f"{self.prefix}{self.value()}"
            elif r < 0.75:
                op, name = "update", self.rng.choice(live)
            else:
                op, name = "delete", self.rng.choice(live)
        timeout = 30
        if op == "create":
            v = self.value()
            self.pending = {name: (1, v)}
            stub.CreateProbe(pb.probe.CreateProbeRequest(
                probe=self.probe(name, v)), timeout=timeout)
            self.acked[name] = (1, v)
        elif op == "update":
            v = self.value()
            gen = self.acked[name][0]
            self.pending = {name: (gen + 1, v)}
            got = stub.UpdateProbe(pb.probe.UpdateProbeRequest(
                probe=self.probe(name, v)), timeout=timeout)
            self.acked[name] = (got.generation, v)
            if got.generation != gen + 1:
                # An earlier acknowledged update is gone.
                self.anomalies.append(
                    f"{name}: generation {gen} acknowledged, the next "
                    f"update answered {got.generation}")
        else:
            self.pending = {name: None}
            stub.DeleteProbe(pb.probe.DeleteProbeRequest(name=name),
                             timeout=timeout)
            self.acked[name] = None
        self.pending = {}
        self.ops += 1

    def check(self, stored):
        """Compares what was acknowledged with the probes stored under
        this client's prefix; returns the differences, then takes the
        stored state as the truth (a pending change may or may not have
        committed)."""
        bad, self.anomalies = self.anomalies, []
        mine = {n: v for n, v in stored.items() if n.startswith(self.prefix)}
        for name in set(self.acked) | set(mine) | set(self.pending):
            want = self.acked.get(name)
            got = mine.get(name)
            if got == want:
                continue
            if name in self.pending and got == self.pending[name]:
                continue
            bad.append(f"{name}: acknowledged {want}, stored {got}"
                       + (f" (pending {self.pending[name]})"
                          if name in self.pending else ""))
        self.acked = {n: mine.get(n) for n in set(self.acked) | set(mine)}
        self.pending = {}
        return bad


class Soak:
    def __init__(self, args, pb, tmp):
        self.args, self.pb, self.tmp = args, pb, tmp
        self.done = False
        self.flapper = Flapper()
        config = tmp / "soak.yaml"
        # The clients are the local identity (plaintext loopback): TCP
        # probes need operator.
        config.write_text(
            "retention: {runs: 30s}\n"
            f"database: {{commitDelay: {args.commit_delay}}}\n"
            "auth: {localRole: operator}\n")
        self.daemon = Daemon(args, tmp, config)
        self.clients = ([Client(self, "chg", i) for i in range(args.changers)]
                        + [Client(self, "rec", i)
                           for i in range(args.recovery)])

    def create_load(self):
        import grpc

        pb = self.pb
        with grpc.insecure_channel(self.daemon.addr) as ch:
            stub = pb.probe_grpc.ProbeServiceStub(ch)
            for i in range(self.args.load):
                stub.CreateProbe(pb.probe.CreateProbeRequest(
                    probe=pb.probe.Probe(
                        name=f"load-{i}", period_milliseconds=100,
                        failure_threshold=1, success_threshold=1,
                        tcp_socket=pb.probe.TCPSocketAction(
                            host="127.0.0.1", port=self.flapper.port))),
                    timeout=30)

    def stored(self):
        """Probes, results and transitions as the kill left the files
        (read-only: no checkpoint, the WAL stays for the next life)."""
        db = sqlite3.connect(f"file:{self.tmp / 'km.db'}?mode=ro", uri=True)
        try:
            ok = db.execute("PRAGMA integrity_check").fetchall()
            probes = {n: (g, decode_labels(lb).get("soak"))
                      for n, g, lb in db.execute(
                          "SELECT name, generation, labels FROM probes")}
            # Runs, not results, are rows since schema 6; retention
            # deletes old ones, so the highest id counts what was written.
            results = db.execute("SELECT coalesce(max(id), 0) FROM runs"
                                 ).fetchone()[0]
            transitions = db.execute(
                "SELECT coalesce(max(seq), 0) FROM transitions").fetchone()[0]
        finally:
            db.close()
        return ok, probes, results, transitions

    def run(self):
        args = self.args
        rng = random.Random(args.seed)
        for c in self.clients:
            c.start()
        starts, lost, bad_integrity, life_results, life_trans = \
            [], [], 0, [], []
        prev_results = prev_trans = 0
        print(f"# soak_kill: {args.kills} SIGKILLs, {args.load} probes every "
              f"100 ms, {args.changers} change clients, {args.recovery} "
              f"recovery-shaped clients, lives of {args.min_life}-"
              f"{args.max_life} s, commitDelay {args.commit_delay}, "
              f"seed {args.seed}, {os.cpu_count()} cores, load "
              f"{open('/proc/loadavg').read().split()[:3]}", flush=True)
        t_start = time.monotonic()
        for life in range(1, args.kills + 2):
            starts.append(self.daemon.start())
            if life == 1:
                self.create_load()
            for c in self.clients:
                c.parked.clear()
                c.go.set()
            if life == args.kills + 1:
                break  # the last life ends with SIGTERM, below
            time.sleep(rng.uniform(args.min_life, args.max_life))
            self.daemon.proc.kill()
            self.daemon.proc.wait()
            for c in self.clients:
                if not c.parked.wait(60):
                    sys.exit(f"soak_kill: a client did not notice the "
                             f"kill in life {life}")
            ok, probes, results, trans = self.stored()
            if ok != [("ok",)]:
                bad_integrity += 1
                print(f"life {life}: integrity_check: {ok}", flush=True)
            for i in range(args.load):
                if f"load-{i}" not in probes:
                    lost.append(f"life {life}: load-{i} missing")
            for c in self.clients:
                lost += [f"life {life}: {x}" for x in c.check(probes)]
            life_results.append(results - prev_results)
            life_trans.append(trans - prev_trans)
            prev_results, prev_trans = results, trans
            if life % 10 == 0 or lost or bad_integrity:
                print(f"life {life}: killed; integrity ok "
                      f"{life - bad_integrity}/{life}, acknowledged "
                      f"writes {sum(c.ops for c in self.clients)}, lost "
                      f"{len(lost)}; runs written this life "
                      f"{life_results[-1]}, transitions "
                      f"{life_trans[-1]}", flush=True)
            if lost and not args.keep_going:
                break
        # The last life: a clean stop, and the same checks.
        time.sleep(args.min_life)
        self.done = True
        self.daemon.proc.send_signal(signal.SIGTERM)
        rc = self.daemon.proc.wait(60)
        for c in self.clients:
            c.parked.wait(60)
        ok, probes, _, _ = self.stored()
        for c in self.clients:
            lost += [f"after the clean stop: {x}" for x in c.check(probes)]
            c.go.set()
        elapsed = time.monotonic() - t_start
        acked = sum(c.ops for c in self.clients)
        kills = len(life_results)
        print()
        print(f"kills: {kills}; clean stop at the end: exit {rc}, "
              f"integrity {ok[0][0] if ok else '?'}")
        print(f"acknowledged writes: {acked} (creates, updates, deletes "
              f"and recovery-shaped updates); lost: {len(lost)}")
        print(f"integrity_check ok after {kills - bad_integrity} of "
              f"{kills} kills")
        print(f"runs written per life: median "
              f"{statistics.median(life_results):.0f}, min "
              f"{min(life_results)}, max {max(life_results)}; transitions "
              f"per life: median {statistics.median(life_trans):.0f}")
        print(f"start-up after a kill (to \"kubemedicd started\"): median "
              f"{statistics.median(starts[1:]) * 1000:.0f} ms, max "
              f"{max(starts[1:]) * 1000:.0f} ms")
        print(f"elapsed: {elapsed:.0f} s")
        for x in lost[:20]:
            print("LOST:", x)
        return not lost and not bad_integrity and rc == 0 and \
            ok == [("ok",)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubemedicd", default=str(ROOT / "build/kubemedicd"))
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--load", type=int, default=500,
                    help="probes every 100 ms (default 500)")
    ap.add_argument("--changers", type=int, default=4)
    ap.add_argument("--recovery", type=int, default=2)
    ap.add_argument("--min-life", type=float, default=0.3)
    ap.add_argument("--max-life", type=float, default=2.0)
    ap.add_argument("--commit-delay", default="100ms")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--keep", action="store_true",
                    help="keep the database and the daemon's logs")
    ap.add_argument("--keep-going", action="store_true",
                    help="go on after a lost write")
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="km-soak-kill."))
    (tmp / "pb").mkdir()
    try:
        stubs(tmp / "pb")
        import importlib

        class PB:
            common = importlib.import_module("kubemedic.v1.common_pb2")
            probe = importlib.import_module("kubemedic.v1.probe_pb2")
            probe_grpc = importlib.import_module(
                "kubemedic.v1.probe_pb2_grpc")
        soak = Soak(args, PB, tmp)
        try:
            good = soak.run()
        finally:
            if soak.daemon.proc and soak.daemon.proc.poll() is None:
                soak.daemon.proc.kill()
                soak.daemon.proc.wait()
    finally:
        if args.keep or "good" not in locals() or not good:
            print(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp)
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
