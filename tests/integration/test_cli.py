"""The kubemedic CLI against a real daemon: every command, tables and
-o json, and what a person sees when something is wrong."""
import json
import socket
import threading

from conftest import run_cli, seed


def test_probe_lifecycle_with_flags(daemon):
    a = daemon.addr
    out = run_cli(a, "probes", "create", "web", "--http",
                  "http://127.0.0.1:8080/healthz", "-H", "X-Probe: km",
                  "--period", "5s", "--failure-threshold", "4",
                  "--label", "team=shop", "--label", "tier=web",
                  check=0).stdout
    assert "probe/web created (target probe//web)" in out

    got = json.loads(run_cli(a, "-o", "json", "probes", "get", "web",
                             check=0).stdout)
    assert got["httpGet"] == {"host": "127.0.0.1", "port": 8080,
                              "path": "/healthz", "scheme": "HTTP",
                              "httpHeaders": [{"name": "X-Probe",
                                               "value": "km"}]}
    assert got["periodSeconds"] == 5
    assert got["failureThreshold"] == 4
    # The kubelet's defaults where nothing was said.
    assert got["timeoutSeconds"] == 1 and got["successThreshold"] == 1
    assert got["labels"] == {"team": "shop", "tier": "web"}
    assert got["source"] == "PROBE_SOURCE_API"
    assert got["generation"] == "1"

    table = run_cli(a, "probes", "get", "web", check=0).stdout
    assert "HTTP GET:    http://127.0.0.1:8080/healthz" in table
    assert "Header:    X-Probe: km" in table

    out = run_cli(a, "probes", "update", "web", "--tcp", "127.0.0.1:9",
                  "--generation", "1", check=0).stdout
    assert "generation 2" in out
    # A stale generation is refused: someone changed it meanwhile.
    p = run_cli(a, "probes", "update", "web", "--tcp", "127.0.0.1:10",
                "--generation", "1", check=1)
    assert "FAILED_PRECONDITION" in p.stderr and "generation 2" in p.stderr

    out = run_cli(a, "probes", "delete", "web", check=0).stdout
    assert "deleted" in out
    p = run_cli(a, "probes", "get", "web", check=1)
    assert p.stderr.strip() == 'kubemedic: NOT_FOUND: probe "web" not found'


def test_create_from_yaml_and_list_with_selector(daemon_factory, tmp_path):
    # Exec and file probes through the API: only where the config says.
    cfg = tmp_path / "km.yaml"
    cfg.write_text("api: {allowExec: true, allowFile: true, "
                   "filePathPrefixes: [/tmp]}\n")
    daemon = daemon_factory(config=cfg).start()
    f = tmp_path / "probes.yaml"
    f.write_text("""
- name: api-tcp
  labels: {team: shop}
  tcpSocket: {host: 127.0.0.1, port: 7070}
- name: heartbeat
  labels: {team: infra}
  file: {path: /tmp/heartbeat, maxAgeSeconds: 30}
  periodMilliseconds: 500
- name: check-exec
  labels: {team: shop, tier: batch}
  exec: {command: ["/bin/true", "--quick"]}
  timeoutSeconds: 3
""")
    out = run_cli(daemon.addr, "probes", "create", "-f", f, check=0).stdout
    assert out.count("created") == 3

    rows = run_cli(daemon.addr, "probes", "list", check=0).stdout.splitlines()
    assert rows[0].split()[:3] == ["NAME", "TYPE", "PERIOD"]
    assert [r.split()[0] for r in rows[1:]] == ["api-tcp", "check-exec",
                                                "heartbeat"]
    assert rows[3].split()[1:3] == ["file", "500ms"]

    got = json.loads(run_cli(daemon.addr, "-o", "json", "probes", "list",
                             "-l", "team=shop,tier!=batch", check=0).stdout)
    assert [p["name"] for p in got] == ["api-tcp"]
    got = json.loads(run_cli(daemon.addr, "-o", "json", "probes", "list",
                             "-l", "team in (shop, infra),!tier",
                             check=0).stdout)
    assert sorted(p["name"] for p in got) == ["api-tcp", "heartbeat"]
    p = run_cli(daemon.addr, "probes", "list", "-l", "team in (shop",
                check=1)
    assert "INVALID_ARGUMENT" in p.stderr and "label_selector" in p.stderr

    # Creating the same names again: each refused, none lost.
    p = run_cli(daemon.addr, "probes", "create", "-f", f, check=1)
    assert p.stderr.count("ALREADY_EXISTS") == 3
    assert daemon.stop() == 0


