"""A fleet from one daemon: the config's clusters: list. Two clusters whose
API servers are not there (127.0.0.1:1 refuses at once; loopback only):
kubemedicd starts, serves the API, logs each cluster's failure by name,
judges each cluster's API server under its prefixed name, and stops
cleanly. A malformed entry, a kubeconfig that cannot be read, and
clusters: beside --kubeconfig are refused at start with exit status 2 and
their exact messages. (Two real API servers are the e2e suite's.)"""
import re
import signal
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import KUBEMEDICD, SLOW

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster: {{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}
users:
- name: km
  user: {{token: not-a-secret}}
contexts:
- name: {name}
  context: {{cluster: {name}, user: km}}
current-context: {name}
"""


def write_kubeconfigs(tmp_path, *names):
    for n in names:
        (tmp_path / f"{n}.kubeconfig").write_text(KUBECONFIG.format(name=n))


def refused(tmp_path, config_text, *args):
    cfg = tmp_path / "km.yaml"
    cfg.write_text(config_text)
    p = subprocess.run([str(KUBEMEDICD), "--listen", "127.0.0.1:0", "--db",
                        str(tmp_path / "km.db"), "--config", str(cfg),
                        *args], capture_output=True, text=True,
                       timeout=30 * SLOW, cwd=tmp_path)
    # Refused before anything started: no database either.
    assert not (tmp_path / "km.db").exists()
    return p.returncode, p.stderr


def test_two_clusters_down_never_stop_the_daemon(pb, daemon_factory,
                                                  tmp_path):
    write_kubeconfigs(tmp_path, "east", "west")
    cfg = tmp_path / "clusters.yaml"
    # Relative kubeconfig paths: from the working directory (tmp_path).
    cfg.write_text("kube: {controlPlanePeriod: 1s}\n"
                   "clusters:\n"
                   "  - name: east\n"
                   "    kubeconfig: east.kubeconfig\n"
                   "  - name: west\n"
                   "    kubeconfig: west.kubeconfig\n"
                   "    namespace: shop\n"
                   "    labelSelector: \"tier in (web, api)\"\n")
    d = daemon_factory(config=cfg).start()
    for name in ("east", "west"):
        assert f'msg="watching a cluster" cluster={name} ' \
               f'server=https://127.0.0.1:1 context={name}' in d.log()
    # Each cluster's failure, by name; west's requests are its
    # namespace's and carry its selector.
    for name in ("east", "west"):
        # Said once per resource (maybe before "kubemedicd started").
        pattern = (r'msg="kube: watching a resource fails; trying again '
                   rf'with backoff" cluster={name} resource=\w+')
        if not re.search(pattern, d.log()):
            d.wait_for_log(pattern, 30)
    assert "/namespaces/shop/pods?" in d.log() or \
        "/namespaces/shop/replicasets?" in d.log()
    assert "labelSelector=tier%20in%20%28web%2C%20api%29" in d.log()

    with grpc.insecure_channel(d.addr) as ch:
        hc = health_pb2_grpc.HealthStub(ch)
        assert hc.Check(health_pb2.HealthCheckRequest(),
                        timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        h = pb.health_grpc.HealthServiceStub(ch)
        # Each API server is a target under its cluster's name, judged
        # UNHEALTHY with the reason (a period of 1 s).
        deadline = time.monotonic() + 30 * SLOW
        for name in ("east", "west"):
            while True:
                try:
                    got = h.GetHealth(pb.health.GetHealthRequest(
                        target=f"{name}:controlplane//apiserver"),
                        timeout=5)
                    if got.target.state == pb.common.HEALTH_STATE_UNHEALTHY:
                        break
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.NOT_FOUND, e
                assert time.monotonic() < deadline, d.log()
                time.sleep(0.2)
            assert got.target.cluster == name
            assert got.target.name == f"{name}:controlplane//apiserver"
        # No unprefixed target: nothing was watched without a name.
        code = None
        try:
            h.GetHealth(pb.health.GetHealthRequest(
                target="controlplane//apiserver"), timeout=5)
        except grpc.RpcError as e:
            code = e.code()
        assert code == grpc.StatusCode.NOT_FOUND
    # The counters of both clusters, in one line (SIGUSR1: at once; the
    # clusters' counters are as of their last tick, once a second):
    # every request failed, each of them counted.
    deadline = time.monotonic() + 10 * SLOW
    while True:
        d.proc.send_signal(signal.SIGUSR1)
        line = d.wait_for_log(r'msg="kube stats" clusters=2 .*', 10 * SLOW)
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if int(fields["failures"]) > 0 and fields["targets"] == "2":
            break
        assert time.monotonic() < deadline, line
        time.sleep(0.2)  # the next tick's counters (no event tells it)
    assert int(fields["failures"]) > 0, line
    assert int(fields["failed_requests"]) > 0, line
    assert int(fields["requests"]) >= int(fields["failed_requests"]), line
    assert fields["targets"] == "2", line  # the two API servers
    rc = d.stop()
    assert rc == 0, d.log()
    assert 'msg=stopped' in d.log()


def test_malformed_cluster_entries_are_refused(tmp_path):
    write_kubeconfigs(tmp_path, "east")
    cases = [
        ("clusters:\n  - {name: east, kubeconfig: east.kubeconfig}\n"
         "  - {kubeconfig: east.kubeconfig}\n",
         "kubemedicd: {cfg}:3:5: clusters[1].name: Required value: every "
         "cluster needs a name (its targets are "
         "\"NAME:kind/namespace/name\")\n"),
        ("clusters:\n  - {name: East, kubeconfig: east.kubeconfig}\n",
         "kubemedicd: {cfg}:2:12: clusters[0].name: \"East\": must be "
         "lower-case letters, digits and '-', starting and ending with a "
         "letter or digit, at most 63 characters (an RFC 1123 label: it "
         "prefixes the cluster's targets)\n"),
        ("clusters:\n  - {name: a, kubeconfig: east.kubeconfig, "
         "inCluster: true}\n",
         "kubemedicd: {cfg}:2:55: clusters[0]: give kubeconfig or "
         "inCluster: true, not both\n"),
        ("clusters:\n  - name: a\n    kubeconfig: east.kubeconfig\n"
         "    namespaces: [shop]\n",
         "kubemedicd: {cfg}:4:5: unknown key \"namespaces\" in clusters[0] "
         "(known: name, kubeconfig, context, inCluster, namespace, "
         "labelSelector); did you mean \"namespace\"?\n"),
        ("clusters:\n  - {name: a, kubeconfig: east.kubeconfig}\n"
         "  - {name: a, kubeconfig: east.kubeconfig}\n",
         "kubemedicd: {cfg}:3:5: clusters[1].name: duplicate name \"a\": "
         "clusters[0] at line 2 has it already\n"),
    ]
    for text, want in cases:
        rc, err = refused(tmp_path, text)
        assert (rc, err) == (2, want.replace("{cfg}",
                                             str(tmp_path / "km.yaml")))


def test_a_cluster_whose_kubeconfig_fails_is_named(tmp_path):
    write_kubeconfigs(tmp_path, "east")
    rc, err = refused(tmp_path,
                      "clusters:\n"
                      "  - {name: east, kubeconfig: east.kubeconfig}\n"
                      "  - {name: west, kubeconfig: west.kubeconfig}\n")
    assert (rc, err) == (2, 'kubemedicd: cluster "west": kubeconfig: '
                            'west.kubeconfig: No such file or directory\n')
    rc, err = refused(tmp_path,
                      "clusters:\n"
                      "  - {name: east, kubeconfig: east.kubeconfig, "
                      "context: nope}\n")
    assert (rc, err) == (2, 'kubemedicd: cluster "east": kubeconfig '
                            'east.kubeconfig: context "nope" not found; '
                            'contexts in the file: "east"\n')


def test_clusters_and_kubeconfig_flag_do_not_mix(tmp_path):
    write_kubeconfigs(tmp_path, "east")
    text = "clusters:\n  - {name: east, kubeconfig: east.kubeconfig}\n"
    for flag in (["--kubeconfig", "east.kubeconfig"], ["--in-cluster"]):
        rc, err = refused(tmp_path, text, *flag)
        assert (rc, err) == (
            2, f"kubemedicd: {flag[0]} watches one cluster whose targets "
               f"are unprefixed, and {tmp_path / 'km.yaml'}'s clusters: "
               f"names 1 whose targets are prefixed; give one or the "
               f"other (name this cluster in clusters:)\n")
