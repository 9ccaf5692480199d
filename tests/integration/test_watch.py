"""List-then-watch without a race, the replay's end marker, replaying from
the oldest kept transition, the status codes of a resume point that is gone
or from the future, deletion as a transition, and UpdateProbe that changes
nothing. The real daemon, real probes against loopback servers whose
answers the tests switch."""
import queue
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import SLOW
from test_probing import Watch, create, timing, web  # noqa: F401 (fixture)

UNKNOWN, HEALTHY, UNHEALTHY, DELETED = 1, 2, 3, 5


@pytest.fixture
def flapper(web):  # noqa: F811
    """A target that answers 200 and 500 in turn: a transition per check."""
    web.mode = "flap"
    return web


def health(pb, channel):
    return pb.health_grpc.HealthServiceStub(channel)


def flapping_probe(pb, name, port, **kw):
    """An HTTP probe with thresholds of 1: a transition per change."""
    t = dict(period_milliseconds=100, success_threshold=1,
             failure_threshold=1)
    t.update(kw)
    return pb.probe.Probe(
        name=name, labels={"suite": "watch"},
        http_get=pb.probe.HTTPGetAction(host="127.0.0.1", port=port),
        **timing(**t))


def stored_transitions(pb, channel, targets):
    """Every stored transition of the targets, by sequence."""
    out = []
    for t in targets:
        token = ""
        while True:
            r = health(pb, channel).QueryTransitions(
                pb.health.QueryTransitionsRequest(
                    target=t, order=pb.common.ORDER_OLDEST_FIRST,
                    page_size=1000, page_token=token))
            out += list(r.transitions)
            token = r.next_page_token
            if not token:
                break
    return sorted(out, key=lambda t: t.sequence)


def events_until(w, pred, timeout=30):
    """Events (transitions and markers) until pred(event) holds."""
    got, deadline = [], time.monotonic() + timeout * SLOW
    while True:
        ev = w.next(max(0.1, deadline - time.monotonic()))
        got.append(ev)
        if pred(ev):
            return got


def test_list_then_watch_misses_and_repeats_nothing(pb, channel, flapper):
    """Targets change state every 100 ms while a client lists them and then
    watches from the list's sequence: applying the events to the listed
    states gives exactly the stored history, with nothing missed or
    repeated."""
    names = [f"lw{i}" for i in range(3)]
    warm = Watch(pb, channel)
    for n in names:
        create(pb, channel, flapping_probe(pb, n, flapper.port))
    # Let transitions flow for a while before the list.
    events_until(warm, lambda ev: ev.transition.sequence >= 6)
    warm.close()

    listed = health(pb, channel).ListTargets(pb.health.ListTargetsRequest(
        label_selector="suite=watch"))
    assert len(listed.targets) == 3 and listed.sequence > 0
    state = {t.name: t.state for t in listed.targets}
    for t in listed.targets:
        assert 0 < t.sequence <= listed.sequence

    w = Watch(pb, channel, label_selector="suite=watch",
              since_sequence=listed.sequence)
    evs = events_until(w, lambda ev: ev.transition.sequence >=
                       listed.sequence + 30)
    w.close()
    transitions = [ev for ev in evs if not ev.replay_end]
    markers = [ev for ev in evs if ev.replay_end]
    assert len(markers) == 1 and markers[0].sequence >= listed.sequence
    assert not markers[0].HasField("transition")
    seqs = [ev.transition.sequence for ev in transitions]
    assert seqs == sorted(set(seqs)), "out of order or repeated"
    assert seqs[0] > listed.sequence
    # Each event continues from the state the client holds.
    for ev in transitions:
        t = ev.transition
        assert t.from_state == state[t.target], (t, state)
        state[t.target] = t.to_state
        assert ev.target.sequence == t.sequence
    # And what came is what is stored, none missing in between.
    stored = [t.sequence for t in stored_transitions(pb, channel,
                                                     [f"probe//{n}"
                                                      for n in names])
              if listed.sequence < t.sequence <= seqs[-1]]
    assert seqs == stored


