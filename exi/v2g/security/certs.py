"""Certificate chain validation for ISO 15118-2 Plug & Charge, with the standard's codes.

:func:`validate_chain` checks a chain sent in a V2G message (contract chain in
PaymentDetailsReq / CertificateUpdateReq, SA provisioning chain in CertificateInstallation/
UpdateRes, SECC chain) against the trust anchors held, following RFC 5280 section 6.1 for
what the V2G profiles use ([V2G2-885]):

* each certificate is issued by the next (issuer name and signature), the last by one of
  the roots (a chain reaching no held root is refused, [V2G2-924]);
* leaf + at most 2 Sub-CAs under the root ([V2G2-009]); every CA has basicConstraints
  CA:TRUE, keyCertSign and a pathLenConstraint the chain below it respects; the leaf is
  not a CA ([V2G2-867]); an unknown critical extension is refused (RFC 5280 4.2);
* ECDSA secp256r1 keys and ecdsa-with-SHA256 signatures throughout ([V2G2-006]/[V2G2-007]);
* validity periods at ``now`` (root included);
* the leaf has digitalSignature (and keyAgreement where its key does ECDH, [V2G2-822]);
* contract chains: the leaf's CN is the eMAID of the request when one is given (as
  RISE-V2G checks), its domainComponent is ``MO``; SECC leaves: domainComponent ``CPO``
  ([V2G2-925]).  The domainComponent values follow the test PKIs of RISE-V2G and ours
  (unverified against the certificate profile tables).

Codes (ISO 15118-2 responseCodeType): expired or not yet valid ->
``FAILED_CertificateExpired`` (not-yet-valid shares it, as the iso15118 package does);
anything else structural, an untrusted root or a wrong eMAID -> ``FAILED_CertChainError``;
revocation (see :mod:`.ocsp`) -> ``FAILED_CertificateRevoked``.  A valid chain whose leaf
expires within ``expires_soon`` (default 14 days, the -20 rule [V2G20-2218]; -2's period is
unverified) -- or whose chain does, through a CA -- is reported with
``response_code = "OK_CertificateExpiresSoon"``.

IDs as quoted in shared/research/iso20-pnc.md 2.4 "(unverified against ISO 15118-2:2014)".
Validation never fails open: an unexpected error is a ``FAILED_CertChainError``.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from .errors import CertificateError

__all__ = ["ChainResult", "validate_chain", "chain_from_message", "chain_to_message",
           "load_certificates", "EXPIRES_SOON", "MAX_SUB_CAS", "LEAF_DOMAIN"]

EXPIRES_SOON = _dt.timedelta(days=14)
MAX_SUB_CAS = 2                     # [V2G2-009]
LEAF_DOMAIN = {"contract": "MO", "secc": "CPO"}
_KNOWN = {ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE,
          ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
          ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.CRL_DISTRIBUTION_POINTS,
          ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.EXTENDED_KEY_USAGE,
          ExtensionOID.SUBJECT_ALTERNATIVE_NAME}

Cert = x509.Certificate
CERT_CHAIN = "FAILED_CertChainError"
EXPIRED = "FAILED_CertificateExpired"


@dataclass(frozen=True)
class ChainResult:
    """A chain that passed: leaf first, then the Sub-CAs, then the root that anchors it."""

    certificates: tuple[Cert, ...]
    root: Cert
    response_code: str              # "OK" or "OK_CertificateExpiresSoon"

    @property
    def leaf(self) -> Cert:
        return self.certificates[0]

    @property
    def expires_soon(self) -> bool:
        return self.response_code == "OK_CertificateExpiresSoon"

    @property
    def common_name(self) -> str:
        return _attr(self.leaf.subject, NameOID.COMMON_NAME) or ""

    def issuer_of(self, cert: Cert) -> Cert:
        """The certificate that issued ``cert`` in this chain (the root for the last)."""
        full = self.certificates + (self.root,)
        i = next(k for k, c in enumerate(full) if c is cert)
        return full[min(i + 1, len(full) - 1)]


def _attr(name: x509.Name, oid) -> Optional[str]:
    values = name.get_attributes_for_oid(oid)
    return values[0].value if values else None


def _utc(now: Optional[_dt.datetime]) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=_dt.timezone.utc)


def load_certificates(data: Union[bytes, Iterable[bytes]]) -> list[Cert]:
    """DER certificate(s) -> objects; a parse error is a FAILED_CertChainError."""
    items = [data] if isinstance(data, (bytes, bytearray)) else list(data)
    out = []
    for der in items:
        try:
            out.append(x509.load_der_x509_certificate(bytes(der)))
        except Exception as e:
            raise CertificateError(f"not a DER X.509 certificate: {e}", CERT_CHAIN) from None
    return out


def chain_from_message(chain) -> list[Cert]:
    """A CertificateChainType (Certificate + SubCertificates) -> [leaf, Sub-CA 2, Sub-CA 1]."""
    if chain is None or not chain.Certificate:
        raise CertificateError("no certificate in the chain", CERT_CHAIN)
    subs = chain.SubCertificates.Certificate if chain.SubCertificates is not None else []
    return load_certificates([chain.Certificate, *(subs or [])])


def chain_to_message(certs: Sequence[Cert], *, schema: str = "iso2", Id: Optional[str] = None):
    """[leaf, Sub-CA 2, Sub-CA 1] -> CertificateChainType of ``schema`` (leaf first)."""
    import importlib
    from cryptography.hazmat.primitives.serialization import Encoding
    m = importlib.import_module(f"exi.messages.{schema}")
    der = [c.public_bytes(Encoding.DER) for c in certs]
    subs = m.SubCertificatesType(Certificate=der[1:]) if len(der) > 1 else None
    return m.CertificateChainType(Id=Id, Certificate=der[0], SubCertificates=subs)


def validate_chain(certificates: Sequence[Cert], roots: Sequence[Cert], *,
                   now: Optional[_dt.datetime] = None, purpose: str = "contract",
                   emaid: Optional[str] = None, key_agreement: bool = False,
                   expires_soon: _dt.timedelta = EXPIRES_SOON) -> ChainResult:
    """Validate ``certificates`` (leaf first, no root) against ``roots``.

    ``purpose``: "contract", "secc", "cps" or "oem" (which leaf rules apply).  Returns a
    :class:`ChainResult`; raises :class:`CertificateError` with the response code."""
    try:
        return _validate(list(certificates), list(roots), _utc(now), purpose, emaid,
                         key_agreement, expires_soon)
    except CertificateError:
        raise
    except Exception as e:                      # never fail open
        raise CertificateError(f"chain check failed: {type(e).__name__}: {e}", CERT_CHAIN) from e


def _name(cert: Cert) -> str:
    try:
        return cert.subject.rfc4514_string()
    except Exception:               # cryptography parses names lazily: a bad one raises here
        return "<unreadable subject>"


def _validate(certs, roots, now, purpose, emaid, key_agreement, soon) -> ChainResult:
    if not certs:
        raise CertificateError("empty certificate chain", CERT_CHAIN)
    if len(certs) > 1 + MAX_SUB_CAS:
        raise CertificateError(f"{len(certs) - 1} Sub-CAs: at most {MAX_SUB_CAS} under the "
                               "root [V2G2-009]", CERT_CHAIN)
    if not roots:
        raise CertificateError("no trust anchor held for this chain [V2G2-924]", CERT_CHAIN)
    for cert in certs:
        _check_algorithms(cert)
        _check_critical(cert)
    # issuer links inside the chain
    for child, parent in zip(certs, certs[1:]):
        _check_issued(child, parent)
    root = None
    for candidate in roots:
        if candidate.subject == certs[-1].issuer:
            try:
                certs[-1].verify_directly_issued_by(candidate)
            except Exception:
                continue
            root = candidate
            break
    if root is None:
        raise CertificateError(f"{_name(certs[-1])} is not issued by a trusted root "
                               "[V2G2-924]", CERT_CHAIN)
    # CA rules, from the root down ([V2G2-867], RFC 5280 6.1.4)
    cas = certs[1:][::-1]            # Sub-CA 1, Sub-CA 2
    for depth, ca in enumerate([root] + cas):
        below = len(cas) - depth     # CAs that follow this one in the path (0 for the last)
        bc = _ext(ca, x509.BasicConstraints)
        if bc is None or not bc.ca:
            raise CertificateError(f"{_name(ca)} is used as a CA but is not one "
                                   "(basicConstraints) [V2G2-867]", CERT_CHAIN)
        if bc.path_length is not None and below > bc.path_length:
            raise CertificateError(f"{_name(ca)}: pathLenConstraint {bc.path_length} "
                                   f"exceeded by {below} CA(s) below it", CERT_CHAIN)
        ku = _ext(ca, x509.KeyUsage)
        if ku is None or not ku.key_cert_sign:
            raise CertificateError(f"{_name(ca)}: keyUsage lacks keyCertSign", CERT_CHAIN)
    leaf = certs[0]
    bc = _ext(leaf, x509.BasicConstraints)
    if bc is not None and bc.ca:
        raise CertificateError(f"{_name(leaf)}: the leaf is a CA certificate [V2G2-867]",
                               CERT_CHAIN)
    ku = _ext(leaf, x509.KeyUsage)
    if ku is None or not ku.digital_signature:
        raise CertificateError(f"{_name(leaf)}: keyUsage lacks digitalSignature", CERT_CHAIN)
    if key_agreement and not ku.key_agreement:
        raise CertificateError(f"{_name(leaf)}: keyUsage lacks keyAgreement [V2G2-822]",
                               CERT_CHAIN)
    want_dc = LEAF_DOMAIN.get(purpose)
    if want_dc is not None:
        dcs = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
        if want_dc not in dcs:
            raise CertificateError(f"{_name(leaf)}: a {purpose} certificate needs "
                                   f"domainComponent {want_dc} [V2G2-925]", CERT_CHAIN)
    if emaid is not None:
        cn = _attr(leaf.subject, NameOID.COMMON_NAME) or ""
        if _norm_emaid(cn) != _norm_emaid(emaid):
            raise CertificateError(f"contract certificate CN {cn!r} is not the eMAID "
                                   f"{emaid!r}", CERT_CHAIN)
    # validity last: a chain that is wrong *and* expired is a chain error
    for cert in [*certs, root]:
        if now < cert.not_valid_before_utc:
            raise CertificateError(f"{_name(cert)} is not valid before "
                                   f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M}", EXPIRED)
        if now > cert.not_valid_after_utc:
            raise CertificateError(f"{_name(cert)} expired "
                                   f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}", EXPIRED)
    end = min(c.not_valid_after_utc for c in [*certs, root])
    code = "OK_CertificateExpiresSoon" if end - now <= soon else "OK"
    return ChainResult(tuple(certs), root, code)


def _norm_emaid(value: str) -> str:
    # eMAIDs are written with or without '-' separators (DE-ABC-C123ABC56 / DEABCC123ABC56)
    return value.replace("-", "").upper()


def _ext(cert: Cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _check_algorithms(cert: Cert) -> None:
    key = cert.public_key()
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise CertificateError(f"{_name(cert)}: ISO 15118-2 certificates use secp256r1 keys "
                               "[V2G2-006]", CERT_CHAIN)
    if not isinstance(cert.signature_hash_algorithm, hashes.SHA256) or \
            cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise CertificateError(f"{_name(cert)}: not signed with ecdsa-with-SHA256 [V2G2-007]",
                               CERT_CHAIN)


def _check_critical(cert: Cert) -> None:
    for ext in cert.extensions:
        if ext.critical and ext.oid not in _KNOWN:
            raise CertificateError(f"{_name(cert)}: unknown critical extension "
                                   f"{ext.oid.dotted_string}", CERT_CHAIN)


def _check_issued(child: Cert, parent: Cert) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except Exception as e:
        raise CertificateError(f"{_name(child)} is not issued by {_name(parent)} "
                               f"({type(e).__name__})", CERT_CHAIN) from None
