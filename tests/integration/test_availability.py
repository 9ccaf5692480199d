"""HealthService.GetAvailability over real gRPC against the real daemon:
requests it refuses and why, a selection of probes added up, the cap on a
selection's size, and a real probe that fails and recovers — one incident,
its downtime and MTTR exactly what its two transitions say. Every wait is
on an event (a WatchHealth message)."""
import json
import math

import grpc
import pytest

from conftest import SLOW, run_cli
from test_probing import Watch, Web, create, timing

HEALTHY, UNHEALTHY = 2, 3
DAY = 86400


@pytest.fixture
def web():
    w = Web()
    yield w
    w.close()


def stub(pb, channel):
    return pb.health_grpc.HealthServiceStub(channel)


def code_of(call, req):
    with pytest.raises(grpc.RpcError) as e:
        call(req)
    return e.value.code(), e.value.details()


def web_probe(pb, name, port, **labels):
    return pb.probe.Probe(
        name=name, labels=labels,
        http_get=pb.probe.HTTPGetAction(host="127.0.0.1", port=port,
                                        path="/healthz"),
        **timing())


def test_refusals_say_what_to_fix(pb, channel):
    from google.protobuf.timestamp_pb2 import Timestamp

    def ts(s):
        return Timestamp(seconds=s)

    req = pb.health.GetAvailabilityRequest
    get = stub(pb, channel).GetAvailability
    now = 1_800_000_000
    bad = [
        (req(), "target: Required value"),
        (req(target="probe//a", label_selector="team=shop"), "not both"),
        (req(target="probe//a", kind=pb.common.TARGET_KIND_PROBE),
         "not both"),
        (req(target="nonsense"), "target: "),
        (req(target="probe//a", start_time=ts(now), end_time=ts(now)),
         "start_time: must be before end_time"),
        (req(target="probe//a", start_time=ts(now - 800 * DAY),
             end_time=ts(now)), "800 days long; at most 731"),
        (req(target="probe//a", step_seconds=-5), "step_seconds: must be"),
        # 30 days in 60 s steps: 43,200 steps; 2,592 s would do.
        (req(target="probe//a", step_seconds=60),
         "43200 steps of the window; at most 1000: take steps of at least "
         "2592 seconds"),
        (req(label_selector="team in (shop"), "label_selector"),
        (req(kind=99), "kind: unknown TargetKind value 99"),
    ]
    for r, want in bad:
        code, msg = code_of(get, r)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and want in msg, \
            (r, code, msg)
    code, msg = code_of(get, req(target="probe//nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "probe//nope" in msg, msg


def test_selection_adds_up_two_probes(pb, channel, web):
    w = Watch(pb, channel, kind=pb.common.TARGET_KIND_PROBE)
    for name, team in (("a", "shop"), ("b", "shop"), ("c", "ops")):
        create(pb, channel, web_probe(pb, name, web.port, team=team))
    w.collect({f"probe//{n}": HEALTHY for n in "abc"})
    w.close()

    get = stub(pb, channel).GetAvailability
    a = get(pb.health.GetAvailabilityRequest(label_selector="team=shop",
                                             step_seconds=3 * DAY))
    assert a.targets == 2 and a.target == ""
    assert a.incidents == 0 and a.open_incidents == 0
    assert a.downtime_seconds == 0 and a.mttr_seconds == 0
    # Healthy since their first verdict: every observed moment is up.
    assert a.uptime_percent == 100.0
    assert (a.end_time.ToSeconds() - a.start_time.ToSeconds()) == 30 * DAY
    assert len(a.steps) == 10 and a.step_seconds == 3 * DAY
    assert [s.start_time.ToSeconds() for s in a.steps] == [
        a.start_time.ToSeconds() + i * 3 * DAY for i in range(10)]
    # Only the last step is today: the others saw nothing.
    assert all(math.isnan(s.uptime_percent) for s in a.steps[:-1])
    assert a.steps[-1].uptime_percent == 100.0
    # A selection by kind takes all three; by cluster, none (probes have
    # no cluster).
    assert get(pb.health.GetAvailabilityRequest(
        kind=pb.common.TARGET_KIND_PROBE)).targets == 3
    none = get(pb.health.GetAvailabilityRequest(cluster="prod"))
    assert none.targets == 0 and math.isnan(none.uptime_percent)


def test_selection_over_the_cap_is_refused(pb, daemon_factory, tmp_path):
    """1001 config probes that never run (a day's initial delay): a
    selection of all of them is refused with their number."""
    lines = ["probes:"]
    for i in range(1001):
        lines += [f"  - name: p{i}",
                  "    tcpSocket: {host: 127.0.0.1, port: 9}",
                  "    initialDelaySeconds: 86400"]
    cfg = tmp_path / "many.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    d = daemon_factory(config=cfg).start(timeout=60)
    with grpc.insecure_channel(d.addr) as ch:
        get = stub(pb, ch).GetAvailability
        code, msg = code_of(get, pb.health.GetAvailabilityRequest(
            kind=pb.common.TARGET_KIND_PROBE))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "matches 1001 live targets" in msg and "narrow it" in msg
        # One of them alone is fine: never observed.
        a = get(pb.health.GetAvailabilityRequest(target="probe//p7"))
        assert a.targets == 1 and a.observed_seconds == 0
    assert d.stop() == 0


def test_failure_and_recovery_is_one_incident(pb, daemon, channel, web):
    w = Watch(pb, channel, targets=["probe//web"])
    create(pb, channel, web_probe(pb, "web", web.port, team="shop"))
    up = w.until("probe//web", HEALTHY)
    web.mode = "500"
    down = w.until("probe//web", UNHEALTHY)
    web.mode = "ok"
    back = w.until("probe//web", HEALTHY)
    w.close()
    down_us = (back.transition.time.ToMicroseconds() -
               down.transition.time.ToMicroseconds())
    assert 0 < down_us < 30_000_000 * SLOW

    get = stub(pb, channel).GetAvailability
    a = get(pb.health.GetAvailabilityRequest(target="probe//web"))
    assert a.target == "probe//web" and a.targets == 1
    assert a.incidents == 1 and a.open_incidents == 0
    # Whole seconds, rounded half up as the server does.
    assert a.downtime_seconds == (down_us + 500_000) // 1_000_000
    assert a.mttr_seconds == a.downtime_seconds
    # Observed from the first verdict to now; up = observed - down.
    assert a.observed_seconds >= a.downtime_seconds
    assert 0 < a.uptime_percent < 100
    assert list(a.actions) == []

    # The same window, only up to the failure: no incident at all; from
    # the failure to the recovery: the one under way, open at its end
    # when it ends before the recovery.
    t_down = down.transition.time
    a = get(pb.health.GetAvailabilityRequest(target="probe//web",
                                             end_time=t_down))
    assert a.incidents == 0 and a.downtime_seconds == 0
    mid = type(t_down)()
    mid.FromMicroseconds(t_down.ToMicroseconds() + down_us // 2)
    a = get(pb.health.GetAvailabilityRequest(target="probe//web",
                                             start_time=t_down,
                                             end_time=mid))
    assert a.incidents == 1 and a.open_incidents == 1
    assert a.uptime_percent == 0.0

    # The CLI says the same, in JSON and as a table.
    out = run_cli(daemon.addr, "-o", "json", "availability", "probe//web",
                  check=0)
    j = json.loads(out.stdout)
    assert j["incidents"] == 1 and j["targets"] == 1
    out = run_cli(daemon.addr, "availability", "probe//web", "--since",
                  "1h", "--step", "1m", check=0)
    assert "incidents" in out.stdout and "MTTR" in out.stdout, out.stdout
    out = run_cli(daemon.addr, "availability", "-l", "team=shop", check=0)
    assert "1 target" in out.stdout, out.stdout
    bad = run_cli(daemon.addr, "availability", "probe//web", "-l", "a=b")
    assert bad.returncode == 2 and "not both" in bad.stderr, bad.stderr

    # Deleted, its history is still answered: the incident stays, nothing
    # is open, and a selection no longer finds it.
    pb.probe_grpc.ProbeServiceStub(channel).DeleteProbe(
        pb.probe.DeleteProbeRequest(name="web"))
    a = get(pb.health.GetAvailabilityRequest(target="probe//web"))
    assert a.targets == 1 and a.incidents == 1 and a.open_incidents == 0
    assert a.downtime_seconds == (down_us + 500_000) // 1_000_000
    assert get(pb.health.GetAvailabilityRequest(
        label_selector="team=shop")).targets == 0
