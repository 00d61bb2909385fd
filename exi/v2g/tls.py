"""TLS profiles of ISO 15118-2 and ISO 15118-20 on the stdlib ``ssl`` module.

ISO 15118-2 (clause 7.7.3; ids (2nd-hand) as quoted by implementations of the standard):
  * [V2G2-067] TLS 1.2; [V2G2-068] the SECC is always the TLS server.
  * [V2G2-602] cipher suites TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 and
    TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 (Table 7), [V2G2-006]/[V2G2-007] on
    secp256r1, ECDSA, 256-bit keys.
  * Unilateral authentication: the EVCC checks the SECC chain up to a V2G root; the
    SECC does not ask for a client certificate.
  * DEVIATION: the static-ECDH suite (ECDH-ECDSA-AES128-SHA256) was removed from
    OpenSSL in 1.1.0 and does not exist in OpenSSL 3, so neither side offers it.  An
    EVCC that offers *only* that suite cannot connect; every EVCC we know offers the
    ECDHE suite, which also gives forward secrecy.
  * Not available through ``ssl``: OCSP stapling (status_request_v2) and
    trusted_ca_keys, which -2 SECCs should support.

ISO 15118-20 (clause 7.7.3; ids (2nd-hand)):
  * [V2G20-1264] TLS 1.3 only; [V2G20-1235] TLS is always used with -20.
  * [V2G20-2458]/[V2G20-2459] cipher suites TLS_AES_256_GCM_SHA384 and
    TLS_CHACHA20_POLY1305_SHA256.  ``ssl`` cannot restrict TLS 1.3 suites, so OpenSSL
    also offers TLS_AES_128_GCM_SHA256; :func:`check_session` rejects a session that
    negotiated it (OpenSSL's own order puts AES-256-GCM first, so this does not occur
    between two OpenSSL peers).
  * [V2G20-1634] key exchange groups secp521r1 (mandatory) and x448: ``ssl`` sets one
    group only, we set secp521r1.  Signatures: ECDSA secp521r1/SHA-512 or Ed448
    (OpenSSL 3 offers both by default).
  * [V2G20-2400] mutual authentication: the SECC requests and verifies the vehicle
    certificate (chain to an OEM root or a V2G root).

Certificate checks beyond what OpenSSL does (chain signature, validity period, CA
basicConstraints/keyUsage): :func:`check_peer_certificate` checks the peer's leaf for the
profile's curve and signature algorithm, its key usage (digitalSignature), that it is not
a CA and its validity period.  Python 3.11 exposes only the leaf of the peer chain
(``get_verified_chain()`` is 3.13+), so the intermediates' curves are not re-checked.
No hostname checks: V2G certificates name an EVSE/EV, not a DNS name.

Key logging: ``keylog=PATH`` appends the session secrets in NSS key log format
(SSLKEYLOGFILE) so that Wireshark (with dsV2Gshark) can decrypt a capture.  Test use
only: the file decrypts every session it recorded.
"""
from __future__ import annotations

import datetime as _dt
import enum
import os
import ssl
from typing import Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448

__all__ = [
    "Profile", "TLSPolicyError", "secc_context", "evcc_context", "check_peer_certificate",
    "check_session", "describe", "ISO2_CIPHER", "ISO2_STATIC_ECDH_CIPHER", "ISO20_CIPHERSUITES",
]

StrPath = Union[str, "os.PathLike[str]"]

ISO2_CIPHER = "ECDHE-ECDSA-AES128-SHA256"           # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
ISO2_STATIC_ECDH_CIPHER = "ECDH-ECDSA-AES128-SHA256"  # TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256: gone from OpenSSL
ISO2_GROUP = "prime256v1"                           # OpenSSL's name of secp256r1
ISO20_CIPHERSUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
ISO20_GROUP = "secp521r1"


class Profile(enum.Enum):
    ISO2 = "iso2"       # ISO 15118-2 (also what a TLS-capable DIN-era SECC would use)
    ISO20 = "iso20"


class TLSPolicyError(ssl.SSLError):
    """The TLS session or the peer's certificate does not meet the profile."""


def _profile(p: Union[Profile, str]) -> Profile:
    return p if isinstance(p, Profile) else Profile(p)


def _base(profile: Profile, purpose: int, keylog: Optional[StrPath]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose == ssl.Purpose.CLIENT_AUTH
                         else ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False                  # no DNS names in V2G certificates
    if profile is Profile.ISO2:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ISO2_CIPHER)            # static ECDH suite: see module doc
        ctx.set_ecdh_curve(ISO2_GROUP)
    else:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_ecdh_curve(ISO20_GROUP)
    ctx.options |= ssl.OP_NO_COMPRESSION
    if keylog:
        ctx.keylog_filename = os.fspath(keylog)
    return ctx


def _load_trust(ctx: ssl.SSLContext, trust: Union[StrPath, Sequence[StrPath]]) -> None:
    paths = [trust] if isinstance(trust, (str, os.PathLike)) else list(trust)
    if not paths:
        raise ValueError("at least one trust anchor (root certificate file) is needed")
    for p in paths:
        ctx.load_verify_locations(cafile=os.fspath(p))


