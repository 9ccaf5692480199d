"""History at fleet scale through the real daemon (issue 12): a target's
history as runs (QueryProbeHistory) and its latency per step
(QueryLatency), over a database prefilled with sqlite3 before kubemedicd
starts — runs, minute and hour rollups, and results written before runs
existed (km_seed --raw) — so the readers are tested without depending on
the writer that produces them; bad requests and a corrupt rollup get the
right status codes; the CLI's history and latency commands show the same.

kubemedicd converts the leftover results into runs soon after it starts,
while serving; the fixture waits for the log line that says it is done,
so every test reads one stable history: the old results as runs of their
own, complete, beside the prefilled ones. (How a reader merges results
not converted yet with runs is unit-tested: tests/unit/
test_store_history.c.)"""
import base64
import datetime
import json
import math
import sqlite3

import grpc
import pytest

from conftest import run_cli, seed

T0 = 1_789_999_200_000_000  # 2026-09-21T14:00:00Z, a whole hour
S = 1_000_000
HOUR = T0 // (3600 * S)


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def lat_pack(hist):
    """A histogram alone (km_lat_pack): its bucket mask, then the counts."""
    return varint(sum(1 << b for b in hist)) + b"".join(
        varint(hist[b]) for b in sorted(hist))


def pack(slots):
    """A rollup blob (storage/km_rollup.h): {index: (count, failures,
    {bucket: count})}, indexes ascending."""
    out, prev = b"", -1
    for i in sorted(slots):
        count, failures, hist = slots[i]
        out += varint(i - prev - 1) + varint(count) + varint(failures)
        out += lat_pack(hist)
        prev = i
    return out


# The hour from T0: every minute 60 results of about 1 ms (bucket 4:
# [800, 1600) us) but minute 10, 60 failures of 200 us (bucket 2).
MINUTES = {m: (60, 60, {2: 60}) if m == 10 else (60, 0, {4: 60})
           for m in range(60)}
HOUR_SLOT = (3600, 60, {2: 60, 4: 3540})

# (id, first_at, last_at, count, success, error_class, status, min, max,
#  sum, first_message, last_message): ids as the leftover results' (1..3),
# which the runs converted from them do not take.
RUNS = [
    (1, T0, T0 + 599 * S, 600, 1, 0, 200, 800, 5000, 600 * 1000, None,
     None),
    (2, T0 + 600 * S, T0 + 659 * S, 60, 0, 5, 503, 100, 300, 60 * 200,
     "first 503", "last 503"),
    (3, T0 + 660 * S, T0 + 3599 * S, 2940, 1, 0, 200, 700, 1500,
     2940 * 1000, None, None),
]


def ts(pb, us):
    t = pb.health.google_dot_protobuf_dot_timestamp__pb2.Timestamp()
    t.FromMicroseconds(us)
    return t


