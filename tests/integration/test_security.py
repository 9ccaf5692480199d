"""Security: TLS and mutual TLS (with certificates read again when their
files change), identities (client certificates, bearer tokens, the local
identity), the authorization matrix over every method of every service and
every role, roles on probe types, what a role may see of a probe's output,
the audit trail, the refusal to listen beyond loopback without TLS, and the
CLI's TLS and token options."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from conftest import KUBEMEDIC, KUBEMEDICD, REPO, SLOW, Daemon, run_cli

# ---- a small PKI ---------------------------------------------------------------


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", d / f"{name}.key",
            "-out", d / f"{name}.crt", "-days", "2", "-subj",
            f"/CN=kubemedic test {name}")


def make_cert(d, ca, name, subj, san=None):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d / f"{name}.key", "-out",
            d / f"{name}.csr", "-subj", subj)
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else
                   "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / f"{ca}.crt",
            "-CAkey", d / f"{ca}.key", "-CAcreateserial", "-out",
            d / f"{name}.crt", "-days", "2", "-extfile", ext)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "ca2")
    make_cert(d, "ca", "server", "/CN=kubemedicd",
              "IP:127.0.0.1,DNS:localhost")
    make_cert(d, "ca2", "server2", "/CN=kubemedicd",
              "IP:127.0.0.1,DNS:localhost")
    make_cert(d, "ca", "alice", "/CN=alice/O=platform")
    make_cert(d, "ca", "ops-bot", "/CN=ops-bot/O=ops")
    make_cert(d, "ca", "stranger", "/CN=stranger")
    # Two groups, one with a comma (escaped in the RFC 2253 subject).
    make_cert(d, "ca", "carol", "/CN=carol/O=viewers/O=sre, east")
    # A certificate the daemon's CA did not sign.
    make_cert(d, "ca2", "forged", "/CN=alice/O=platform")
    return d


TOKENS = {"viewer": "tok-viewer-1", "operator": "tok-operator-2",
          "admin": "tok-admin-3"}


def token_file(d):
    lines = ["# sha256 of the token, user, groups"]
    for role, tok in TOKENS.items():
        h = hashlib.sha256(tok.encode()).hexdigest()
        lines.append(f"{h} {role}-user {role}s")
    (d / "tokens").write_text("\n".join(lines) + "\n")
    return d / "tokens"


def secure_config(tmp_path, pki, extra=""):
    cfg = tmp_path / "secure.yaml"
    cfg.write_text(f"""tls:
  certFile: {tmp_path / 'server.crt'}
  keyFile: {tmp_path / 'server.key'}
  clientCAFile: {pki / 'ca.crt'}
