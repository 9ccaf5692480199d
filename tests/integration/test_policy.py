"""What probes created through the API may touch (docs/config.md, "What
probes created through the API may touch"): nothing that runs a program
or reads a file unless the config says so, files only under the
configured directories, networks only as the allow and deny lists say
(no cloud metadata service by default)."""
import grpc
import pytest

from conftest import run_cli


def probes(pb, channel):
    return pb.probe_grpc.ProbeServiceStub(channel)


def refused(pb, channel, probe, update=False):
    """The (code, message) CreateProbe (or UpdateProbe) answers."""
    stub = probes(pb, channel)
    with pytest.raises(grpc.RpcError) as e:
        if update:
            stub.UpdateProbe(pb.probe.UpdateProbeRequest(probe=probe))
        else:
            stub.CreateProbe(pb.probe.CreateProbeRequest(probe=probe))
    return e.value.code(), e.value.details()


def test_issue_reproduction_no_shell_for_strangers(daemon, tmp_path):
    """Issue 9: anyone reaching the port could run commands as the daemon's
    user and read the answer back from the history."""
    p = run_cli(daemon.addr, "probes", "create", "x", "--exec", "--", "sh",
                "-c", "head -c 60 /etc/shadow; exit 1", check=1)
    assert "PERMISSION_DENIED" in p.stderr
    assert "api.allowExec" in p.stderr
    assert run_cli(daemon.addr, "probes", "list",
                   check=0).stdout.strip() == "No probes."


def test_defaults_refuse_exec_file_and_metadata(pb, channel):
    cases = [
        (pb.probe.Probe(name="e", exec=pb.probe.ExecAction(
            command=["/bin/true"])), "probe.exec: exec probes through the "
         "API are off; declare the probe in the config file, or set "
         "api.allowExec: true there"),
        (pb.probe.Probe(name="f", file=pb.probe.FileAction(
            path="/etc/shadow")), "api.allowFile: true"),
        (pb.probe.Probe(name="m", http_get=pb.probe.HTTPGetAction(
            host="169.254.169.254", port=80, path="/latest/meta-data/")),
         "probe.http_get.host: 169.254.169.254 is in 169.254.0.0/16, "
         "denied by api.probeNetworks"),
        # The same address as a resolver reads "2852039166".
        (pb.probe.Probe(name="m2", tcp_socket=pb.probe.TCPSocketAction(
            host="2852039166", port=80)),
         "probe.tcp_socket.host: 169.254.169.254 is in 169.254.0.0/16"),
        (pb.probe.Probe(name="m3", grpc=pb.probe.GRPCAction(
            host="fd00:ec2::254", port=80)),
         "probe.grpc.host: fd00:ec2::254 is in fd00:ec2::254/128"),
        (pb.probe.Probe(name="m4", http_get=pb.probe.HTTPGetAction(
            host="::ffff:100.100.100.200", port=80)),
         "100.100.100.200 is in 100.100.100.200/32"),
    ]
    for probe, want in cases:
        code, msg = refused(pb, channel, probe)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (probe, msg)
        assert want in msg, msg
    # Loopback is fine by default; nothing refused was stored.
    probes(pb, channel).CreateProbe(pb.probe.CreateProbeRequest(
        probe=pb.probe.Probe(name="lo", tcp_socket=pb.probe.TCPSocketAction(
            host="127.0.0.1", port=1))))
    names = [p.name for p in probes(pb, channel).ListProbes(
        pb.probe.ListProbesRequest()).probes]
    assert names == ["lo"]
    # An update is held to the same rules.
    code, msg = refused(pb, channel, pb.probe.Probe(
        name="lo", tcp_socket=pb.probe.TCPSocketAction(
            host="169.254.169.254", port=1)), update=True)
    assert code == grpc.StatusCode.PERMISSION_DENIED and \
        "169.254.0.0/16" in msg
    code, msg = refused(pb, channel, pb.probe.Probe(
        name="lo", exec=pb.probe.ExecAction(command=["true"])), update=True)
    assert code == grpc.StatusCode.PERMISSION_DENIED and \
        "api.allowExec" in msg


def test_invalid_before_forbidden(pb, channel):
    """A malformed probe is INVALID_ARGUMENT whatever it would touch."""
    code, msg = refused(pb, channel, pb.probe.Probe(
        name="x", exec=pb.probe.ExecAction(command=["/bin/true"],
                                           working_dir="rel")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "probe.exec.working_dir" in msg


def test_configured_prefixes_and_networks(pb, daemon_factory, tmp_path):
    beats = tmp_path / "beats"
    beats.mkdir()
    cfg = tmp_path / "km.yaml"
    cfg.write_text(f"""
api:
  allowFile: true
  filePathPrefixes: [{beats}/]
  probeNetworks:
    allow: [127.0.0.0/8]
    deny: [127.0.0.2/32]
""")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = probes(pb, ch)

        def file_probe(name, path):
            return pb.probe.Probe(name=name,
                                  file=pb.probe.FileAction(path=str(path)))

        stub.CreateProbe(pb.probe.CreateProbeRequest(
            probe=file_probe("in", beats / "a.beat")))
        for name, path, want in [
                ("dotdot", f"{beats}/../secret", "is not under a directory "
                 "of api.filePathPrefixes"),
                ("sibling", f"{beats}x/a", "is not under"),
                ("etc", "/etc/shadow", "is not under")]:
            code, msg = refused(pb, ch, file_probe(name, path))
            assert code == grpc.StatusCode.PERMISSION_DENIED, msg
            assert want in msg, msg
        # Exec is still off: allowFile says nothing about it.
        code, msg = refused(pb, ch, pb.probe.Probe(
            name="e", exec=pb.probe.ExecAction(command=["true"])))
        assert code == grpc.StatusCode.PERMISSION_DENIED

        def tcp(name, host):
            return pb.probe.Probe(name=name, tcp_socket=pb.probe.TCPSocketAction(
                host=host, port=1))

        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=tcp("a",
                                                               "127.0.0.1")))
        # Deny wins over allow; outside allow is out.
        code, msg = refused(pb, ch, tcp("b", "127.0.0.2"))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "127.0.0.2 is in 127.0.0.2/32, denied by api.probeNetworks" \
            in msg
        code, msg = refused(pb, ch, tcp("c", "10.0.0.1"))
        assert "10.0.0.1 is in no network api.probeNetworks.allow names" \
            in msg
        # This deny list replaced the default: metadata is outside allow
        # here all the same.
        code, msg = refused(pb, ch, tcp("d", "169.254.169.254"))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    assert d.stop() == 0