def test_pages_each_carry_their_snapshot(pb, channel, flapper):
    for n in ("pa", "pb", "pc"):
        create(pb, channel, flapping_probe(pb, n, flapper.port))
    w = Watch(pb, channel, label_selector="suite=watch")
    w.collect({"probe//pa": UNHEALTHY, "probe//pb": UNHEALTHY,
               "probe//pc": UNHEALTHY})
    w.close()
    h = health(pb, channel)
    token, pages = "", []
    while True:
        r = h.ListTargets(pb.health.ListTargetsRequest(
            label_selector="suite=watch", page_size=1, page_token=token))
        pages.append(r)
        token = r.next_page_token
        if not token:
            break
    assert len(pages) == 3
    for r in pages:
        (t,) = r.targets
        assert 0 < t.sequence <= r.sequence
    # Later pages are later snapshots.
    assert pages[0].sequence <= pages[1].sequence <= pages[2].sequence


def test_replay_end_marks_where_live_begins(pb, channel, web):
    w = Watch(pb, channel, targets=["probe//mark"])
    create(pb, channel, flapping_probe(pb, "mark", web.port,
                                       period_milliseconds=200))
    first = w.until("probe//mark", HEALTHY)
    web.mode = "500"
    second = w.until("probe//mark", UNHEALTHY)
    w.close()

    # Resume after the first: the second from the database, the marker
    # at the sequence the replay reached, then live events only.
    r = Watch(pb, channel, targets=["probe//mark"],
              since_sequence=first.transition.sequence)
    replayed = r.next()
    assert replayed.transition.sequence == second.transition.sequence
    marker = r.next()
    assert marker.replay_end
    assert marker.sequence >= second.transition.sequence
    web.mode = "ok"
    live = r.until("probe//mark", HEALTHY)
    assert live.transition.sequence > marker.sequence
    r.close()

    # A watch without a replay gets no marker: its first event is live.
    plain = Watch(pb, channel, targets=["probe//mark"])
    web.mode = "500"
    ev = plain.next()
    assert not ev.replay_end and ev.transition.to_state == UNHEALTHY
    plain.close()


def test_from_oldest_replays_everything_kept(pb, channel, web):
    w = Watch(pb, channel, targets=["probe//old"])
    create(pb, channel, flapping_probe(pb, "old", web.port,
                                       period_milliseconds=200))
    w.until("probe//old", HEALTHY)
    web.mode = "500"
    w.until("probe//old", UNHEALTHY)
    w.close()
    stored = [t.sequence for t in stored_transitions(pb, channel,
                                                     ["probe//old"])]
    r = Watch(pb, channel, targets=["probe//old"], from_oldest=True)
    evs = events_until(r, lambda ev: ev.replay_end)
    r.close()
    assert [ev.transition.sequence for ev in evs[:-1]] == stored
    assert evs[-1].sequence >= stored[-1]

    bad = Watch(pb, channel, from_oldest=True, since_sequence=1)
    with pytest.raises(grpc.RpcError) as e:
        bad.next()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "from_oldest" in e.value.details()