auth:
  tokenFile: {token_file(tmp_path)}
  localUser: ""
  bindings:
    - {{role: viewer, groups: [viewers]}}
    - {{role: operator, groups: [operators, ops, "sre, east"]}}
    - {{role: admin, groups: [admins, platform]}}
{extra}""")
    return cfg


@pytest.fixture
def secure(daemon_factory, tmp_path, pki):
    """A daemon on TLS with optional client certificates, tokens, and
    bindings for each role. Its server certificate files are copies, so a
    test can replace them."""
    for f in ("server.crt", "server.key"):
        shutil.copy(pki / f, tmp_path / f)
    # Exec probes through the API (admins only, by role) need the config
    # to allow them at all.
    d = daemon_factory(config=secure_config(
        tmp_path, pki, extra="api: {allowExec: true}\n")).start()
    yield d
    if d.proc.poll() is None:
        assert d.stop() == 0, d.log()


def channel_for(d, pki, who=None, ca="ca"):
    """A channel to d as who: a role of TOKENS, a certificate name, or
    None (anonymous, TLS only)."""
    key = cert = None
    if who and who not in TOKENS:
        key = (pki / f"{who}.key").read_bytes()
        cert = (pki / f"{who}.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki / f"{ca}.crt").read_bytes(),
        private_key=key, certificate_chain=cert)
    return grpc.secure_channel(d.addr, creds)


def md_for(who):
    return (("authorization", f"Bearer {TOKENS[who]}"),) if who in TOKENS \
        else ()


def call(ch, path, kind, who, timeout=3):
    """Calls path with an empty request; returns the status code (OK for
    a stream that stays open until the deadline)."""
    md = md_for(who)
    try:
        if kind == "unary":
            ch.unary_unary(path)(b"", metadata=md, timeout=timeout * SLOW)
        elif kind == "server_stream":
            for _ in ch.unary_stream(path)(b"", metadata=md,
                                           timeout=1 * SLOW):
                pass
        else:
            for _ in ch.stream_stream(path)(iter([b""]), metadata=md,
                                            timeout=1 * SLOW):
                pass
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


# The roles of the documented table (docs/SECURITY.md), method by method:
# the test fails if the daemon's table and the documentation part.
ROLE = {"viewer": 1, "operator": 2, "admin": 3}
EXPECTED = {
    "ProbeService/CreateProbe": "operator",
    "ProbeService/GetProbe": "viewer",
    "ProbeService/ListProbes": "viewer",
    "ProbeService/UpdateProbe": "operator",
    "ProbeService/DeleteProbe": "operator",
    "HealthService/GetHealth": "viewer",
    "HealthService/ListTargets": "viewer",
    "HealthService/QueryProbeHistory": "viewer",
    "HealthService/QueryTransitions": "viewer",
    "HealthService/QueryLatency": "viewer",
    "HealthService/WatchHealth": "viewer",
    "HealthService/GetAvailability": "viewer",
    "RecoveryService/RequestRecovery": "operator",
    "RecoveryService/GetRecovery": "viewer",
    "RecoveryService/ListRecoveries": "viewer",
    "RecoveryService/CancelRecovery": "operator",
    "RecoveryService/WatchRecoveries": "viewer",
    "RecoveryService/ListStorms": "viewer",
    "RecoveryService/ListPolicies": "viewer",
    "AuditService/ListAuditEvents": "admin",
    "Health/Check": "viewer",
    "Health/Watch": "viewer",
    "ServerReflection/ServerReflectionInfo": "viewer",
}


def every_method(pb):
    """(full path, kind, table key) of every method of every service the
    daemon serves, from the protos' descriptors."""
    from grpc_health.v1 import health_pb2 as h
    files = [pb.probe.DESCRIPTOR, pb.health.DESCRIPTOR,
             pb.recovery.DESCRIPTOR, pb.audit.DESCRIPTOR, h.DESCRIPTOR]
    out = []
    for f in files:
        for s in f.services_by_name.values():
            for m in s.methods:
                if f == h.DESCRIPTOR and m.name not in ("Check", "Watch"):
                    continue  # grpc.health.v1 Health/List: not served
                kind = ("bidi" if m.client_streaming else
                        "server_stream" if m.server_streaming else "unary")
                out.append((f"/{s.full_name}/{m.name}", kind,
                            f"{s.name}/{m.name}"))
    for v in ("v1", "v1alpha"):
        out.append((f"/grpc.reflection.{v}.ServerReflection/"
                    "ServerReflectionInfo", "bidi",
                    "ServerReflection/ServerReflectionInfo"))
    return out


def test_authorization_matrix(pb, secure, pki):
    methods = every_method(pb)
    assert {m[2] for m in methods} == set(EXPECTED), \
        "a method without a row in EXPECTED (and docs/SECURITY.md)"
    assert len(methods) == 24
    chans = {who: channel_for(secure, pki, who)
             for who in (None, "viewer", "operator", "admin")}
    for path, kind, key in methods:
        need = ROLE[EXPECTED[key]]
        for who, ch in chans.items():
            code = call(ch, path, kind, who)
            have = ROLE.get(who, 0)
            if who is None:
                assert code == grpc.StatusCode.UNAUTHENTICATED, (path, code)
            elif have < need:
                assert code == grpc.StatusCode.PERMISSION_DENIED, \
                    (path, who, code)
            else:
                assert code not in (grpc.StatusCode.PERMISSION_DENIED,
                                    grpc.StatusCode.UNAUTHENTICATED), \
                    (path, who, code)
    for ch in chans.values():
        ch.close()


def test_refusals_name_the_missing_role(pb, secure, pki):
    with channel_for(secure, pki, "viewer") as ch:
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.CreateProbe(pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
                name="x", tcp_socket=pb.probe.TCPSocketAction(
                    host="127.0.0.1", port=9))), metadata=md_for("viewer"))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert e.value.details() == (
            'ProbeService/CreateProbe needs the operator role; token user '
            '"viewer-user" has viewer')
    with channel_for(secure, pki) as ch:
        with pytest.raises(grpc.RpcError) as e:
            pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                pb.probe.ListProbesRequest())
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "client certificate" in e.value.details()
        # An unknown token is refused, not taken as anonymous.
        with pytest.raises(grpc.RpcError) as e:
            pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                pb.probe.ListProbesRequest(),
                metadata=(("authorization", "Bearer guess"),))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "not known" in e.value.details()


