"""The EVCC's contract wallet for ISO 15118-2 Plug & Charge.

Session-independent: what an EVCC needs to pay with a contract, on
``exi.messages.iso2`` objects:

* the credentials: the contract chain (leaf, MO Sub-CA 2, MO Sub-CA 1) and its key, the
  OEM provisioning chain and key, the V2G and MO roots; loaded from and stored in a PKI
  folder (``exi15118 pki create``'s layout: ``certs/contractChain.pem``,
  ``private_keys/contractLeaf.key``, ``certs/oemProvChain.pem``,
  ``private_keys/oemProvLeaf.key``, ``certs/v2gRootCA.pem``, ``certs/moRootCA.pem``);
* :meth:`ContractWallet.certificate_action`: install (no contract, or asked to),
  update (the contract or its chain expires soon, or the SECC said
  OK_CertificateExpiresSoon) or nothing;
* the requests: CertificateInstallationReq signed with the OEM provisioning key,
  CertificateUpdateReq signed with the contract key, PaymentDetailsReq, the signed
  AuthorizationReq (Id, the SECC's GenChallenge), the signed MeteringReceiptReq
  ([V2G2-903]);
* the checks: the certificate response (SA provisioning chain to a V2G root, the four
  signed parts, the decrypted key matching the new certificate; then the contract is
  stored), and SalesTariff signatures against the contract chain's MO Sub-CA 2 (what
  RISE-V2G and the iso15118 package do; the requirement naming the signer is unverified).

Refusals raise :class:`exi.v2g.security.SecurityError` subclasses; their
``response_code`` says why.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exi.messages import iso2

from ..security import certs as _certs
from ..security import installation as _inst
from ..security import xmldsig
from ..security.errors import SecurityError, SignatureError
from ..security.installation import ContractCredentials

__all__ = ["ContractWallet", "AUTHORIZATION_ID", "RECEIPT_ID"]

AUTHORIZATION_ID = "id1"            # the Id the signed AuthorizationReq carries (as RISE-V2G)
RECEIPT_ID = "id1"
Cert = x509.Certificate


def _load_chain(path: Path) -> list[Cert]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _load_key(path: Path, password: Optional[str]):
    return serialization.load_pem_private_key(path.read_bytes(),
                                              password.encode() if password else None)


class ContractWallet:
    """An EVCC's Plug & Charge credentials and the operations on them.

    ``folder``: where a new contract is stored (None: kept in memory only).
    ``clock``: the wall clock for certificate validity."""

    def __init__(self, *, v2g_roots: Sequence[Cert], mo_roots: Sequence[Cert] = (),
                 contract: Optional[ContractCredentials] = None,
                 oem_chain: Optional[Sequence[Cert]] = None,
                 oem_key: Optional[ec.EllipticCurvePrivateKey] = None,
                 folder: Optional[Union[str, Path]] = None, password: Optional[str] = None,
                 clock: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.timezone.utc)):
        self.v2g_roots = list(v2g_roots)
        self.mo_roots = list(mo_roots)
        self.contract = contract
        self.oem_chain = list(oem_chain) if oem_chain else None
        self.oem_key = oem_key
        self.folder = Path(folder) if folder is not None else None
        self.password = password
        self.clock = clock
        self.expires_soon = False            # set by the SECC's OK_CertificateExpiresSoon

    @classmethod
    def from_folder(cls, folder: Union[str, Path], *, password: Optional[str] = None,
                    **kw) -> "ContractWallet":
        """Load what exists of the layout above (a contract is optional: it can be
        installed)."""
        folder = Path(folder)
        certs, keys = folder / "certs", folder / "private_keys"
        v2g = [x509.load_pem_x509_certificate((certs / "v2gRootCA.pem").read_bytes())]
        mo = [x509.load_pem_x509_certificate((certs / "moRootCA.pem").read_bytes())] \
            if (certs / "moRootCA.pem").exists() else []
        contract = None
        if (certs / "contractChain.pem").exists() and (keys / "contractLeaf.key").exists():
            chain = _load_chain(certs / "contractChain.pem")
            contract = ContractCredentials(chain, _load_key(keys / "contractLeaf.key", password),
                                           _inst.emaid_of(chain[0]))
        oem_chain = oem_key = None
        if (certs / "oemProvChain.pem").exists() and (keys / "oemProvLeaf.key").exists():
            oem_chain = _load_chain(certs / "oemProvChain.pem")
            oem_key = _load_key(keys / "oemProvLeaf.key", password)
        return cls(v2g_roots=v2g, mo_roots=mo, contract=contract, oem_chain=oem_chain,
                   oem_key=oem_key, folder=folder, password=password, **kw)

    # --- which certificate service --------------------------------------------------------

    def contract_status(self) -> str:
        """"missing", "invalid" (does not validate), "expires_soon" or "ok"."""
        if self.contract is None:
            return "missing"
        try:
            result = _certs.validate_chain(self.contract.chain, [*self.mo_roots, *self.v2g_roots],
                                           now=self.clock(), purpose="contract",
                                           emaid=self.contract.emaid)
        except SecurityError:
            return "invalid"
        return "expires_soon" if result.expires_soon or self.expires_soon else "ok"

    def certificate_action(self, force: Optional[str] = None) -> Optional[str]:
        """"installation", "update" or None.  ``force``: "installation"/"update" as the
        user asked (``--install``/``--update``)."""
        if force is not None:
            if force not in ("installation", "update"):
                raise ValueError(f"force is 'installation' or 'update', not {force!r}")
            return force
        status = self.contract_status()
        if status in ("missing", "invalid"):
            return "installation" if self.oem_key is not None else None
        return "update" if status == "expires_soon" else None

    # --- requests -----------------------------------------------------------------------

    def certificate_request(self, kind: str, session_id: bytes) -> iso2.V2G_Message:
        """The signed CertificateInstallationReq / CertificateUpdateReq."""
        if kind == "installation":
            if self.oem_chain is None or self.oem_key is None:
                raise SecurityError("no OEM provisioning certificate and key to install with",
                                    "FAILED_NoCertificateAvailable")
            return _inst.installation_request(session_id, self.oem_chain, self.oem_key,
                                              self.v2g_roots)
        if kind == "update":
            if self.contract is None:
                raise SecurityError("no contract to update", "FAILED_NoCertificateAvailable")
            return _inst.update_request(session_id, self.contract, self.v2g_roots)
        raise ValueError(f"kind is 'installation' or 'update', not {kind!r}")

    def accept_certificate_response(self, msg: iso2.V2G_Message, kind: str) -> ContractCredentials:
        """Open a CertificateInstallationRes / UpdateRes (see
        :func:`exi.v2g.security.installation.open_certificate_response`), then store the
        new contract.  The static key is the OEM provisioning key for an installation and
        the old contract key for an update ([V2G2-820], [V2G2-821])."""
        static = self.oem_key if kind == "installation" else \
            (self.contract.key if self.contract is not None else None)
        if static is None:
            raise SecurityError(f"no key to open a {kind} response with")
        body = msg.Body.CertificateInstallationRes if kind == "installation" \
            else msg.Body.CertificateUpdateRes
        if body is None:
            raise SecurityError(f"not a {kind} response")
        new = _inst.open_certificate_response(msg, static, v2g_roots=self.v2g_roots,
                                              mo_roots=self.mo_roots, now=self.clock())
        self.contract = new
        self.expires_soon = new.expires_soon
        if self.folder is not None:
            self.save()
        return new

    def _require_contract(self) -> ContractCredentials:
        if self.contract is None:
            raise SecurityError("no contract certificate", "FAILED_NoCertificateAvailable")
        return self.contract

    def payment_details_request(self) -> iso2.PaymentDetailsReqType:
        contract = self._require_contract()
        return iso2.PaymentDetailsReqType(
            eMAID=contract.emaid,
            ContractSignatureCertChain=_certs.chain_to_message(contract.chain))

    def authorization_request(self, session_id: bytes, gen_challenge: bytes) -> iso2.V2G_Message:
        """The AuthorizationReq (Id, GenChallenge) signed with the contract key, one
        Reference to the AuthorizationReq element."""
        contract = self._require_contract()
        msg = iso2.V2G_Message(
            Header=iso2.MessageHeaderType(SessionID=session_id),
            Body=iso2.BodyType(AuthorizationReq=iso2.AuthorizationReqType(
                Id=AUTHORIZATION_ID, GenChallenge=gen_challenge)))
        return xmldsig.sign_message(msg, ["AuthorizationReq"], contract.key)

    def metering_receipt(self, session_id: bytes, meter_info: iso2.MeterInfoType,
                         tuple_id: Optional[int] = None) -> iso2.V2G_Message:
        """The MeteringReceiptReq signed with the contract key ([V2G2-903])."""
        contract = self._require_contract()
        msg = iso2.V2G_Message(
            Header=iso2.MessageHeaderType(SessionID=session_id),
            Body=iso2.BodyType(MeteringReceiptReq=iso2.MeteringReceiptReqType(
                Id=RECEIPT_ID, SessionID=session_id, SAScheduleTupleID=tuple_id,
                MeterInfo=meter_info)))
        return xmldsig.sign_message(msg, ["MeteringReceiptReq"], contract.key)

    # --- checks ---------------------------------------------------------------------------

    def tariff_signer(self) -> Cert:
        """The certificate SalesTariffs are checked with: the MO Sub-CA 2 of the contract
        chain (its issuer)."""
        contract = self._require_contract()
        if len(contract.chain) < 2:
            raise SignatureError("the contract chain has no Sub-CA to check tariffs with")
        return contract.chain[1]

    def verify_tariffs(self, msg: iso2.V2G_Message, *, require: bool = False) -> int:
        """Check the signature over every SalesTariff of a ChargeParameterDiscoveryRes;
        returns how many were verified.  Unsigned tariffs pass unless ``require``."""
        res = msg.Body.ChargeParameterDiscoveryRes
        schedules = res.SAScheduleList if res is not None else None
        tariffs = [t.SalesTariff for t in (schedules.SAScheduleTuple or [])
                   if t.SalesTariff is not None] if schedules is not None else []
        if not tariffs:
            return 0
        if msg.Header is None or msg.Header.Signature is None:
            if require:
                raise SignatureError("SalesTariffs without a signature")
            return 0
        xmldsig.verify_message(msg, ["SalesTariff"] * len(tariffs),
                               self.tariff_signer().public_key())
        return len(tariffs)

    # --- storage --------------------------------------------------------------------------

    def save(self) -> list[Path]:
        """Write the contract into the folder (chain, leaf, key; atomically per file)."""
        if self.folder is None or self.contract is None:
            raise ValueError("no folder or no contract to save")
        pem = serialization.Encoding.PEM
        enc = (serialization.BestAvailableEncryption(self.password.encode()) if self.password
               else serialization.NoEncryption())
        key = self.contract.key
        files = {
            self.folder / "certs" / "contractChain.pem":
                (b"".join(c.public_bytes(pem) for c in self.contract.chain), False),
            self.folder / "certs" / "contractLeaf.pem": (self.contract.chain[0].public_bytes(pem), False),
            self.folder / "certs" / "contractLeaf.der":
                (self.contract.chain[0].public_bytes(serialization.Encoding.DER), False),
            self.folder / "private_keys" / "contractLeaf.key":
                (key.private_bytes(pem, serialization.PrivateFormat.PKCS8, enc), True),
            self.folder / "private_keys" / "contractLeaf.key.der":
                (key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   enc), True),
        }
        for path, (data, private) in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        return list(files)