def test_invalid_probes_named_field_by_field(daemon, tmp_path):
    a = daemon.addr
    p = run_cli(a, "probes", "create", "Bad_Name", "--tcp", "127.0.0.1:80",
                check=1)
    assert "INVALID_ARGUMENT: probe.name" in p.stderr
    p = run_cli(a, "probes", "create", "x", "--tcp", "127.0.0.1:80",
                "--period", "50ms", check=1)
    assert "probe.period_milliseconds" in p.stderr and "100" in p.stderr
    p = run_cli(a, "probes", "create", "x", "--exec", "--workdir", "rel",
                "--", "/bin/true", check=1)
    assert "probe.exec.working_dir" in p.stderr
    # YAML errors name the file and line, before anything is sent.
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\ntcpSocket: {host: h, port: http}\n")
    p = run_cli(a, "probes", "create", "-f", f, check=2)
    assert str(f) in p.stderr and ":2" in p.stderr
    # Nothing was created by any of that.
    assert run_cli(a, "probes", "list", check=0).stdout.strip() == "No probes."


def test_status_targets_history_transitions(daemon_factory, tmp_path):
    # A history written before kubemedicd starts (current health is loaded
    # from the database at start, then kept in memory).
    db = tmp_path / "seeded.db"
    t0 = 1_790_000_000_000_000  # 2026-09-21
    seed(db, "probe//checkout", "--results", 30, "--start-us", t0,
         "--step-us", 1_000_000, "--fail-every", 10,
         "--transition", f"{t0 + 5_000_000}:1:2:1 consecutive success",
         "--transition", f"{t0 + 9_000_000}:2:3:3 consecutive failures "
                         "(HTTP 500)")
    # Kept: results from September are past the default 30 days.
    cfg = tmp_path / "keep.yaml"
    cfg.write_text("retention: {results: 0, transitions: 0}\n")
    daemon = daemon_factory(db=db, config=cfg).start()
    a = daemon.addr
    run_cli(a, "probes", "create", "checkout", "--http",
            "http://127.0.0.1:8080/", "--label", "team=shop", check=0)

    st = run_cli(a, "status", "probe//checkout", check=0).stdout
    assert "State:       UNHEALTHY" in st
    assert "Last result: FAIL" in st and "HTTP_STATUS 500" in st
    assert "UNKNOWN -> UNHEALTHY" not in st
    assert "HEALTHY -> UNHEALTHY" in st and "(HTTP 500)" in st
    js = json.loads(run_cli(a, "-o", "json", "status", "probe//checkout",
                            check=0).stdout)
    assert js["target"]["state"] == "HEALTH_STATE_UNHEALTHY"
    assert js["lastResult"]["statusCode"] == 500
    assert js["consecutive"] == 1

    rows = run_cli(a, "targets", "--state", "unhealthy",
                   check=0).stdout.splitlines()
    assert rows[1].split()[:3] == ["probe//checkout", "UNHEALTHY", "no"]
    assert "No targets match." in run_cli(a, "targets", "--state", "healthy",
                                          check=0).stdout

    # History is runs: results 0-8 ok, 9 HTTP 500, 10-18 ok, 19, 20-28,
    # 29 — six runs holding the 30 results, one a second from 14:13:20.
    def stamp(i):
        return f"2026-09-21T14:13:{20 + i}Z"

    def runs(*args):
        got = json.loads(run_cli(a, "-o", "json", "history",
                                 "probe//checkout", *args, check=0).stdout)
        return [(g["startTime"], g["lastStartTime"], int(g["count"]),
                 bool(g.get("success"))) for g in got]

    every = [(stamp(f), stamp(f + n - 1), n, n > 1)
             for f, n in [(0, 9), (9, 1), (10, 9), (19, 1), (20, 9),
                          (29, 1)]]
    assert runs("--oldest-first") == every
    # Failures only, oldest first: results 9, 19, 29, a run each.
    assert runs("--failures", "--oldest-first") == \
        [r for r in every if not r[3]]
    # Newest first, in a range: [25 s, 35 s) holds parts of three runs,
    # each shown whole (the one begun before the range too).
    assert runs("--since", "2026-09-21T14:13:25Z",
                "--until", "2026-09-21T14:13:35Z") == every[2::-1]
    # --limit: the newest runs, as many as asked.
    assert runs("--limit", 4) == every[:1:-1]
    tr = run_cli(a, "transitions", "probe//checkout", "--oldest-first",
                 check=0).stdout.splitlines()
    assert "UNKNOWN    -> HEALTHY" in tr[1]
    assert "HEALTHY    -> UNHEALTHY" in tr[2]

    p = run_cli(a, "status", "probe//nope", check=1)
    assert 'NOT_FOUND: target "probe//nope" not found' in p.stderr
    p = run_cli(a, "history", "widget/x/y", check=1)
    assert 'INVALID_ARGUMENT: target: target "widget/x/y": unknown kind' \
        in p.stderr