def test_client_certificates(pb, secure, pki):
    # Groups come from the certificate's O=: platform is admin, ops is
    # operator; a certificate without a binding has no role.
    with channel_for(secure, pki, "alice") as ch:
        r = pb.audit_grpc.AuditServiceStub(ch).ListAuditEvents(
            pb.audit.ListAuditEventsRequest())
        assert r is not None
    with channel_for(secure, pki, "ops-bot") as ch:
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
            name="by-cert", tcp_socket=pb.probe.TCPSocketAction(
                host="127.0.0.1", port=9))))
    with channel_for(secure, pki, "stranger") as ch:
        with pytest.raises(grpc.RpcError) as e:
            pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                pb.probe.ListProbesRequest())
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert 'certificate "stranger" has no role' in e.value.details()
    # The highest role of all its groups: "sre, east" (operator) over
    # viewers.
    with channel_for(secure, pki, "carol") as ch:
        pb.probe_grpc.ProbeServiceStub(ch).CreateProbe(
            pb.probe.CreateProbeRequest(probe=pb.probe.Probe(
                name="by-carol", tcp_socket=pb.probe.TCPSocketAction(
                    host="127.0.0.1", port=9))))
    # A certificate of another CA does not get through the handshake.
    with channel_for(secure, pki, "forged") as ch:
        with pytest.raises(grpc.RpcError) as e:
            pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                pb.probe.ListProbesRequest(), timeout=5 * SLOW)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_required(pb, daemon_factory, tmp_path, pki):
    for f in ("server.crt", "server.key"):
        shutil.copy(pki / f, tmp_path / f)
    cfg = secure_config(tmp_path, pki)
    text = cfg.read_text().replace(
        f"clientCAFile: {pki / 'ca.crt'}",
        f"clientCAFile: {pki / 'ca.crt'}\n  clientCertificates: require")
    cfg.write_text(text)
    d = daemon_factory(config=cfg).start()
    with channel_for(d, pki, "viewer") as ch:  # a token, no certificate
        with pytest.raises(grpc.RpcError) as e:
            pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                pb.probe.ListProbesRequest(), metadata=md_for("viewer"),
                timeout=5 * SLOW)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with channel_for(d, pki, "alice") as ch:
        pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
            pb.probe.ListProbesRequest())
    assert d.stop() == 0


def test_server_certificate_reloaded(pb, secure, pki, tmp_path):
    def works(ca):
        with channel_for(secure, pki, "viewer", ca=ca) as ch:
            try:
                pb.probe_grpc.ProbeServiceStub(ch).ListProbes(
                    pb.probe.ListProbesRequest(), metadata=md_for("viewer"),
                    timeout=5 * SLOW)
                return True
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                return False

    assert works("ca") and not works("ca2")
    # A renewed certificate (here from another CA, so it shows) is served
    # to new connections without a restart.
    for src, dst in (("server2.crt", "server.crt"),
                     ("server2.key", "server.key")):
        shutil.copy(pki / src, tmp_path / (dst + ".new"))
        os.replace(tmp_path / (dst + ".new"), tmp_path / dst)
    # The files are looked at on new handshakes, at most once a second:
    # there is no event to wait for, so new connections are tried.
    end = time.monotonic() + 20 * SLOW
    while not works("ca2"):
        assert time.monotonic() < end, "the new certificate is not served"
        time.sleep(0.2)
    assert not works("ca")
    assert "TLS certificates reloaded" in secure.log()