def iso(us):
    return datetime.datetime.fromtimestamp(
        us / S, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def code_of(call, *args):
    with pytest.raises(grpc.RpcError) as e:
        call(*args)
    return e.value.code(), e.value.details()


@pytest.fixture
def prefilled(daemon_factory, tmp_path):
    """kubemedicd on a database with probe//web's runs and rollups (and
    three results from two days before), and probe//broken's corrupt
    minute rollup."""
    db = tmp_path / "runs.db"
    # Results as a database from before runs holds them: rows of
    # `results` (ids 1..3 for web's, 4 for broken's).
    web = seed(db, "probe//web", "--raw", "--results", 3, "--start-us",
               T0 - 2 * 86400 * S, "--step-us", S, "--fail-every", 3)
    broken = seed(db, "probe//broken", "--raw", "--results", 1,
                  "--start-us", T0 - 2 * 86400 * S)
    with sqlite3.connect(db) as c:
        c.executemany(
            "INSERT INTO runs (id, target_id, first_at, last_at, count, "
            "success, error_class, status_code, dur_min, dur_max, dur_sum, "
            "hist, first_message, last_message) VALUES (?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], web) + r[1:10] + (lat_pack({4: r[3]}),) + r[10:]
             for r in RUNS])
        c.execute("INSERT INTO rollup_minutes VALUES (?, ?, ?)",
                  (web, HOUR, pack(MINUTES)))
        c.execute("INSERT INTO rollup_hours VALUES (?, ?, ?)",
                  (web, HOUR // 24, pack({HOUR % 24: HOUR_SLOT})))
        c.execute("INSERT INTO rollup_minutes VALUES (?, ?, x'ff')",
                  (broken, HOUR))
    cfg = tmp_path / "keep.yaml"
    cfg.write_text("retention: {results: 0, transitions: 0}\n")
    daemon = daemon_factory(db=db, config=cfg).start()
    # The leftover results converted (logged once the writer finds none
    # left; perhaps before the start line).
    done = "raw results of schema 5 converted into runs"
    if not any(done in line for line in daemon.lines):
        daemon.wait_for_log(done, 30)
    yield daemon, broken
    assert daemon.stop() == 0, daemon.log()


def history(stub, pb, page_size=1000, **kw):
    out, token = [], ""
    while True:
        r = stub.QueryProbeHistory(pb.health.QueryProbeHistoryRequest(
            target="probe//web", page_size=page_size, page_token=token,
            **kw))
        assert len(r.results) <= page_size
        out += list(r.results)
        token = r.next_page_token
        if not token:
            return out


def key(r):
    return (r.start_time.ToMicroseconds(), r.id, r.count, r.success)


def test_history_is_runs(pb, prefilled):
    daemon, _ = prefilled
    oldest = pb.common.ORDER_OLDEST_FIRST
    with grpc.insecure_channel(daemon.addr) as ch:
        stub = pb.health_grpc.HealthServiceStub(ch)
        got = history(stub, pb, order=oldest)
        # The results from before runs (success, success, HTTP 500, a
        # second apart), converted: two runs holding all three, in order,
        # each once, with their times and message; none of the converted
        # runs took a prefilled run's id.
        legacy = [r for r in got if r.start_time.ToMicroseconds() < T0]
        old = T0 - 2 * 86400 * S
        assert [(r.start_time.ToMicroseconds(),
                 r.last_start_time.ToMicroseconds(), r.count, r.success,
                 r.status_code) for r in legacy] == \
            [(old, old + S, 2, True, 200), (old + 2 * S, old + 2 * S, 1,
                                            False, 500)]
        assert legacy[1].error_class == pb.common.ERROR_CLASS_HTTP_STATUS
        assert (legacy[1].first_message, legacy[1].message) == \
            ("HTTP 500", "HTTP 500")
        assert all(r.target == "probe//web" for r in legacy)
        assert not {r.id for r in legacy} & {1, 2, 3}
        assert len({r.id for r in got}) == len(got)
        runs = [r for r in got if r.start_time.ToMicroseconds() >= T0]
        assert [r.id for r in runs] == [1, 2, 3]
        for r, want in zip(runs, RUNS):
            assert r.target == "probe//web" and r.probe == "web"
            assert r.start_time.ToMicroseconds() == want[1]
            assert r.last_start_time.ToMicroseconds() == want[2]
            assert r.count == want[3] and r.success == bool(want[4])
            assert (r.duration_min_us, r.duration_max_us) == want[7:9]
            assert r.duration_us == want[9] // want[3]
        fail = runs[1]
        assert fail.error_class == pb.common.ERROR_CLASS_HTTP_STATUS
        assert fail.status_code == 503
        assert (fail.first_message, fail.message) == ("first 503",
                                                      "last 503")

        # Pages of one, either order: the same runs, none twice.
        assert [key(r) for r in history(stub, pb, 1, order=oldest)] == \
            [key(r) for r in got]
        assert [key(r) for r in history(stub, pb, 2)] == \
            [key(r) for r in reversed(got)]

        # A range from the middle of run 2 starts with run 2; successes
        # from there: run 3 alone (run 1 ended before).
        mid = ts(pb, T0 + 630 * S)
        assert [r.id for r in history(stub, pb, start_time=mid,
                                      order=oldest)] == [2, 3]
        assert [r.id for r in history(
            stub, pb, start_time=mid,
            outcome=pb.common.OUTCOME_SUCCESS)] == [3]
        assert [r.id for r in history(
            stub, pb, outcome=pb.common.OUTCOME_FAILURE,
            start_time=ts(pb, T0))] == [2]

        # A token whose cursor names no table: refused, as forged.
        r = stub.QueryProbeHistory(pb.health.QueryProbeHistoryRequest(
            target="probe//web", page_size=1, start_time=ts(pb, T0)))
        t = r.next_page_token
        raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
        assert raw.endswith(b"r")
        forged = base64.urlsafe_b64encode(raw[:-1] + b"x").rstrip(b"=")
        code, msg = code_of(stub.QueryProbeHistory,
                            pb.health.QueryProbeHistoryRequest(
                                target="probe//web", page_size=1,
                                start_time=ts(pb, T0),
                                page_token=forged.decode()))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token: not a token this server issued" in msg


def test_latency_from_rollups(pb, prefilled):
    daemon, broken = prefilled
    with grpc.insecure_channel(daemon.addr) as ch:
        stub = pb.health_grpc.HealthServiceStub(ch)

        def latency(step, start=T0, end=T0 + 3600 * S, **kw):
            return stub.QueryLatency(pb.health.QueryLatencyRequest(
                target="probe//web", start_time=ts(pb, start),
                end_time=ts(pb, end), step_seconds=step, **kw))

        r = latency(60)
        assert list(r.quantiles) == pytest.approx([0.5, 0.9, 0.99])
        assert not r.HasField("coarse_until_time")
        assert len(r.steps) == 60
        for m, s in enumerate(r.steps):
            assert s.start_time.ToMicroseconds() == T0 + m * 60 * S
            count, failures, hist = MINUTES[m]
            assert (s.count, s.failures) == (count, failures)
            lo, hi = (200, 399) if 2 in hist else (800, 1599)
            assert all(lo <= q <= hi for q in s.quantile_us), s
        # Whole hours (read from the hour rollup) and 10-minute steps.
        r = latency(3600)
        assert [(s.count, s.failures) for s in r.steps] == [(3600, 60)]
        r = latency(600, quantiles=[0, 1])
        assert [(s.count, s.failures) for s in r.steps] == \
            [(600, 0), (600, 60)] + [(600, 0)] * 4
        assert r.steps[1].quantile_us[0] >= 200
        assert r.steps[1].quantile_us[1] <= 1599
        # A step without results: -1 for each quantile. Minutes before
        # the start are not counted; the start is taken to its minute.
        r = latency(60, start=T0 - 90 * S, end=T0 + 60 * S)
        assert [s.count for s in r.steps] == [0, 0, 60]
        assert list(r.steps[0].quantile_us) == [-1, -1, -1]
        assert r.steps[0].start_time.ToMicroseconds() == T0 - 120 * S

        # A rollup that does not unpack: DATA_LOSS naming the row.
        code, msg = code_of(stub.QueryLatency, pb.health.QueryLatencyRequest(
            target="probe//broken", start_time=ts(pb, T0),
            end_time=ts(pb, T0 + 3600 * S), step_seconds=60))
        assert code == grpc.StatusCode.DATA_LOSS
        assert f"rollup_minutes row (target {broken}, hour {HOUR})" in msg


@pytest.mark.parametrize("kw,code,words", [
    ({"step_seconds": 60}, "INVALID_ARGUMENT", "start_time: Required"),
    ({"start": 0, "step_seconds": 59}, "INVALID_ARGUMENT",
     "step_seconds: must be a whole number of minutes"),
    ({"start": 0, "step_seconds": 90}, "INVALID_ARGUMENT",
     "e.g. 300 for 5-minute steps"),
    ({"start": 0}, "INVALID_ARGUMENT", "got 0"),
    ({"start": 0, "end": 0, "step_seconds": 60}, "INVALID_ARGUMENT",
     "end_time: must be after start_time"),
    ({"start": 0, "end": 10001 * 60, "step_seconds": 60},
     "INVALID_ARGUMENT", "take a step of at least 120s"),
    ({"start": 0, "end": 3600, "step_seconds": 60,
      "quantiles": [0.5, 1.5]},
     "INVALID_ARGUMENT", "quantiles[1]: 1.5 is not in [0, 1]"),
    ({"start": 0, "end": 3600, "step_seconds": 60,
      "quantiles": [math.nan]},
     "INVALID_ARGUMENT", "quantiles[0]: nan"),
    ({"start": 0, "end": 3600, "step_seconds": 60,
      "quantiles": [0.5] * 17},
     "INVALID_ARGUMENT", "quantiles: at most 16"),
    ({"target": "probe//nope", "start": 0, "end": 60, "step_seconds": 60},
     "NOT_FOUND", "probe//nope"),
    ({"target": "widget/x/y", "start": 0, "end": 60, "step_seconds": 60},
     "INVALID_ARGUMENT", "target:"),
])
def test_latency_bad_requests(pb, channel, kw, code, words):
    kw = dict(kw)
    req = pb.health.QueryLatencyRequest(target=kw.pop("target", "probe//x"))
    if "start" in kw:
        req.start_time.CopyFrom(ts(pb, T0 + kw.pop("start") * S))
    if "end" in kw:
        req.end_time.CopyFrom(ts(pb, T0 + kw.pop("end") * S))
    for k, v in kw.items():
        if isinstance(v, list):
            getattr(req, k).extend(v)
        else:
            setattr(req, k, v)
    probes = pb.probe_grpc.ProbeServiceStub(channel)
    probes.CreateProbe(pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
        name="x", tcp_socket=pb.probe.TCPSocketAction(host="127.0.0.1",
                                                      port=1))))
    got, msg = code_of(pb.health_grpc.HealthServiceStub(channel)
                       .QueryLatency, req)
    assert got == getattr(grpc.StatusCode, code), msg
    assert words in msg


