#!/usr/bin/env python3
"""bench/wal_checkpoint.py — the writer's CPU per result at two WAL
checkpoint intervals, in one process, on the system's libsqlite3.

    bench/wal_checkpoint.py [--targets T] [--rows N] [--batch B]
                            [--reps R] [--sync full|normal]
                            [--intervals A,B] [--dir DIR]

Each repetition writes N rows into a fresh database per interval, in the
order a prober with T probes of one period produces them (round robin over
T targets), in transactions of B rows, with km_store.c's pragmas and the
results table and indexes of migrations/0001_initial.sql. The first quarter
of the rows warms the database up (the index has pages for every target,
the WAL has wrapped); CPU time (user + system of this process) is counted
over the rest, divided by the rows. Intervals alternate which goes first.
Prints µs of CPU per row per interval and the ratio of medians (second /
first), the number bench/RESULTS.md records. Python's own cost per row is
in both columns, so the ratio understates the difference in SQLite.
"""
import argparse
import os
import sqlite3
import statistics
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def results_ddl():
    """The results table and its indexes, from the first migration."""
    with open(os.path.join(ROOT, "migrations", "0001_initial.sql")) as f:
        sql = f.read()
    start = sql.index("CREATE TABLE results (")
    end = sql.index("-- State changes.")
    return sql[start:end]


def run(path, interval, a):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={a.sync.upper()}")
    db.execute("PRAGMA cache_size=-65536")
    db.execute(f"PRAGMA wal_autocheckpoint={interval}")
    db.execute("PRAGMA journal_size_limit=67108864")
    db.executescript(results_ddl())
    ins = ("INSERT INTO results (target_id, started_at, duration_us, "
           "success, error_class, status_code, message) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
    t0 = 1_700_000_000_000_000
    warm = a.rows // 4
    c0 = None
    i = 0
    while i < a.rows:
        if c0 is None and i >= warm:
            c0 = time.process_time()
        n = min(a.batch, a.rows - i)
        rows = [(1 + (k % a.targets), t0 + k * 100, 700, 1, 0, 200, None)
                for k in range(i, i + n)]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(ins, rows)
        db.execute("COMMIT")
        i += n
    used = time.process_time() - c0
    db.close()
    return used * 1e6 / (a.rows - warm)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--targets", type=int, default=10000)
    p.add_argument("--rows", type=int, default=800000)
    p.add_argument("--batch", type=int, default=1500)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--sync", choices=("full", "normal"), default="full")
    p.add_argument("--intervals", default="1000,10000")
    p.add_argument("--dir")
    a = p.parse_args()
    ivs = [int(x) for x in a.intervals.split(",")]
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        path = os.path.join(d, "wal.db")
        got = {iv: [] for iv in ivs}
        print(f"{a.rows} rows, {a.targets} targets, batches of {a.batch}, "
              f"synchronous={a.sync}, sqlite {sqlite3.sqlite_version}")
        for rep in range(a.reps):
            order = ivs if rep % 2 == 0 else ivs[::-1]
            line = []
            for iv in order:
                us = run(path, iv, a)
                got[iv].append(us)
                line.append(f"autocheckpoint={iv}: {us:.2f} us/row")
            print(f"rep {rep + 1}: " + ", ".join(line), flush=True)
        med = {iv: statistics.median(v) for iv, v in got.items()}
        for iv in ivs:
            print(f"median autocheckpoint={iv}: {med[iv]:.2f} us/row")
        print(f"RESULT wal_checkpoint ratio={med[ivs[1]] / med[ivs[0]]:.3f} "
              f"({ivs[1]} vs {ivs[0]})")


if __name__ == "__main__":
    main()