def test_no_plaintext_beyond_loopback(tmp_path):
    db = tmp_path / "x.db"
    p = subprocess.run([str(KUBEMEDICD), "--listen", "0.0.0.0:0", "--db",
                        str(db)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "0.0.0.0:0 is not a loopback address" in p.stderr
    assert "insecure: true" in p.stderr
    assert not db.exists()  # refused before anything was opened
    cfg = tmp_path / "insecure.yaml"
    cfg.write_text("insecure: true\n")
    d = Daemon(tmp_path, config=cfg, args=["--listen", "0.0.0.0:0"])
    d.start()
    assert d.stop() == 0


def test_local_identity_and_plaintext_tokens(pb, daemon_factory, tmp_path):
    # No auth section of its own but a local role of viewer: what a
    # default install gives the local user.
    cfg = tmp_path / "local.yaml"
    cfg.write_text(f"auth:\n  tokenFile: {token_file(tmp_path)}\n"
                   "  bindings: [{role: operator, groups: [operators]}]\n")
    d = daemon_factory(config=cfg).start()
    with grpc.insecure_channel(d.addr) as ch:
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        stub.ListProbes(pb.probe.ListProbesRequest())  # local: viewer
        probe = pb.probe.Probe(name="t", tcp_socket=pb.probe.TCPSocketAction(
            host="127.0.0.1", port=9))
        with pytest.raises(grpc.RpcError) as e:
            stub.CreateProbe(pb.probe.CreateProbeRequest(probe=probe))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert 'local user "local" has viewer' in e.value.details()
        # A token works over plaintext on loopback.
        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=probe),
                         metadata=md_for("operator"))
    assert d.stop() == 0


