"""OCSP stapling (TLS ``status_request``, RFC 6066) on stdlib ``ssl`` contexts, through
ctypes on the libssl that ``_ssl`` itself is linked to.

``ssl.SSLContext`` has no OCSP API.  OpenSSL has one (``SSL_CTX_set_tlsext_status_cb``,
``SSL_set_tlsext_status_ocsp_resp``, ``SSL_CTX_set_tlsext_status_type``), reached here by
taking the ``SSL_CTX*`` out of the Python object (the field after ``PyObject_HEAD``), which
is checked before use: the options OpenSSL reports for that pointer must be the options
Python reports for the context, or :class:`StaplingUnavailable` is raised (the feature is
then simply not there).  Technique after shared/research/tls-pki.md E8.

* :func:`staple` (SECC): every handshake whose client asked for status gets ``response``
  (a DER OCSPResponse, for the SECC leaf) stapled.  Only one response, the leaf's: stock
  OpenSSL has no ``status_request_v2`` (RFC 6961) to staple the Sub-CAs' status too
  ([V2G2-871] asks for it), see README.md.
* :func:`request_status` (EVCC): ask for the status and hand each stapled response (or
  None) to ``check(der) -> bool``; False aborts the handshake.

Use one of these per context, before the first handshake; the callbacks are kept alive on
the context object.
"""
from __future__ import annotations

import ctypes
import ssl
from typing import Callable, Optional

__all__ = ["StaplingUnavailable", "staple", "request_status", "available"]

_SET_TLSEXT_STATUS_REQ_CB = 63
_SET_TLSEXT_STATUS_REQ_TYPE = 65
_GET_TLSEXT_STATUS_REQ_OCSP_RESP = 70
_SET_TLSEXT_STATUS_REQ_OCSP_RESP = 71
_STATUSTYPE_OCSP = 1
_SSL_TLSEXT_ERR_OK = 0
_SSL_TLSEXT_ERR_NOACK = 3

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_lib = None


class StaplingUnavailable(RuntimeError):
    """This Python/OpenSSL build does not allow the ctypes hooks."""


def _libssl():
    global _lib
    if _lib is None:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_callback_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, _CALLBACK]
        lib.SSL_CTX_callback_ctrl.restype = ctypes.c_long
        lib.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_ctrl.restype = ctypes.c_long
        lib.CRYPTO_malloc.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int]
        lib.CRYPTO_malloc.restype = ctypes.c_void_p
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_get_peer_cert_chain.argtypes = [ctypes.c_void_p]
        lib.SSL_get_peer_cert_chain.restype = ctypes.c_void_p
        lib.OPENSSL_sk_num.argtypes = [ctypes.c_void_p]
        lib.OPENSSL_sk_num.restype = ctypes.c_int
        lib.OPENSSL_sk_value.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.OPENSSL_sk_value.restype = ctypes.c_void_p
        lib.i2d_X509.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.i2d_X509.restype = ctypes.c_int
        _lib = lib
    return _lib


def _ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The SSL_CTX* of a stdlib context, verified against the options Python reports."""
    try:
        lib = _libssl()
        ptr = ctypes.c_void_p.from_address(id(ctx) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    except (OSError, AttributeError, ValueError) as e:
        raise StaplingUnavailable(f"libssl hooks unavailable: {e}") from None
    if not ptr or lib.SSL_CTX_get_options(ptr) != ctx.options:
        raise StaplingUnavailable("the SSLContext layout is not the one expected "
                                  "(free-threaded or debug build?)")
    return ptr


def available() -> bool:
    try:
        _ctx_pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        return True
    except StaplingUnavailable:
        return False


def staple(ctx: ssl.SSLContext, response: Callable[[], Optional[bytes]]) -> None:
    """SECC: staple ``response()`` (DER OCSPResponse of the leaf, or None for nothing) to
    every handshake whose client sent status_request."""
    lib, ptr = _libssl(), _ctx_pointer(ctx)

    def on_status(ssl_ptr, _arg) -> int:
        try:
            der = response()
            if not der:
                return _SSL_TLSEXT_ERR_NOACK
            buf = lib.CRYPTO_malloc(len(der), b"stapling.py", 0)   # OpenSSL frees it
            if not buf:
                return _SSL_TLSEXT_ERR_NOACK
            ctypes.memmove(buf, der, len(der))
            lib.SSL_ctrl(ssl_ptr, _SET_TLSEXT_STATUS_REQ_OCSP_RESP, len(der), buf)
            return _SSL_TLSEXT_ERR_OK
        except Exception:
            return _SSL_TLSEXT_ERR_NOACK

    cb = _CALLBACK(on_status)
    ctx.__dict__.setdefault("_exi15118_callbacks", []).append(cb)  # keep it alive
    lib.SSL_CTX_callback_ctrl(ptr, _SET_TLSEXT_STATUS_REQ_CB, cb)


def _peer_chain(lib, ssl_ptr) -> list[bytes]:
    """DER of the certificates the server sent (leaf first), from SSL_get_peer_cert_chain."""
    stack = lib.SSL_get_peer_cert_chain(ssl_ptr)
    out = []
    for i in range(lib.OPENSSL_sk_num(stack) if stack else 0):
        x509 = lib.OPENSSL_sk_value(stack, i)
        n = lib.i2d_X509(x509, None)
        if n <= 0:
            continue
        buf = ctypes.create_string_buffer(n)
        cursor = ctypes.c_void_p(ctypes.addressof(buf))     # i2d advances the pointer
        lib.i2d_X509(x509, ctypes.byref(cursor))
        out.append(buf.raw[:n])
    return out


def request_status(ctx: ssl.SSLContext, check: Callable[..., bool], *,
                   with_chain: bool = False) -> None:
    """EVCC: send status_request; ``check(der or None)`` decides on the stapled response
    (False aborts the handshake).  ``with_chain``: call ``check(der, chain)`` with the DER
    certificates the server sent, leaf first (OpenSSL has verified them by then), so that
    the response can be checked against the SECC leaf and its issuer.  Never fails open:
    an exception in ``check`` aborts."""
    lib, ptr = _libssl(), _ctx_pointer(ctx)

    def on_status(ssl_ptr, _arg) -> int:
        try:
            p = ctypes.c_void_p()
            n = lib.SSL_ctrl(ssl_ptr, _GET_TLSEXT_STATUS_REQ_OCSP_RESP, 0, ctypes.byref(p))
            der = ctypes.string_at(p.value, n) if p.value and n > 0 else None
            if with_chain:
                return 1 if check(der, _peer_chain(lib, ssl_ptr)) else 0
            return 1 if check(der) else 0
        except Exception:
            return 0

    cb = _CALLBACK(on_status)
    ctx.__dict__.setdefault("_exi15118_callbacks", []).append(cb)
    lib.SSL_CTX_ctrl(ptr, _SET_TLSEXT_STATUS_REQ_TYPE, _STATUSTYPE_OCSP, None)
    lib.SSL_CTX_callback_ctrl(ptr, _SET_TLSEXT_STATUS_REQ_CB, cb)