def test_cli_history_and_latency(prefilled):
    daemon, _ = prefilled
    a = daemon.addr
    span = ("--since", iso(T0), "--until", iso(T0 + 3600 * S))
    out = run_cli(a, "history", "probe//web", *span, "--oldest-first",
                  check=0).stdout
    lines = out.splitlines()
    # The failures line: one block per minute, the failing one full.
    assert lines[0].startswith("Failures  ")
    assert "3600 results, 60 failed (1.7%; worst step 100.0%)" in lines[0]
    spark = lines[0].split()[1]
    assert len(spark) == 60 and spark[10] == "\u2588" and \
        set(spark[:10] + spark[11:]) == {"\u2581"}
    assert "2026-09-21 14:00:00Z .. 2026-09-21 15:00:00Z, 1m steps" in \
        lines[1]
    rows = [x for x in lines if x.startswith("2026-09-21 14:")]
    assert len(rows) == 3
    assert lines[3].split()[:5] == ["FIRST", "LAST", "COUNT", "RESULT",
                                    "MEAN"]
    assert rows[0].split()[4:6] == ["600", "ok"]
    assert rows[1].split()[4:6] == ["60", "FAIL"]
    assert "200us" in rows[1] and "HTTP_STATUS" in rows[1]
    assert rows[1].endswith("last 503 (first: first 503)")

    got = json.loads(run_cli(a, "-o", "json", "history", "probe//web",
                             *span, check=0).stdout)
    assert [g["count"] for g in got] == ["2940", "60", "600"]
    assert got[1]["firstMessage"] == "first 503"

    out = run_cli(a, "latency", "probe//web", *span, "--step", "10m",
                  check=0).stdout.splitlines()
    assert out[0].startswith("P99  ")
    assert "10m steps" in out[1]
    assert out[3].split() == ["TIME", "RESULTS", "FAILED", "P50", "P90",
                              "P99"]
    assert len(out) == 4 + 6
    assert out[5].split()[2:4] == ["600", "60"]
    js = json.loads(run_cli(a, "-o", "json", "latency", "probe//web",
                            *span, check=0).stdout)
    assert len(js["steps"]) == 60
    p = run_cli(a, "latency", "probe//web", "--step", "1.5s", check=2)
    assert "--step" in p.stderr
    p = run_cli(a, "latency", "probe//web", *span, "--step", "90s",
                check=1)
    assert "step_seconds" in p.stderr