def test_server_down_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    p = run_cli(addr, "probes", "list", check=1)
    assert f"cannot reach kubemedicd at {addr}" in p.stderr
    assert p.stdout == ""


def test_usage_errors_exit_2(daemon):
    assert run_cli(daemon.addr, "probes", "frobnicate", check=2).stderr
    assert run_cli(daemon.addr, "history", check=2).stderr
    p = run_cli(daemon.addr, "probes", "create", "x", "--tcp", "nocolon",
                check=2)
    assert "HOST:PORT" in p.stderr


def test_health_command(daemon):
    assert run_cli(daemon.addr, "health", check=0).stdout.strip() == "SERVING"
    p = run_cli(daemon.addr, "health", "probe//missing", check=1)
    assert "NOT_FOUND" in p.stderr


def test_watch_streams_transitions(daemon):
    import subprocess
    from conftest import KUBEMEDIC
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    watch = subprocess.Popen([str(KUBEMEDIC), "--server", daemon.addr, "-o",
                              "json", "watch", "probe//w"],
                             stdout=subprocess.PIPE, text=True)
    # Should a line never come, readline ends with the killed process.
    guard = threading.Timer(60, watch.kill)
    guard.start()
    try:
        run_cli(daemon.addr, "probes", "create", "w", "--tcp",
                f"127.0.0.1:{port}", "--period", "200ms",
                "--failure-threshold", "1", check=0)
        first = json.loads(watch.stdout.readline())
        assert first["transition"]["target"] == "probe//w"
        assert first["transition"]["toState"] == "HEALTH_STATE_HEALTHY"
        lst.close()
        second = json.loads(watch.stdout.readline())
        assert second["transition"]["toState"] == "HEALTH_STATE_UNHEALTHY"
        assert "refused" in second["transition"]["cause"]
        # Resuming from the first: the second again, from the database.
        out = subprocess.Popen(
            [str(KUBEMEDIC), "--server", daemon.addr, "-o", "json", "watch",
             "--since-sequence", first["transition"]["sequence"]],
            stdout=subprocess.PIPE, text=True)
        again = json.loads(out.stdout.readline())
        marker = json.loads(out.stdout.readline())
        out.kill()
        out.wait()
        assert again["transition"] == second["transition"]
        assert marker["replayEnd"] is True and "transition" not in marker
        assert int(marker["sequence"]) >= int(second["transition"]
                                               ["sequence"])
        # In a table: everything stored, then a line where live begins.
        out = subprocess.Popen(
            [str(KUBEMEDIC), "--server", daemon.addr, "watch",
             "--from-oldest", "probe//w"],
            stdout=subprocess.PIPE, text=True)
        lines = [out.stdout.readline() for _ in range(4)]
        out.kill()
        out.wait()
        assert lines[0].split()[:3] == ["SEQ", "TIME", "TARGET"]
        assert "UNKNOWN    -> HEALTHY" in lines[1]
        assert "HEALTHY    -> UNHEALTHY" in lines[2] and "refused" in lines[2]
        assert lines[3].startswith("-- stored transitions up to ")
        assert run_cli(daemon.addr, "watch", "--from-oldest",
                       "--since-sequence", 1, check=2)
    finally:
        guard.cancel()
        watch.kill()
        watch.wait()