def test_probe_roles_and_hidden_output(pb, secure, pki):
    admin = channel_for(secure, pki, "admin")
    oper = channel_for(secure, pki, "operator")
    view = channel_for(secure, pki, "viewer")
    secret = "s3cr3t-output"
    exec_probe = pb.probe.Probe(
        name="job", exec=pb.probe.ExecAction(
            command=["/bin/sh", "-c", f"echo {secret}; exit 3"],
            env=[pb.probe.EnvVar(name="PASSWORD", value="hunter2")]),
        period_milliseconds=200, failure_threshold=1)
    with pytest.raises(grpc.RpcError) as e:
        pb.probe_grpc.ProbeServiceStub(oper).CreateProbe(
            pb.probe.CreateProbeRequest(probe=exec_probe),
            metadata=md_for("operator"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "exec probes" in e.value.details() and "admin" in e.value.details()
    w = pb.health_grpc.HealthServiceStub(view).WatchHealth(
        pb.health.WatchHealthRequest(targets=["probe//job"]),
        metadata=md_for("viewer"))
    w.initial_metadata()
    pb.probe_grpc.ProbeServiceStub(admin).CreateProbe(
        pb.probe.CreateProbeRequest(probe=exec_probe),
        metadata=md_for("admin"))
    ev = next(w)
    w.cancel()
    # The cause every viewer sees says how it ended, not what it printed.
    assert ev.transition.cause == "1 consecutive failure (exit code 3)"
    q = pb.health.QueryProbeHistoryRequest(target="probe//job")
    seen = pb.health_grpc.HealthServiceStub(view).QueryProbeHistory(
        q, metadata=md_for("viewer")).results
    assert seen and all(secret not in r.message and "admins only" in
                        r.message for r in seen)
    # A run's first message is its output too: hidden alike.
    assert all(secret not in r.first_message for r in seen)
    assert any("admins only" in r.first_message for r in seen)
    own = pb.health_grpc.HealthServiceStub(admin).QueryProbeHistory(
        q, metadata=md_for("admin")).results
    assert any(secret in r.message for r in own)
    assert any(secret in r.first_message for r in own)
    h = pb.health_grpc.HealthServiceStub(view).GetHealth(
        pb.health.GetHealthRequest(target="probe//job"),
        metadata=md_for("viewer"))
    assert secret not in h.last_result.message
    got = pb.probe_grpc.ProbeServiceStub(view).GetProbe(
        pb.probe.GetProbeRequest(name="job"), metadata=md_for("viewer"))
    assert got.exec.env[0].value != "hunter2"
    got = pb.probe_grpc.ProbeServiceStub(admin).GetProbe(
        pb.probe.GetProbeRequest(name="job"), metadata=md_for("admin"))
    assert got.exec.env[0].value == "hunter2"
    # An operator can neither delete nor rewrite an admin's exec probe.
    with pytest.raises(grpc.RpcError) as e:
        pb.probe_grpc.ProbeServiceStub(oper).DeleteProbe(
            pb.probe.DeleteProbeRequest(name="job"),
            metadata=md_for("operator"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    tcp = pb.probe.Probe(name="job", tcp_socket=pb.probe.TCPSocketAction(
        host="127.0.0.1", port=9))
    with pytest.raises(grpc.RpcError) as e:
        pb.probe_grpc.ProbeServiceStub(oper).UpdateProbe(
            pb.probe.UpdateProbeRequest(probe=tcp),
            metadata=md_for("operator"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for ch in (admin, oper, view):
        ch.close()


def test_audit_trail(pb, secure, pki):
    with channel_for(secure, pki, "operator") as ch:
        stub = pb.probe_grpc.ProbeServiceStub(ch)
        probe = pb.probe.Probe(name="aud", tcp_socket=pb.probe.TCPSocketAction(
            host="127.0.0.1", port=9))
        stub.CreateProbe(pb.probe.CreateProbeRequest(probe=probe),
                         metadata=md_for("operator"))
        stub.DeleteProbe(pb.probe.DeleteProbeRequest(name="aud"),
                         metadata=md_for("operator"))
        # Not audited: reads; a failed change is (with its outcome).
        stub.ListProbes(pb.probe.ListProbesRequest(),
                        metadata=md_for("operator"))
        with pytest.raises(grpc.RpcError):
            stub.DeleteProbe(pb.probe.DeleteProbeRequest(name="aud"),
                             metadata=md_for("operator"))
    with channel_for(secure, pki, "viewer") as ch:
        with pytest.raises(grpc.RpcError):
            pb.audit_grpc.AuditServiceStub(ch).ListAuditEvents(
                pb.audit.ListAuditEventsRequest(), metadata=md_for("viewer"))
    with channel_for(secure, pki, "alice") as ch:
        audit = pb.audit_grpc.AuditServiceStub(ch)
        # Changes are on record when they are acknowledged; the viewer's
        # refusal was queued, so it may take a moment.
        end = time.monotonic() + 10 * SLOW
        while True:
            evs = audit.ListAuditEvents(
                pb.audit.ListAuditEventsRequest()).events
            if len(evs) >= 4 or time.monotonic() > end:
                break
            time.sleep(0.05)
        got = [(e.identity, e.authenticated_by, e.method.split("/")[-1],
                e.object, e.code) for e in evs]
        assert got[:4] == [
            ("viewer-user", "token", "ListAuditEvents", "", 7),
            ("operator-user", "token", "DeleteProbe", "aud", 5),
            ("operator-user", "token", "DeleteProbe", "aud", 0),
            ("operator-user", "token", "CreateProbe", "aud", 0)]
        assert all(e.peer.startswith("ipv4:127.0.0.1:") for e in evs[:4])
        assert "admin" in evs[0].message
        only = audit.ListAuditEvents(pb.audit.ListAuditEventsRequest(
            identity="operator-user",
            method="/kubemedic.v1.ProbeService/CreateProbe")).events
        assert [(e.object, e.code) for e in only] == [("aud", 0)]
        # A method by its end, as people type it; never by a part of a
        # name.
        for m in ("ProbeService/CreateProbe", "CreateProbe"):
            short = audit.ListAuditEvents(pb.audit.ListAuditEventsRequest(
                identity="operator-user", method=m)).events
            assert [e.id for e in short] == [e.id for e in only], m
        assert not audit.ListAuditEvents(pb.audit.ListAuditEventsRequest(
            method="Probe")).events
        page = audit.ListAuditEvents(pb.audit.ListAuditEventsRequest(
            page_size=2))
        assert len(page.events) == 2 and page.next_page_token
        rest = audit.ListAuditEvents(pb.audit.ListAuditEventsRequest(
            page_size=2, page_token=page.next_page_token))
        assert rest.events[0].id < page.events[1].id
    # The CLI shows it too, with the client certificate.
    p = run_cli(secure.addr, "--tls-ca", pki / "ca.crt", "--tls-cert",
                pki / "alice.crt", "--tls-key", pki / "alice.key", "audit",
                "--identity", "operator-user", check=0)
    deletes = run_cli(secure.addr, "--tls-ca", pki / "ca.crt", "--tls-cert",
                      pki / "alice.crt", "--tls-key", pki / "alice.key",
                      "audit", "--method", "DeleteProbe", check=0)
    assert len(deletes.stdout.splitlines()) == 3  # the header, two calls
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "IDENTITY", "BY"]
    assert "ProbeService/DeleteProbe" in lines[1] and "NOT_FOUND" in lines[1]
    assert "ProbeService/CreateProbe" in lines[3] and "OK" in lines[3]


def test_cli_tls_options(pb, secure, pki, tmp_path):
    tok = tmp_path / "operator.token"
    tok.write_text(TOKENS["operator"] + "\n")
    base = ["--tls-ca", pki / "ca.crt"]
    run_cli(secure.addr, *base, "--token-file", tok, "probes", "create",
            "cli", "--tcp", "127.0.0.1:9", check=0)
    p = run_cli(secure.addr, *base, "probes", "list", check=1)
    assert "UNAUTHENTICATED" in p.stderr and "--token-file" in p.stderr
    # The same from the environment, and from a client.yaml.
    env = dict(os.environ, KUBEMEDIC_TLS_CA=str(pki / "ca.crt"),
               KUBEMEDIC_TOKEN_FILE=str(tok))
    assert "cli" in run_cli(secure.addr, "probes", "list", env=env,
                            check=0).stdout
    conf = tmp_path / "client.yaml"
    conf.write_text(f"server: {secure.addr}\ntlsCA: {pki / 'ca.crt'}\n"
                    f"tlsCert: {pki / 'alice.crt'}\n"
                    f"tlsKey: {pki / 'alice.key'}\n")
    env = dict(os.environ, KUBEMEDIC_CONFIG=str(conf))
    p = subprocess.run([str(KUBEMEDIC), "-o", "json", "audit", "--limit",
                        "1"], capture_output=True, text=True, env=env,
                       timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["method"]
    conf.write_text("tlsca: /x\n")
    p = subprocess.run([str(KUBEMEDIC), "probes", "list"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and 'unknown key "tlsca"' in p.stderr
    # Plaintext to TLS: a hint; a token in clear text beyond loopback:
    # refused before anything is sent.
    p = run_cli(secure.addr, "probes", "list", check=1)
    assert "if it serves TLS, give --tls-ca" in p.stderr
    p = run_cli("192.0.2.1:7070", "--token-file", tok, "probes", "list",
                check=1)
    assert "refusing to send a token in clear text" in p.stderr


def test_example_config_and_cli_tokens(tmp_path):
    """What `make run` does on a fresh machine: the example configuration,
    with a token file made by `kubemedic token new`. Local callers read;
    the token's holder (group admins) changes."""
    p = subprocess.run([str(KUBEMEDIC), "token", "new", "dev", "admins",
                        "--out", tmp_path / "kubemedic.token"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    token = (tmp_path / "kubemedic.token").read_text()
    assert token.startswith("kmt_") and token.endswith("\n")
    assert os.stat(tmp_path / "kubemedic.token").st_mode & 0o777 == 0o600
    digest, user, groups = p.stdout.split()
    assert digest == hashlib.sha256(token.strip().encode()).hexdigest()
    assert (user, groups) == ("dev", "admins")
    assert token.strip() not in p.stdout + p.stderr
    (tmp_path / "kubemedic.tokens").write_text(p.stdout)
    # Never overwritten; names that would break the file refused.
    again = subprocess.run([str(KUBEMEDIC), "token", "new", "x", "--out",
                            tmp_path / "kubemedic.token"],
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert (tmp_path / "kubemedic.token").read_text() == token
    for bad in (["a b"], ["a,b"], ["ok", "g h"], ["#x"]):
        r = subprocess.run([str(KUBEMEDIC), "token", "new", *bad, "--out",
                            tmp_path / "other"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and not (tmp_path / "other").exists(), bad

    d = Daemon(tmp_path, config=REPO / "deploy/kubemedic.example.yaml")
    d.start()
    try:
        assert "heartbeat" in run_cli(d.addr, "probes", "list",
                                      check=0).stdout
        p = run_cli(d.addr, "probes", "create", "web", "--tcp",
                    "127.0.0.1:9", check=1)
        assert "PERMISSION_DENIED" in p.stderr and "viewer" in p.stderr
        run_cli(d.addr, "--token-file", tmp_path / "kubemedic.token",
                "probes", "create", "web", "--tcp", "127.0.0.1:9", check=0)
        p = run_cli(d.addr, "--token-file", tmp_path / "kubemedic.token",
                    "audit", "--method", "CreateProbe", check=0)
        assert "dev" in p.stdout.splitlines()[1]
    finally:
        assert d.stop() == 0, d.log()
