"""OCSP stapling (status_request) on stdlib ssl contexts through the libssl hooks: the SECC
staples its leaf's response, the EVCC checks it and aborts on a revoked, missing or bad
one; `openssl s_client -status` reads the staple."""
import shutil
import socket
import subprocess
import threading

import pytest

from exi.v2g import tls
from exi.v2g.pki import write_pki
from exi.v2g.security import CertificateError, ocsp, stapling


@pytest.fixture(scope="module")
def folder(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    write_pki(pki, d)
    assert stapling.available(), "the libssl hooks of exi.v2g.security.stapling do not work here"
    return d


def _handshake(server_ctx, client_ctx):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    result = {}

    def serve():
        conn, _ = srv.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as s:
                s.sendall(b"ok")
        except OSError as e:
            result["server"] = str(e)
    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(socket.create_connection(srv.getsockname(), timeout=10)) as s:
            result["client"] = s.recv(2)
    except OSError as e:
        result["client"] = str(e)
    t.join(10)
    srv.close()
    return result


def _contexts(pki, folder, responder, *, staple=True):
    secc = tls.secc_context("iso2", folder / "certs" / "seccChain.pem",
                            folder / "private_keys" / "seccLeaf.key")
    if staple:
        stapling.staple(secc, lambda: responder.response_for(pki.certs["seccLeaf"],
                                                             pki.certs["cpoSubCA2"]))
    evcc = tls.evcc_context("iso2", folder / "certs" / "v2gRootCA.pem")
    seen = []

    def check(der):
        seen.append(der)
        if der is None:
            return False
        try:
            ocsp.check_response(der, pki.certs["seccLeaf"], pki.certs["cpoSubCA2"])
        except CertificateError as e:
            seen.append(e.response_code)
            return False
        return True
    stapling.request_status(evcc, check)
    return secc, evcc, seen


def test_good_staple_is_accepted(pki, folder):
    responder = ocsp.OCSPResponder([(pki.certs["cpoSubCA2"], pki.keys["cpoSubCA2"])])
    secc, evcc, seen = _contexts(pki, folder, responder)
    assert _handshake(secc, evcc)["client"] == b"ok"
    assert len(seen) == 1 and seen[0][:1] == b"\x30"


def test_revoked_or_missing_staple_aborts_the_handshake(pki, folder):
    responder = ocsp.OCSPResponder([(pki.certs["cpoSubCA2"], pki.keys["cpoSubCA2"])])
    responder.revoke(pki.certs["seccLeaf"])
    secc, evcc, seen = _contexts(pki, folder, responder)
    result = _handshake(secc, evcc)
    assert "INVALID_STATUS_RESPONSE" in result["client"]
    assert seen[-1] == "FAILED_CertificateRevoked"
    secc, evcc, seen = _contexts(pki, folder, responder, staple=False)   # [V2G2-873]
    assert "INVALID_STATUS_RESPONSE" in _handshake(secc, evcc)["client"]
    assert seen == [None]


def test_openssl_reads_the_staple(pki, folder):
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command line tool is needed: apt-get install openssl"
    responder = ocsp.OCSPResponder([(pki.certs["cpoSubCA2"], pki.keys["cpoSubCA2"])])
    secc, _, _ = _contexts(pki, folder, responder)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        try:
            with secc.wrap_socket(conn, server_side=True) as s:
                s.recv(1)
        except OSError:
            pass
    t = threading.Thread(target=serve)
    t.start()
    host, port = srv.getsockname()
    out = subprocess.run([openssl, "s_client", "-connect", f"{host}:{port}", "-status",
                          "-CAfile", str(folder / "certs" / "v2gRootCA.pem")],
                         input=b"x", capture_output=True, timeout=60).stdout.decode()
    t.join(10)
    srv.close()
    assert "OCSP Response Status: successful" in out and "Cert Status: good" in out
