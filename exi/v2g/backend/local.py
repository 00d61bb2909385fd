"""A local backend on the test PKI: CSMS, certificate provisioning service (CPS) and
mobility operator (MO) in one object, so that a whole Plug & Charge session runs on one
machine.

* ``authorize``: validates the contract chain (MO or V2G root, eMAID as CN) and asks the
  OCSP responder about every certificate of it (or about the hash data alone);
* ``get_15118_ev_certificate``: checks the request's signature and its signer (the OEM
  provisioning certificate must chain to the OEM root; for an update, the old contract
  chain to the MO root), mints a contract certificate (new key, CN = eMAID, issued by MO
  Sub-CA 2), encrypts its key for the vehicle and returns the signed
  CertificateInstallationRes / CertificateUpdateRes EXI;
* ``get_certificate_status``: an OCSP response, from the in-process responder or over HTTP
  from ``ocsp_url`` (as a CSMS proxies the SECC's OCSP requests).
"""
from __future__ import annotations

import base64
import datetime as _dt
import secrets
import string
from pathlib import Path
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import exi
from exi.v2g import pki as _pki

from ..security import certs as _certs
from ..security import installation as _inst
from ..security import ocsp as _ocsp
from ..security.errors import CertificateError, SecurityError
from .base import (CERTIFICATE_STATUS, ISO2_NAMESPACE, AuthorizeRequest, AuthorizeResponse,
                   Backend, Get15118EVCertificateRequest, Get15118EVCertificateResponse,
                   GetCertificateStatusRequest, GetCertificateStatusResponse)

__all__ = ["LocalBackend"]

_BASE36 = string.digits + string.ascii_uppercase
_CONTRACT_USAGE = {"digital_signature", "content_commitment", "key_encipherment", "key_agreement"}