def test_resume_point_removed_by_retention(pb, daemon_factory, tmp_path,
                                           web):
    cfg = tmp_path / "short.yaml"
    cfg.write_text("retention: {transitions: 1s, interval: 1s}\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        w = Watch(pb, ch, targets=["probe//brief"])
        create(pb, ch, flapping_probe(pb, "brief", web.port,
                                      period_milliseconds=200))
        first = w.until("probe//brief", HEALTHY).transition.sequence
        web.mode = "500"
        w.until("probe//brief", UNHEALTHY)
        web.mode = "ok"
        w.until("probe//brief", HEALTHY)
        w.close()
        # Retention removes the first within about two seconds.
        deadline = time.monotonic() + 30 * SLOW
        while any(t.sequence == first for t in
                  stored_transitions(pb, ch, ["probe//brief"])):
            assert time.monotonic() < deadline, "retention did not run"
            time.sleep(0.2)
        gone = Watch(pb, ch, since_sequence=first)
        with pytest.raises(grpc.RpcError) as e:
            gone.next()
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "removed by retention" in e.value.details()
        assert "ListTargets" in e.value.details()
        # The future is another code.
        future = Watch(pb, ch, since_sequence=10**9)
        with pytest.raises(grpc.RpcError) as e:
            future.next()
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert d.stop() == 0


def test_deletion_is_a_transition(pb, channel, web):
    probes = pb.probe_grpc.ProbeServiceStub(channel)
    hc = health_pb2_grpc.HealthStub(channel)
    w = Watch(pb, channel, targets=["probe//del"])
    create(pb, channel, flapping_probe(pb, "del", web.port,
                                       period_milliseconds=200))
    up = w.until("probe//del", HEALTHY)
    std = hc.Watch(health_pb2.HealthCheckRequest(service="probe//del"))
    std_q = queue.Queue()

    def read_std():
        try:
            for m in std:
                std_q.put(m.status)
        except grpc.RpcError:
            pass  # cancelled at the end
    threading.Thread(target=read_std, daemon=True).start()
    S = health_pb2.HealthCheckResponse
    assert std_q.get(timeout=10 * SLOW) == S.SERVING

    probes.DeleteProbe(pb.probe.DeleteProbeRequest(name="del"))
    ev = w.until("probe//del", DELETED)
    assert ev.transition.from_state == HEALTHY
    assert ev.transition.cause == "probe deleted through the API"
    assert ev.transition.sequence > up.transition.sequence
    assert ev.target.state == DELETED
    # Standard health tooling hears the target is gone.
    assert std_q.get(timeout=10 * SLOW) == S.SERVICE_UNKNOWN
    std.cancel()
    h = health(pb, channel)
    with pytest.raises(grpc.RpcError) as e:
        h.GetHealth(pb.health.GetHealthRequest(target="probe//del"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "probe//del" not in [t.name for t in h.ListTargets(
        pb.health.ListTargetsRequest()).targets]
    # The history keeps it.
    last = stored_transitions(pb, channel, ["probe//del"])[-1]
    assert (last.sequence, last.to_state) == (ev.transition.sequence,
                                              DELETED)

    # Re-created: a clean start, not the deleted one's verdict or streak.
    web.mode = "hang"  # no result for a while
    create(pb, channel, flapping_probe(pb, "del", web.port,
                                       period_milliseconds=200,
                                       timeout_milliseconds=5000))
    got = h.GetHealth(pb.health.GetHealthRequest(target="probe//del"))
    assert got.target.state == UNKNOWN
    assert not got.HasField("last_result")
    assert not got.HasField("last_transition")
    assert got.consecutive == 0 and got.target.sequence == 0
    web.release.set()
    w.close()


def test_update_that_changes_nothing_keeps_the_generation(pb, channel):
    probes = pb.probe_grpc.ProbeServiceStub(channel)
    p = pb.probe.Probe(name="same", labels={"a": "1", "b": "2", "c": "3"},
                       tcp_socket=pb.probe.TCPSocketAction(host="127.0.0.1",
                                                           port=9))
    created = probes.CreateProbe(pb.probe.CreateProbeRequest(probe=p))
    assert created.generation == 1
    again = probes.UpdateProbe(pb.probe.UpdateProbeRequest(probe=p))
    assert again.generation == 1
    assert again.update_time == created.update_time
    # The same labels in another order are the same definition.
    q = pb.probe.Probe()
    q.CopyFrom(p)
    q.labels.clear()
    for k in ("c", "a", "b"):
        q.labels[k] = p.labels[k]
    assert probes.UpdateProbe(pb.probe.UpdateProbeRequest(
        probe=q)).generation == 1
    # A real change bumps it, once.
    q.tcp_socket.port = 10
    assert probes.UpdateProbe(pb.probe.UpdateProbeRequest(
        probe=q)).generation == 2
    assert probes.UpdateProbe(pb.probe.UpdateProbeRequest(
        probe=q)).generation == 2