def test_ca_file_must_be_a_pem_file(pb, channel, tmp_path):
    """A caFile that is a FIFO froze every probe when the engine opened it:
    refused when the probe is stored, naming the field."""
    import os
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    empty = tmp_path / "empty.pem"
    empty.write_text("")

    def https(name, ca):
        return pb.probe.Probe(name=name, http_get=pb.probe.HTTPGetAction(
            host="127.0.0.1", port=443, scheme="HTTPS", tls_verify=True,
            ca_file=str(ca)))

    for ca, want in [(fifo, "a FIFO, not a regular file"),
                     (tmp_path, "a directory, not a regular file"),
                     (empty, "holds no PEM certificate"),
                     (tmp_path / "nope.pem", "No such file or directory")]:
        code, msg = refused(pb, channel, https("tls", ca))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert msg.startswith(f"probe.http_get.ca_file: {ca}: "), msg
        assert want in msg, msg


def test_config_ca_fifo_refused_at_start(tmp_path):
    """The same file named by the config file: kubemedicd does not start,
    and says which probe and field (before this, it started and froze)."""
    import os
    import subprocess
    from conftest import KUBEMEDICD, SLOW
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    cfg = tmp_path / "km.yaml"
    cfg.write_text("probes:\n"
                   "  - name: tls\n"
                   "    httpGet: {host: 127.0.0.1, port: 443, scheme: HTTPS,\n"
                   f"              tlsVerify: true, caFile: {fifo}}}\n")
    p = subprocess.run([str(KUBEMEDICD), "--config", str(cfg), "--listen",
                        "127.0.0.1:0", "--db", str(tmp_path / "km.db")],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert p.returncode == 2, p.stderr
    assert f"{cfg}:2: probes[0].httpGet.caFile: {fifo}: a FIFO, not a " \
        "regular file" in p.stderr


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections made to it
    (and closes them)."""

    def __init__(self):
        import socket
        import threading
        self.count = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            c.close()

    def close(self):
        import socket
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_names_judged_when_connecting(pb, daemon_factory, tmp_path):
    """A name is judged by the addresses it resolves to, when the probe
    connects: "localhost" with loopback denied is never connected to, by
    HTTP, TCP or gRPC probes of the API; the config file's probe to the
    same name is trusted."""
    from test_probing import Watch, history, HEALTHY, UNHEALTHY
    api_target, config_target = Listener(), Listener()
    cfg = tmp_path / "km.yaml"
    cfg.write_text(f"""
api:
  probeNetworks:
    deny: [127.0.0.0/8, "::1/128"]
probes:
  - name: trusted
    tcpSocket: {{host: localhost, port: {config_target.port}}}
    periodMilliseconds: 200
    successThreshold: 1
""")
    d = daemon_factory(config=cfg).start()
    timing = dict(period_milliseconds=200, timeout_milliseconds=1000,
                  failure_threshold=1, success_threshold=1)
    with grpc.insecure_channel(d.addr) as ch:
        w = Watch(pb, ch)
        stub = probes(pb, ch)
        for p in [
                pb.probe.Probe(name="http", http_get=pb.probe.HTTPGetAction(
                    host="localhost", port=api_target.port), **timing),
                pb.probe.Probe(name="tcp", tcp_socket=pb.probe.TCPSocketAction(
                    host="localhost", port=api_target.port), **timing),
                pb.probe.Probe(name="grpc", grpc=pb.probe.GRPCAction(
                    host="localhost", port=api_target.port), **timing)]:
            stub.CreateProbe(pb.probe.CreateProbeRequest(probe=p))
        w.collect({"probe//http": UNHEALTHY, "probe//tcp": UNHEALTHY,
                   "probe//grpc": UNHEALTHY, "probe//trusted": HEALTHY})
        for name in ("http", "tcp", "grpc"):
            r = history(pb, ch, f"probe//{name}")[0]
            assert r.error_class == pb.common.ERROR_CLASS_NETWORK, r
            assert "not connected" in r.message, r.message
            assert "denied by api.probeNetworks" in r.message, r.message
        w.close()
    assert api_target.count == 0
    assert config_target.count >= 1
    assert d.stop() == 0
    api_target.close()
    config_target.close()