class LocalBackend(Backend):
    """``pki``: an :class:`exi.v2g.pki.PKI` (iso2 profile).  ``ocsp_url``: ask this HTTP
    responder instead of the in-process one.  ``now``: a fixed clock for tests.
    ``max_contracts``: the minted contracts kept in :attr:`contracts` (oldest dropped: a
    long-running SECC installs for every EV that asks)."""

    def __init__(self, pki: _pki.PKI, *, ocsp_url: Optional[str] = None,
                 responder: Optional[_ocsp.OCSPResponder] = None,
                 now: Optional[_dt.datetime] = None, emaid_prefix: str = "DEEXIC",
                 contract_days: int = 730, max_contracts: int = 1024) -> None:
        if pki.profile != "iso2":
            raise ValueError("the local backend implements ISO 15118-2 Plug & Charge")
        self.pki = pki
        self.ocsp_url = ocsp_url
        self.responder = responder or _ocsp.OCSPResponder(
            [(pki.certs[n], pki.keys[n]) for n in pki.certs if n in _ISSUERS])
        self.now = now
        self.cancelled: set[str] = set()            # eMAIDs whose contract the MO cancelled
        self.blocked: set[str] = set()              # eMAIDs refused (idTokenInfo Blocked)
        self.contracts: dict[str, _inst.ContractCredentials] = {}
        self.contract_days = contract_days
        self.max_contracts = max_contracts
        self._emaid_prefix = emaid_prefix

    @classmethod
    def from_folder(cls, folder: Union[str, Path], *, password: Optional[str] = None,
                    **kw) -> "LocalBackend":
        """Load a folder written by ``exi15118 pki create --profile iso2`` (``password``:
        the one its keys were written with, if any)."""
        folder = Path(folder)
        p = _pki.PKI("iso2", "p256")
        secret = password.encode() if password else None
        for pem in sorted((folder / "certs").glob("*.pem")):
            if pem.stem.endswith("Chain"):
                continue
            p.certs[pem.stem] = x509.load_pem_x509_certificate(pem.read_bytes())
            p.keys[pem.stem] = serialization.load_pem_private_key(
                (folder / "private_keys" / f"{pem.stem}.key").read_bytes(), secret)
        responder = None
        if (folder / "ocsp" / "responder.json").exists():
            responder = _ocsp.OCSPResponder.from_folder(folder, password=password)
        return cls(p, responder=responder, **kw)

    # --- helpers -----------------------------------------------------------------------

    def _now(self) -> _dt.datetime:
        return self.now or _dt.datetime.now(_dt.timezone.utc)

    @property
    def contract_roots(self) -> list:
        return [self.pki.certs["moRootCA"], self.pki.certs["v2gRootCA"]]

    async def _ocsp_response(self, data: _ocsp.OCSPRequestData) -> Optional[bytes]:
        if self.ocsp_url:
            return await _ocsp.fetch(self.ocsp_url, _ocsp.request_from_data(data))
        return self.responder.response_for_data(data, now=self._now())

    async def _check_revocation(self, chain: _certs.ChainResult) -> None:
        responses = [await self._ocsp_response(d)
                     for d in _ocsp.chain_request_data(chain.certificates, chain.root)]
        _ocsp.check_chain(chain.certificates, chain.root, responses, now=self._now())

    async def _check_hash_data(self, items) -> None:
        """Every certificate named by hash data: a known issuer, a verified GOOD response;
        revocation is reported before any other problem."""
        if len(items) > 4:
            raise CertificateError("more than 4 iso15118CertificateHashData entries")
        errors = []
        for data in items:
            issuer = next((c for n, c in self.pki.certs.items() if n in _ISSUERS
                           and _ocsp.request_data_matches(data, c)), None)
            try:
                if issuer is None:
                    raise CertificateError(f"certificate {data.serial_number}: unknown issuer")
                der = await self._ocsp_response(data)
                if der is None:
                    raise CertificateError(f"certificate {data.serial_number}: no OCSP response")
                _ocsp.check_response_for_data(der, data, issuer, now=self._now())
            except CertificateError as e:
                errors.append(e)
        for e in errors:
            if e.response_code == "FAILED_CertificateRevoked":
                raise e
        if errors:
            raise errors[0]

    # --- Backend -----------------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        emaid = request.id_token
        try:
            if request.certificate:
                pems = x509.load_pem_x509_certificates(request.certificate.encode())
                chain = _certs.validate_chain(pems, self.contract_roots, now=self._now(),
                                              purpose="contract", emaid=emaid)
                await self._check_revocation(chain)
            elif request.iso15118_certificate_hash_data:
                await self._check_hash_data(request.iso15118_certificate_hash_data)
            else:
                return AuthorizeResponse("Invalid", "NoCertificateAvailable",
                                         "neither a chain nor hash data")
        except SecurityError as e:
            return AuthorizeResponse("Invalid", CERTIFICATE_STATUS.get(e.response_code,
                                                                       "CertChainError"), str(e))
        except Exception as e:                       # never fail open
            return AuthorizeResponse("Invalid", "CertChainError", f"{type(e).__name__}: {e}")
        if emaid.replace("-", "").upper() in self.cancelled:
            return AuthorizeResponse("Invalid", "ContractCancelled", "contract cancelled")
        if emaid.replace("-", "").upper() in self.blocked:
            return AuthorizeResponse("Blocked", "Accepted", "eMAID blocked")
        return AuthorizeResponse("Accepted", "Accepted")

    async def get_15118_ev_certificate(
            self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        try:
            if request.iso15118_schema_version != ISO2_NAMESPACE:
                raise SecurityError(f"unsupported schema {request.iso15118_schema_version}")
            msg = exi.decode(base64.b64decode(request.exi_request, validate=True), "iso2")
            kind, signer = _inst.verify_request(msg)
            if (kind, request.action) not in (("installation", "Install"), ("update", "Update")):
                raise SecurityError(f"action {request.action} with a {kind} request")
            now = self._now()
            if kind == "installation":
                oem = self._oem_chain(signer)
                _certs.validate_chain(oem, [self.pki.certs["oemRootCA"], self.pki.certs["v2gRootCA"]],
                                      now=now, purpose="oem", key_agreement=True)
                emaid = self._new_emaid()
            else:
                req = msg.Body.CertificateUpdateReq
                old = _certs.validate_chain(
                    _certs.chain_from_message(req.ContractSignatureCertChain),
                    self.contract_roots, now=now, purpose="contract", emaid=req.eMAID,
                    key_agreement=True)
                await self._check_revocation(old)
                emaid = req.eMAID
            contract = self.mint_contract(emaid)
            res = _inst.certificate_response(
                kind, msg.Header.SessionID, contract=contract, recipient=signer,
                cps_chain=self.pki.chain("cpsLeaf"), cps_key=self.pki.keys["cpsLeaf"],
                retry_counter=None)
            return Get15118EVCertificateResponse(
                "Accepted", base64.b64encode(exi.encode(res)).decode())
        except SecurityError as e:
            return Get15118EVCertificateResponse("Failed", reason=e.response_code)
        except Exception:                            # a malformed request, never a crash
            return Get15118EVCertificateResponse("Failed", reason="FAILED")

    async def get_certificate_status(
            self, request: GetCertificateStatusRequest) -> GetCertificateStatusResponse:
        try:
            der = await self._ocsp_response(request.ocsp_request_data)
        except Exception as e:
            return GetCertificateStatusResponse("Failed", reason=f"{type(e).__name__}: {e}")
        if der is None:
            return GetCertificateStatusResponse("Failed", reason="unknown issuer")
        return GetCertificateStatusResponse("Accepted", base64.b64encode(der).decode())

    # --- the mobility operator ----------------------------------------------------------

    def _new_emaid(self) -> str:
        # ISO 15118-2 Annex H eMAID: country (DE) + provider (EXI) + a 9-character instance
        # ('C' + 8 random base-36 characters): 14 characters with the default prefix.  Random, not a running number:
        # `exi15118 secc --workers N` runs N backends, and a restarted SECC starts afresh,
        # so a per-process counter would hand two cars the same contract ID.
        while True:
            emaid = self._emaid_prefix + "".join(secrets.choice(_BASE36) for _ in range(14 - len(self._emaid_prefix)))
            if emaid not in self.contracts:
                return emaid

    def _oem_chain(self, leaf: x509.Certificate) -> list:
        """-2 requests carry only the OEM provisioning leaf: complete it from the OEM CAs
        known to the CPS."""
        chain, cert = [leaf], leaf
        for _ in range(2):
            issuer = next((c for n, c in self.pki.certs.items()
                           if n.startswith("oemSubCA") and c.subject == cert.issuer), None)
            if issuer is None:
                break
            chain.append(issuer)
            cert = issuer
        return chain

    def mint_contract(self, emaid: str) -> _inst.ContractCredentials:
        """A new contract certificate and key for ``emaid``, issued by MO Sub-CA 2."""
        key = _pki.new_key("p256")
        start = self._now() - _dt.timedelta(hours=1)
        issuer = self.pki.certs["moSubCA2"]
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, emaid),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "exi15118 test MO"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "MO")])
        cert = _pki.issue(subject, key, issuer=issuer, issuer_key=self.pki.keys["moSubCA2"],
                          kind="leaf", usage=_CONTRACT_USAGE, not_before=start,
                          not_after=start + _dt.timedelta(days=self.contract_days),
                          ocsp_url=self.pki.ocsp_url)
        creds = _inst.ContractCredentials(
            [cert, self.pki.certs["moSubCA2"], self.pki.certs["moSubCA1"]], key, emaid)
        self.contracts.pop(emaid, None)              # an update makes it the newest
        self.contracts[emaid] = creds
        while len(self.contracts) > self.max_contracts:
            self.contracts.pop(next(iter(self.contracts)))
        return creds


_ISSUERS = {"v2gRootCA", "cpoSubCA1", "cpoSubCA2", "cpsSubCA1", "cpsSubCA2", "oemRootCA",
            "oemSubCA1", "oemSubCA2", "moRootCA", "moSubCA1", "moSubCA2"}
