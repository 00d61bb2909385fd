"""TLS ``trusted_ca_keys`` (RFC 6066 section 6) on stdlib ``ssl`` contexts, through ctypes
on ``_ssl``'s own libssl (the technique of :mod:`.stapling`; shared/research/tls-pki.md E4).

ISO 15118-2: the EVCC sends the V2G roots it holds in trusted_ca_keys ([V2G2-651]) and the
SECC serves a chain that ends at one of them ([V2G2-871]), or its default chain when none
matches ([V2G2-923]); ids quoted in shared/research/iso20-pnc.md section 3 (2022 DIS
paraphrase, unverified against ISO 15118-2:2014).  OpenSSL has no API for the extension,
so it is a custom extension (type 3):

* :func:`send` (EVCC): every ClientHello carries a TrustedAuthorities list with one
  ``cert_sha1_hash`` (SHA-1 of the root's DER) per root;
* :func:`select_chain` (SECC): each candidate context (one -2 chain each) parses the
  client's list; the default context's ``sni_callback`` -- which OpenSSL runs after all
  ClientHello extensions, with or without SNI -- switches the connection to the context
  whose root matches (by ``cert_sha1_hash``, ``key_sha1_hash`` or ``x509_name``) and the
  ServerHello carries the empty trusted_ca_keys extension RFC 6066 asks for then.

:func:`parse` and :func:`encode` are the wire format, usable on their own.
"""
from __future__ import annotations

import ctypes
import hashlib
import ssl
import struct
import threading
from typing import Callable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .stapling import StaplingUnavailable, _ctx_pointer, _libssl

__all__ = ["TRUSTED_CA_KEYS", "encode", "parse", "matches", "send", "select_chain",
           "StaplingUnavailable"]

TRUSTED_CA_KEYS = 3                           # extension type (RFC 6066)
PRE_AGREED, KEY_SHA1_HASH, X509_NAME, CERT_SHA1_HASH = 0, 1, 2, 3

_ADD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint,
                        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t),
                        ctypes.POINTER(ctypes.c_int), ctypes.c_void_p)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)
_PARSE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p,
                          ctypes.c_size_t, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p)


def _cert_hash(cert: x509.Certificate) -> bytes:
    return hashlib.sha1(cert.public_bytes(Encoding.DER)).digest()


def _key_hash(cert: x509.Certificate) -> bytes:
    # SHA-1 of the subjectPublicKey (the EC point), as OCSP's issuerKeyHash
    return hashlib.sha1(cert.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)).digest()


def encode(roots: Sequence[x509.Certificate]) -> bytes:
    """TrustedAuthorities: one cert_sha1_hash entry per root."""
    body = b"".join(bytes([CERT_SHA1_HASH]) + _cert_hash(r) for r in roots)
    return struct.pack("!H", len(body)) + body


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """TrustedAuthorities -> [(identifier type, value)]; ValueError if malformed."""
    if len(data) < 2 or struct.unpack("!H", data[:2])[0] != len(data) - 2:
        raise ValueError("trusted_ca_keys: bad list length")
    out, i = [], 2
    while i < len(data):
        kind = data[i]
        i += 1
        if kind == PRE_AGREED:
            out.append((kind, b""))
        elif kind in (KEY_SHA1_HASH, CERT_SHA1_HASH):
            if i + 20 > len(data):
                raise ValueError("trusted_ca_keys: truncated SHA-1 hash")
            out.append((kind, data[i:i + 20]))
            i += 20
        elif kind == X509_NAME:
            if i + 2 > len(data):
                raise ValueError("trusted_ca_keys: truncated name length")
            n = struct.unpack("!H", data[i:i + 2])[0]
            if n == 0 or i + 2 + n > len(data):
                raise ValueError("trusted_ca_keys: bad name length")
            out.append((kind, data[i + 2:i + 2 + n]))
            i += 2 + n
        else:
            raise ValueError(f"trusted_ca_keys: unknown identifier type {kind}")
    return out


def matches(authorities: Sequence[tuple[int, bytes]], root: x509.Certificate) -> bool:
    """Does the client's list name ``root``?"""
    for kind, value in authorities:
        if kind == CERT_SHA1_HASH and value == _cert_hash(root):
            return True
        if kind == KEY_SHA1_HASH and value == _key_hash(root):
            return True
        if kind == X509_NAME and value == root.subject.public_bytes():
            return True
    return False


