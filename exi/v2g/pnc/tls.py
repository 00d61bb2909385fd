"""TLS for ISO 15118-2 Plug & Charge: the SECC staples its leaf's OCSP status, the EVCC
asks for it and checks it against the chain the SECC sent.

Plug & Charge runs only over TLS (-2 clause 7.7.4; requirement id unverified): the
sessions refuse PaymentServiceSelection(Contract) on plain TCP.

* :class:`StapleCache` (SECC): the SECC leaf's OCSP response, fetched through the backend
  (OCPP GetCertificateStatus, as a CSMS proxies it) by ``await cache.refresh(backend)``
  -- at start and then periodically (at least weekly, [V2G2-649]/[V2G2-876]; the drivers
  use ``REFRESH_EVERY``) -- and stapled to every handshake that sent status_request.
* :func:`secc_context` / :func:`evcc_context`: the -2 TLS contexts of a PKI folder with
  the above.  The EVCC sends status_request; a stapled response must be a current GOOD
  response for the SECC leaf signed by its issuer (:func:`exi.v2g.security.ocsp.
  check_response`), else the handshake aborts.  Without a staple the handshake goes on
  unless ``require_staple`` ([V2G2-873]: an EV that asked and got nothing closes; off by
  default because [V2G2-872] private SECCs and the open stacks send none).

What OpenSSL cannot do (see exi/v2g/security/README.md): ``status_request_v2`` (RFC 6961,
one response per certificate of the chain, [V2G2-871]): only the leaf is stapled; the
Sub-CAs' status is not checked in TLS.

trusted_ca_keys (:mod:`exi.v2g.security.trusted_ca`): the EVCC names its V2G root(s)
([V2G2-651]); the SECC, with one chain, acknowledges the extension when its root is
named and serves that chain either way (the [V2G2-923] fallback); with more chains,
:func:`exi.v2g.security.trusted_ca.select_chain` picks one.
"""
from __future__ import annotations

import base64
import datetime as _dt
import ssl
from pathlib import Path
from typing import Optional, Union

from cryptography import x509

from exi.v2g import tls as _tls

from ..backend.base import GetCertificateStatusRequest
from ..security import ocsp as _ocsp
from ..security import stapling, trusted_ca
from ..security.errors import CertificateError

__all__ = ["StapleCache", "secc_context", "evcc_context", "REFRESH_EVERY"]

REFRESH_EVERY = _dt.timedelta(hours=24)   # well within the weekly [V2G2-649]/[V2G2-876]


class StapleCache:
    """The OCSP response stapled for ``leaf`` (issued by ``issuer``)."""

    def __init__(self, leaf: x509.Certificate, issuer: x509.Certificate) -> None:
        self.leaf, self.issuer = leaf, issuer
        self.request_data = _ocsp.request_data(leaf, issuer)
        self.der: Optional[bytes] = None
        self.error = ""

    async def refresh(self, backend) -> bool:
        """Fetch the response through ``backend``; keep the previous one on failure."""
        try:
            res = await backend.get_certificate_status(GetCertificateStatusRequest(self.request_data))
            if res.status != "Accepted":
                raise CertificateError(f"GetCertificateStatus: {res.status} {res.reason}")
            der = base64.b64decode(res.ocsp_result, validate=True)
            _ocsp.check_response(der, self.leaf, self.issuer)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            return False
        self.der, self.error = der, ""
        return True

    def __call__(self) -> Optional[bytes]:
        return self.der


def _cert(folder: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / "certs" / f"{name}.pem").read_bytes())


def secc_context(folder: Union[str, Path], *, password: Optional[str] = None,
                 keylog=None) -> tuple[ssl.SSLContext, StapleCache]:
    """The -2 SECC context of a PKI folder, stapling from the returned cache (fill it
    with ``await cache.refresh(backend)``)."""
    folder = Path(folder)
    ctx = _tls.secc_context("iso2", folder / "certs" / "seccChain.pem",
                            folder / "private_keys" / "seccLeaf.key", keylog=keylog,
                            password=password)
    chain = x509.load_pem_x509_certificates((folder / "certs" / "seccChain.pem").read_bytes())
    if len(chain) < 2:
        raise ValueError("certs/seccChain.pem holds no issuer of the SECC leaf")
    cache = StapleCache(chain[0], chain[1])
    stapling.staple(ctx, cache)
    root = folder / "certs" / "v2gRootCA.pem"
    if root.exists():
        trusted_ca.select_chain(ctx, [(ctx, x509.load_pem_x509_certificate(root.read_bytes()))])
    return ctx, cache


def evcc_context(folder: Union[str, Path], *, require_staple: bool = False,
                 keylog=None) -> ssl.SSLContext:
    """The -2 EVCC context of a PKI folder (V2G root): sends trusted_ca_keys, asks for the
    SECC leaf's status."""
    folder = Path(folder)
    root = folder / "certs" / "v2gRootCA.pem"
    ctx = _tls.evcc_context("iso2", root, keylog=keylog)
    trusted_ca.send(ctx, [x509.load_pem_x509_certificate(root.read_bytes())])   # [V2G2-651]
    ctx.exi15118_staple = None               # what the last handshake got (for logs and tests)

    def check(der: Optional[bytes], chain: list) -> bool:
        ctx.exi15118_staple = der
        if der is None:
            return not require_staple
        if len(chain) < 2:
            return False
        leaf, issuer = (x509.load_der_x509_certificate(c) for c in chain[:2])
        try:
            _ocsp.check_response(der, leaf, issuer)
        except CertificateError:
            return False
        return True

    stapling.request_status(ctx, check, with_chain=True)
    return ctx