def secc_context(profile: Union[Profile, str], certfile: StrPath, keyfile: StrPath, *,
                 password: Optional[Union[str, bytes]] = None,
                 trust: Optional[Union[StrPath, Sequence[StrPath]]] = None,
                 keylog: Optional[StrPath] = None) -> ssl.SSLContext:
    """Server context for the SECC.

    ``certfile``: SECC leaf followed by its sub-CA certificates (PEM), never the root.
    ``trust``: roots the vehicle certificate may chain to (OEM and/or V2G root); required
    for -20 (mutual authentication), ignored for -2 (the SECC asks for no certificate).
    """
    profile = _profile(profile)
    ctx = _base(profile, ssl.Purpose.CLIENT_AUTH, keylog)
    ctx.load_cert_chain(os.fspath(certfile), os.fspath(keyfile), password)
    if profile is Profile.ISO20:
        if trust is None:
            raise ValueError("ISO 15118-20 needs mutual authentication: pass trust=<OEM/V2G roots>")
        _load_trust(ctx, trust)
        ctx.verify_mode = ssl.CERT_REQUIRED     # [V2G20-2400]
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def evcc_context(profile: Union[Profile, str], trust: Union[StrPath, Sequence[StrPath]], *,
                 certfile: Optional[StrPath] = None, keyfile: Optional[StrPath] = None,
                 password: Optional[Union[str, bytes]] = None,
                 keylog: Optional[StrPath] = None) -> ssl.SSLContext:
    """Client context for the EVCC.

    ``trust``: V2G root certificate(s) the SECC chain must end in.  ``certfile``/
    ``keyfile``: the vehicle certificate chain and key, required for -20.
    """
    profile = _profile(profile)
    ctx = _base(profile, ssl.Purpose.SERVER_AUTH, keylog)
    _load_trust(ctx, trust)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if certfile is not None:
        ctx.load_cert_chain(os.fspath(certfile), os.fspath(keyfile) if keyfile else None,
                            password)
    elif profile is Profile.ISO20:
        raise ValueError("ISO 15118-20 needs mutual authentication: pass the vehicle "
                         "certificate chain (certfile=, keyfile=)")
    return ctx


def _utc(now: Optional[_dt.datetime]) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=_dt.timezone.utc)


def check_peer_certificate(cert: Union[bytes, x509.Certificate], profile: Union[Profile, str],
                           *, now: Optional[_dt.datetime] = None) -> x509.Certificate:
    """Check a peer's leaf certificate against the profile; return it parsed.

    Raises :class:`TLSPolicyError` with the reason.
    """
    profile = _profile(profile)
    if isinstance(cert, (bytes, bytearray)):
        cert = x509.load_der_x509_certificate(bytes(cert))
    key = cert.public_key()
    subject = cert.subject.rfc4514_string()
    if profile is Profile.ISO2:
        # [V2G2-006]/[V2G2-007]: ECDSA on secp256r1, SHA-256
        if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
            raise TLSPolicyError(f"{subject}: ISO 15118-2 needs a secp256r1 key, got {_key_name(key)}")
        if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256:
            raise TLSPolicyError(f"{subject}: ISO 15118-2 needs ecdsa-with-SHA256 signatures")
    else:
        ok_ec = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP521R1)
        ok_ed = isinstance(key, ed448.Ed448PublicKey)
        if not (ok_ec or ok_ed):
            raise TLSPolicyError(f"{subject}: ISO 15118-20 needs a secp521r1 or Ed448 key, "
                                 f"got {_key_name(key)}")
        if cert.signature_algorithm_oid not in (x509.SignatureAlgorithmOID.ED448,
                                                x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512):
            raise TLSPolicyError(f"{subject}: ISO 15118-20 needs ecdsa-with-SHA512 or Ed448 "
                                 "signatures")
    t = _utc(now)
    if t < cert.not_valid_before_utc:
        raise TLSPolicyError(f"{subject}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}")
    if t > cert.not_valid_after_utc:
        raise TLSPolicyError(f"{subject}: expired {cert.not_valid_after_utc:%Y-%m-%d %H:%M}")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise TLSPolicyError(f"{subject}: a CA certificate cannot be a TLS end entity")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise TLSPolicyError(f"{subject}: no keyUsage extension (the certificate profiles "
                             "require one)") from None
    if not ku.digital_signature:
        raise TLSPolicyError(f"{subject}: keyUsage lacks digitalSignature")
    return cert


def _key_name(key) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name
    return type(key).__name__.replace("PublicKey", "").lstrip("_") or "unknown key"


def check_session(ssl_object: Union[ssl.SSLObject, ssl.SSLSocket], profile: Union[Profile, str],
                  *, require_peer_cert: bool = True,
                  now: Optional[_dt.datetime] = None) -> Optional[x509.Certificate]:
    """Check a finished handshake: version, cipher and the peer's leaf certificate.

    Returns the peer certificate (None when there is none and none was required).
    """
    profile = _profile(profile)
    version = ssl_object.version()
    cipher = (ssl_object.cipher() or ("?",))[0]
    if profile is Profile.ISO2:
        if version != "TLSv1.2":
            raise TLSPolicyError(f"ISO 15118-2 needs TLS 1.2, negotiated {version}")
        if cipher not in (ISO2_CIPHER, ISO2_STATIC_ECDH_CIPHER):
            raise TLSPolicyError(f"cipher {cipher} not allowed by ISO 15118-2")
    else:
        if version != "TLSv1.3":
            raise TLSPolicyError(f"ISO 15118-20 needs TLS 1.3, negotiated {version}")
        if cipher not in ISO20_CIPHERSUITES:
            raise TLSPolicyError(f"cipher suite {cipher} not allowed by ISO 15118-20")
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        if require_peer_cert:
            raise TLSPolicyError("peer sent no certificate")
        return None
    return check_peer_certificate(der, profile, now=now)


def describe(ssl_object: Union[ssl.SSLObject, ssl.SSLSocket]) -> dict:
    """Version, cipher and peer subject of a session, for logs."""
    der = ssl_object.getpeercert(binary_form=True)
    peer = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {"version": ssl_object.version(), "cipher": (ssl_object.cipher() or (None,))[0],
            "peer": peer}

