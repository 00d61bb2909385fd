"""Plug & Charge TLS contexts of a PKI folder: the SECC staples its leaf's OCSP response
fetched through the backend (OCPP GetCertificateStatus); the EVCC checks it against the
chain the SECC sent and aborts on a revoked, foreign or (when required) missing one."""
import asyncio

from exi.v2g.backend import LocalBackend
from exi.v2g.pki import create_pki
from exi.v2g.pnc import tls as pnc_tls
from exi.v2g.security import ocsp

from .test_stapling import _handshake, folder  # noqa: F401 - the PKI folder fixture


def test_staple_from_the_backend_is_checked_against_the_sent_chain(pki, folder):
    secc, cache = pnc_tls.secc_context(folder)
    assert cache() is None
    assert asyncio.run(cache.refresh(LocalBackend(pki))), cache.error
    evcc = pnc_tls.evcc_context(folder, require_staple=True)
    assert _handshake(secc, evcc)["client"] == b"ok"
    assert evcc.exi15118_staple == cache()
    assert evcc.exi15118_trusted_ca_echoes == 1          # the SECC acknowledged its root


def test_missing_staple_is_refused_only_when_required(pki, folder):
    secc, _cache = pnc_tls.secc_context(folder)            # never refreshed: nothing stapled
    assert _handshake(secc, pnc_tls.evcc_context(folder))["client"] == b"ok"
    result = _handshake(secc, pnc_tls.evcc_context(folder, require_staple=True))
    assert "INVALID_STATUS_RESPONSE" in result["client"]    # [V2G2-873]


def test_revoked_secc_leaf_or_foreign_response_aborts(pki, folder):
    backend = LocalBackend(pki, responder=ocsp.OCSPResponder(
        [(pki.certs["cpoSubCA2"], pki.keys["cpoSubCA2"])]))
    backend.responder.revoke(pki.certs["seccLeaf"])
    secc, cache = pnc_tls.secc_context(folder)
    # the cache does not take a revoked response ...
    assert not asyncio.run(cache.refresh(backend)) and "revoked" in cache.error
    # ... and an EVCC refuses one stapled anyway
    stapled = backend.responder.response_for(pki.certs["seccLeaf"], pki.certs["cpoSubCA2"])
    cache.der = stapled
    assert "INVALID_STATUS_RESPONSE" in _handshake(secc, pnc_tls.evcc_context(folder))["client"]
    # a GOOD response for another PKI's SECC leaf does not fit this chain
    other = create_pki("iso2", ocsp_url=None)
    cache.der = ocsp.OCSPResponder([(other.certs["cpoSubCA2"], other.keys["cpoSubCA2"])]).response_for(
        other.certs["seccLeaf"], other.certs["cpoSubCA2"])
    assert "INVALID_STATUS_RESPONSE" in _handshake(secc, pnc_tls.evcc_context(folder))["client"]
