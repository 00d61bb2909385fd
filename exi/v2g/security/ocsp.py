"""OCSP for the V2G PKI: request data, responses, revocation checks and a loopback responder.

Built on ``cryptography.x509.ocsp`` (RFC 6960) and asyncio.

* :func:`request_data` / :func:`chain_request_data`: the OCPP 2.0.1 ``OCSPRequestDataType``
  of a certificate (hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber,
  responderURL), what a SECC sends in ``Authorize.iso15118CertificateHashData`` (at most 4)
  and ``GetCertificateStatus``.  The hashes are lower-case hex (whether OCPP wants hex or
  base64url is unverified; the iso15118 package sends base64url).
* :func:`check_response` verifies one DER OCSPResponse for a certificate: signed by its
  issuer or by a responder the issuer delegated to (id-kp-OCSPSigning), for this
  certificate, current (thisUpdate/nextUpdate, at most ``max_age`` old — -2 SECCs refresh
  at least weekly, [V2G2-649]/[V2G2-876] as quoted second-hand), status GOOD.  Revoked ->
  ``FAILED_CertificateRevoked``; anything else that is not a clean GOOD (unknown, stale,
  bad signature, malformed) -> ``FAILED_CertChainError``: never fails open.
* :func:`check_chain` does that for every certificate of a validated chain, so a revoked
  certificate at any level (leaf or Sub-CA) is found.
* :class:`OCSPResponder` answers requests for a set of issuers from a revocation list;
  :func:`serve` puts it on HTTP (POST ``application/ocsp-request``, and GET with the
  base64 request in the path) on loopback; :func:`fetch` is the matching client.

TLS stapling: :mod:`.stapling`; README.md ("OCSP in TLS") says what OpenSSL can staple.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Iterable, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from .errors import CertificateError

__all__ = ["OCSPRequestData", "request_data", "chain_request_data", "build_request",
           "check_response", "check_chain", "OCSPResponder", "serve", "fetch", "ocsp_url",
           "MAX_AGE", "Revocation", "request_from_data", "expiring", "check_response_for_data",
           "request_data_matches"]

MAX_AGE = _dt.timedelta(days=7)
REVOKED = "FAILED_CertificateRevoked"
CHAIN = "FAILED_CertChainError"
_MAX_HTTP_BODY = 64 * 1024
Cert = x509.Certificate


@dataclass(frozen=True)
class OCSPRequestData:
    """OCPP 2.0.1 OCSPRequestDataType (field names in OCPP's JSON via :meth:`to_ocpp`)."""

    hash_algorithm: str             # "SHA256" | "SHA384" | "SHA512"
    issuer_name_hash: str           # hex
    issuer_key_hash: str            # hex
    serial_number: str              # hex, no leading zeros
    responder_url: str

    def to_ocpp(self) -> dict:
        return {"hashAlgorithm": self.hash_algorithm, "issuerNameHash": self.issuer_name_hash,
                "issuerKeyHash": self.issuer_key_hash, "serialNumber": self.serial_number,
                "responderURL": self.responder_url}

    @classmethod
    def from_ocpp(cls, d: dict) -> "OCSPRequestData":
        return cls(d["hashAlgorithm"], d["issuerNameHash"], d["issuerKeyHash"],
                   d["serialNumber"], d.get("responderURL", ""))


def ocsp_url(cert: Cert) -> str:
    """The OCSP responder URL of the certificate's AIA extension ("" if none)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return ""
    for d in aia:
        if d.access_method == AuthorityInformationAccessOID.OCSP:
            return d.access_location.value
    return ""


def _key_hash(issuer: Cert) -> bytes:
    return hashlib.sha256(_spki_bits(issuer)).digest()


def request_data(cert: Cert, issuer: Cert) -> OCSPRequestData:
    """OCSP request data of ``cert`` issued by ``issuer`` (SHA-256 CertID, RFC 6960 4.1.1)."""
    return OCSPRequestData(
        "SHA256", hashlib.sha256(issuer.subject.public_bytes()).hexdigest(),
        _key_hash(issuer).hex(), format(cert.serial_number, "x"), ocsp_url(cert))


def chain_request_data(chain: Sequence[Cert], root: Cert) -> list[OCSPRequestData]:
    """Request data for each certificate of a chain (leaf first; at most 4, the OCPP limit)."""
    full = [*chain, root]
    return [request_data(c, full[i + 1]) for i, c in enumerate(chain)][:4]


def request_from_data(data: OCSPRequestData) -> bytes:
    """A DER OCSPRequest from OCPP request data (what a CSMS sends to the responder)."""
    alg = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(),
           "SHA512": hashes.SHA512()}.get(data.hash_algorithm)
    if alg is None:
        raise ValueError(f"OCSP request data: unsupported hashAlgorithm {data.hash_algorithm!r}")
    return ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        bytes.fromhex(data.issuer_name_hash), bytes.fromhex(data.issuer_key_hash),
        int(data.serial_number, 16), alg).build().public_bytes(serialization.Encoding.DER)


def build_request(cert: Cert, issuer: Cert, *, nonce: Optional[bytes] = None) -> bytes:
    """A DER OCSPRequest for one certificate."""
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def _utc(now: Optional[_dt.datetime]) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=_dt.timezone.utc)


def check_response(der: bytes, cert: Cert, issuer: Cert, *, now: Optional[_dt.datetime] = None,
                   max_age: _dt.timedelta = MAX_AGE) -> None:
    """Accept only a valid, current GOOD response for ``cert``; else CertificateError."""
    name = cert.subject.rfc4514_string()
    try:
        _check_response(der, cert.serial_number, issuer, _utc(now), max_age, name)
    except CertificateError:
        raise
    except Exception as e:                      # never fail open
        raise CertificateError(f"{name}: OCSP response unusable: {type(e).__name__}: {e}",
                               CHAIN) from e


def check_response_for_data(der: bytes, data: OCSPRequestData, issuer: Cert, *,
                            now: Optional[_dt.datetime] = None,
                            max_age: _dt.timedelta = MAX_AGE) -> None:
    """:func:`check_response` for a certificate known only by its OCSP request data
    (``iso15118CertificateHashData``); ``issuer`` must match the data's hashes."""
    name = f"certificate {data.serial_number}"
    try:
        if request_data_matches(data, issuer) is False:
            raise CertificateError(f"{name}: issuer does not match the request data", CHAIN)
        _check_response(der, int(data.serial_number, 16), issuer, _utc(now), max_age, name)
    except CertificateError:
        raise
    except Exception as e:                      # never fail open
        raise CertificateError(f"{name}: OCSP response unusable: {type(e).__name__}: {e}",
                               CHAIN) from e


def request_data_matches(data: OCSPRequestData, issuer: Cert) -> bool:
    """Whether ``data`` names ``issuer`` (SHA-256 request data only)."""
    return (data.hash_algorithm == "SHA256"
            and hashlib.sha256(issuer.subject.public_bytes()).hexdigest() == data.issuer_name_hash.lower()
            and _key_hash(issuer).hex() == data.issuer_key_hash.lower())


def _check_response(der, serial, issuer, now, max_age, name) -> None:
    resp = ocsp.load_der_ocsp_response(bytes(der))
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise CertificateError(f"{name}: OCSP responder says {resp.response_status.name}", CHAIN)
    signer = _responder(resp, issuer, now)
    _verify_signature(signer.public_key(), resp.signature, resp.tbs_response_bytes,
                      resp.signature_hash_algorithm)
    single = None
    for s in resp.responses:
        if (s.serial_number == serial
                and s.issuer_key_hash == _hash(s.hash_algorithm, _spki_bits(issuer))
                and s.issuer_name_hash == _hash(s.hash_algorithm, issuer.subject.public_bytes())):
            single = s
            break
    if single is None:
        raise CertificateError(f"{name}: the OCSP response is about another certificate", CHAIN)
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        raise CertificateError(f"{name} is revoked (since "
                               f"{single.revocation_time_utc:%Y-%m-%d %H:%M}, "
                               f"{single.revocation_reason})", REVOKED)
    if single.certificate_status != ocsp.OCSPCertStatus.GOOD:
        raise CertificateError(f"{name}: OCSP status {single.certificate_status.name}", CHAIN)
    if single.this_update_utc > now + _dt.timedelta(minutes=5) or now - single.this_update_utc > max_age:
        raise CertificateError(f"{name}: OCSP response not current (thisUpdate "
                               f"{single.this_update_utc:%Y-%m-%d %H:%M})", CHAIN)
    if single.next_update_utc is not None and now > single.next_update_utc:
        raise CertificateError(f"{name}: OCSP response past its nextUpdate", CHAIN)


def _verify_signature(key, signature: bytes, data: bytes, hash_algorithm) -> None:
    """ECDSA (the -2 and -20 P-256/P-521 PKIs) or Ed448 (-20); anything else is refused."""
    if isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
        key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(key, ed448.Ed448PublicKey):
        key.verify(signature, data)
    else:
        raise CertificateError("OCSP response signed with an algorithm the V2G PKIs do not "
                               "use", CHAIN)


def _sign_hash(key):
    """Hash for signing with ``key``: SHA-256 on P-256, SHA-512 on P-521, none for Ed448."""
    if isinstance(key, ed448.Ed448PrivateKey):
        return None
    return hashes.SHA512() if key.curve.key_size > 384 else hashes.SHA256()


def _hash(alg, data: bytes) -> bytes:
    h = hashes.Hash(alg)
    h.update(data)
    return h.finalize()


def _spki_bits(issuer: Cert) -> bytes:
    # RFC 6960: the hash of the subjectPublicKey BIT STRING value (EC: the point; Ed448: raw)
    key = issuer.public_key()
    if isinstance(key, ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def _responder(resp, issuer: Cert, now) -> Cert:
    """The certificate that signed the response: the issuer, or a delegated responder."""
    if resp.responder_name == issuer.subject or resp.responder_key_hash == hashlib.sha1(
            _spki_bits(issuer)).digest():
        return issuer
    for c in resp.certificates:
        if resp.responder_name not in (None, c.subject) and resp.responder_name is not None:
            continue
        c.verify_directly_issued_by(issuer)
        eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            break
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            break
        return c
    raise CertificateError("OCSP response signed by neither the issuer nor a delegated "
                           "responder", CHAIN)


def check_chain(chain: Sequence[Cert], root: Cert, responses: Sequence[Optional[bytes]], *,
                now: Optional[_dt.datetime] = None, max_age: _dt.timedelta = MAX_AGE) -> None:
    """Check one OCSP response per certificate of ``chain`` (leaf first): a revoked
    certificate at any level is ``FAILED_CertificateRevoked``; a missing response is a
    ``FAILED_CertChainError``."""
    full = [*chain, root]
    if len(responses) != len(chain):
        raise CertificateError(f"{len(responses)} OCSP responses for {len(chain)} "
                               "certificates", CHAIN)
    errors = []
    for i, (cert, der) in enumerate(zip(chain, responses)):
        if not der:
            errors.append(CertificateError(f"{cert.subject.rfc4514_string()}: no OCSP "
                                           "response", CHAIN))
            continue
        try:
            check_response(der, cert, full[i + 1], now=now, max_age=max_age)
        except CertificateError as e:
            errors.append(e)
    # revocation wins over other problems: it is the more specific answer
    for e in errors:
        if e.response_code == REVOKED:
            raise e
    if errors:
        raise errors[0]


# --- the responder ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Revocation:
    serial: int
    time: _dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


@dataclass
class OCSPResponder:
    """Answers OCSP requests for certificates issued by ``issuers`` (cert, key) pairs;
    every serial not in ``revoked`` and issued by a known issuer is GOOD."""

    issuers: list = field(default_factory=list)            # [(x509.Certificate, key)]
    revoked: dict = field(default_factory=dict)            # serial -> Revocation
    validity: _dt.timedelta = _dt.timedelta(days=1)

    def revoke(self, cert: Cert, *, when: Optional[_dt.datetime] = None,
               reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise) -> None:
        t = _utc(when) - _dt.timedelta(minutes=1)
        self.revoked[cert.serial_number] = Revocation(cert.serial_number, t, reason)

    def response_for(self, cert: Cert, issuer: Cert, *, now: Optional[_dt.datetime] = None) -> bytes:
        """The DER response for one certificate (what a SECC would fetch and cache)."""
        return self._respond_one(cert.serial_number, issuer, hashes.SHA256(), None, _utc(now))

    def response_for_data(self, data: OCSPRequestData, *,
                          now: Optional[_dt.datetime] = None) -> Optional[bytes]:
        """The DER response for OCSP request data (None: not one of our issuers)."""
        for cert, _key in self.issuers:
            if request_data_matches(data, cert):
                return self._respond_one(int(data.serial_number, 16), cert, hashes.SHA256(),
                                         None, _utc(now))
        return None

    def respond(self, request_der: bytes, *, now: Optional[_dt.datetime] = None) -> bytes:
        """A DER OCSPResponse for a DER OCSPRequest (malformed / unknown issuer refused
        with the RFC 6960 error statuses)."""
        try:
            req = ocsp.load_der_ocsp_request(request_der)
            alg = req.hash_algorithm        # an unknown hash OID raises here, not at parse
        except Exception:
            return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        issuer = None
        for cert, _key in self.issuers:
            if (req.issuer_name_hash == _hash(alg, cert.subject.public_bytes())
                    and req.issuer_key_hash == _hash(alg, _spki_bits(cert))):
                issuer = cert
                break
        if issuer is None:
            return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        return self._respond_one(req.serial_number, issuer, alg, nonce, _utc(now))

    def _respond_one(self, serial, issuer, alg, nonce, now) -> bytes:
        key = next(k for c, k in self.issuers if c == issuer)
        rev = self.revoked.get(serial)
        b = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=_hash(alg, issuer.subject.public_bytes()),
            issuer_key_hash=_hash(alg, _spki_bits(issuer)), serial_number=serial,
            algorithm=alg,
            cert_status=ocsp.OCSPCertStatus.REVOKED if rev else ocsp.OCSPCertStatus.GOOD,
            this_update=now - _dt.timedelta(minutes=1), next_update=now + self.validity,
            revocation_time=rev.time if rev else None,
            revocation_reason=rev.reason if rev else None,
        ).responder_id(ocsp.OCSPResponderEncoding.NAME, issuer)
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        return b.sign(key, _sign_hash(key)).public_bytes(serialization.Encoding.DER)

    @classmethod
    def from_folder(cls, folder: Union[str, Path], *,
                    password: Optional[str] = None) -> "OCSPResponder":
        """Load what ``exi15118 pki create`` wrote into ``folder/ocsp/responder.json``
        (``password``: the one the keys were written with, if any)."""
        folder = Path(folder)
        conf = json.loads((folder / "ocsp" / "responder.json").read_text())
        issuers = []
        for name in conf["issuers"]:
            cert = x509.load_pem_x509_certificate((folder / "certs" / f"{name}.pem").read_bytes())
            key = serialization.load_pem_private_key(
                (folder / "private_keys" / f"{name}.key").read_bytes(),
                password.encode() if password else None)
            issuers.append((cert, key))
        revoked = {}
        for entry in conf.get("revoked", []):
            serial = int(entry["serial"], 16)
            revoked[serial] = Revocation(serial, _dt.datetime.fromisoformat(entry["time"]),
                                         x509.ReasonFlags(entry.get("reason", "unspecified")))
        return cls(issuers, revoked)


def _error(status) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


async def _handle(responder: OCSPResponder, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if method == "POST":
            length = int(headers.get("content-length", "-1"))
            if not 0 <= length <= _MAX_HTTP_BODY:
                raise ValueError("bad Content-Length")
            body = await asyncio.wait_for(reader.readexactly(length), 10)
        elif method == "GET":
            body = base64.b64decode(urllib.parse.unquote(target.rsplit("/", 1)[-1]))
        else:
            raise ValueError(method)
        data, status = responder.respond(body), "200 OK"
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
            ConnectionError):
        writer.close()
        return
    except Exception:
        data, status = b"", "400 Bad Request"
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/ocsp-response\r\n"
                 f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def serve(responder: OCSPResponder, host: str = "127.0.0.1",
                port: int = 0) -> AsyncIterator[str]:
    """Run the responder on HTTP; yields its base URL (``http://127.0.0.1:PORT/ocsp``)."""
    server = await asyncio.start_server(lambda r, w: _handle(responder, r, w), host, port)
    try:
        sock = server.sockets[0].getsockname()
        yield f"http://{sock[0]}:{sock[1]}/ocsp"
    finally:
        server.close()
        await server.wait_closed()


async def fetch(url: str, request_der: bytes, *, timeout: float = 5.0) -> bytes:
    """POST a DER OCSPRequest to an http:// responder; return the DER response."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"only http:// OCSP responders are supported, not {url!r}")

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
        try:
            writer.write(f"POST {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                         "Content-Type: application/ocsp-request\r\n"
                         f"Content-Length: {len(request_der)}\r\nConnection: close\r\n\r\n"
                         .encode() + request_der)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].split(b" ")
            if len(status) < 2 or status[1] != b"200":
                raise ValueError(f"OCSP responder answered {head[:40]!r}")
            length = next((int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n")
                           if ln.lower().startswith(b"content-length:")), None)
            if length is None or not 0 <= length <= _MAX_HTTP_BODY:
                raise ValueError("OCSP response without a usable Content-Length")
            return await reader.readexactly(length)
        finally:
            writer.close()

    return await asyncio.wait_for(go(), timeout)


def expiring(certs: Iterable[Cert], *, within: _dt.timedelta = _dt.timedelta(days=14),
             now: Optional[_dt.datetime] = None) -> list[Cert]:
    """The certificates that expire within ``within`` of ``now`` (for
    OK_CertificateExpiresSoon and for an EVCC deciding to update its contract)."""
    t = _utc(now)
    return [c for c in certs if c.not_valid_after_utc - t <= within]