def _keep(ctx: ssl.SSLContext, *objs) -> None:
    ctx.__dict__.setdefault("_exi15118_callbacks", []).extend(objs)


def send(ctx: ssl.SSLContext, roots: Sequence[x509.Certificate]) -> None:
    """EVCC: send trusted_ca_keys naming ``roots`` in every ClientHello.  The context's
    ``exi15118_trusted_ca_echoes`` counts the ServerHellos that acknowledged it."""
    lib, ptr = _libssl(), _ctx_pointer(ctx)
    wire = encode(roots)
    data = ctypes.create_string_buffer(wire, len(wire))     # no NUL terminator
    size = len(wire)

    def add(_ssl, _type, out, outlen, _al, _arg) -> int:
        out[0] = ctypes.cast(data, ctypes.c_void_p)
        outlen[0] = size
        return 1

    def free(_ssl, _type, _out, _arg) -> None:
        return None                          # the buffer belongs to the context

    def parse_echo(_ssl, _type, _in, inlen, _al, _arg) -> int:
        # the server's acknowledgement: RFC 6066 makes it empty
        ctx.exi15118_trusted_ca_echoes += 1
        return 1 if inlen == 0 else 0

    cbs = (_ADD(add), _FREE(free), _PARSE(parse_echo))
    ctx.exi15118_trusted_ca_echoes = 0       # ServerHellos that acknowledged the list
    _keep(ctx, data, *cbs)
    lib.SSL_CTX_add_client_custom_ext.argtypes = [ctypes.c_void_p, ctypes.c_uint, _ADD, _FREE,
                                                  ctypes.c_void_p, _PARSE, ctypes.c_void_p]
    if lib.SSL_CTX_add_client_custom_ext(ptr, TRUSTED_CA_KEYS, *cbs[:2], None, cbs[2], None) != 1:
        raise StaplingUnavailable("OpenSSL refused a trusted_ca_keys client extension")


def select_chain(default: ssl.SSLContext,
                 candidates: Sequence[tuple[ssl.SSLContext, x509.Certificate]],
                 on_select: Optional[Callable[[Optional[x509.Certificate]], None]] = None) -> None:
    """SECC: serve the candidate whose root the client named in trusted_ca_keys, else
    ``default``.  ``candidates``: (context, the root its chain ends at); ``default`` may be
    one of them.  ``on_select(root or None)`` reports the choice."""
    lib = _libssl()
    lib.SSL_CTX_add_server_custom_ext.argtypes = [ctypes.c_void_p, ctypes.c_uint, _ADD, _FREE,
                                                  ctypes.c_void_p, _PARSE, ctypes.c_void_p]
    # OpenSSL parses the ClientHello's extensions, runs the servername callback and writes
    # the ServerHello within one SSL_do_handshake call on one thread: the state of the
    # handshake in progress can live in a thread-local
    state = threading.local()

    def parse_hello(_ssl, _type, data, n, _al, _arg) -> int:
        try:
            state.authorities = parse(ctypes.string_at(data, n) if n else b"")
        except ValueError:
            state.authorities = []           # a malformed list: the default chain
        return 1

    def add_echo(_ssl, _type, out, outlen, _al, _arg) -> int:
        hit, state.chosen = getattr(state, "chosen", False), False
        if not hit:
            return 0                         # no match: no extension in the ServerHello
        out[0] = None
        outlen[0] = 0
        return 1

    def free(_ssl, _type, _out, _arg) -> None:
        return None

    cbs = (_ADD(add_echo), _FREE(free), _PARSE(parse_hello))
    contexts = [default] + [c for c, _ in candidates if c is not default]
    for ctx in contexts:
        _keep(ctx, *cbs)
        if lib.SSL_CTX_add_server_custom_ext(_ctx_pointer(ctx), TRUSTED_CA_KEYS, cbs[0], cbs[1],
                                             None, cbs[2], None) != 1:
            raise StaplingUnavailable("OpenSSL refused a trusted_ca_keys server extension")

    def on_sni(sslobj, _name, _ctx) -> None:
        authorities, state.authorities = getattr(state, "authorities", []), []
        state.chosen = False
        root = None
        for ctx, candidate_root in candidates:
            if authorities and matches(authorities, candidate_root):
                if ctx is not default:
                    sslobj.context = ctx
                root, state.chosen = candidate_root, True
                break
        if on_select is not None:
            on_select(root)
        return None

    default.sni_callback = on_sni

