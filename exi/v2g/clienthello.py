"""What a TLS ClientHello offers, read from the first bytes of a connection (no I/O).

An SECC serving ISO 15118-2 and ISO 15118-20 on one TLS port needs two certificate
chains (P-256 for -2, P-521 or Ed448 for -20) and two TLS policies (TLS 1.2 with the
SECC alone authenticated; TLS 1.3 with the vehicle certificate, [V2G20-2400]).  One
OpenSSL context holds one EC certificate, and ``ssl``'s ``sni_callback`` runs after the
version has been chosen, so the context is picked *before* the handshake, from the
ClientHello the SECC peeks at (MSG_PEEK leaves it in the socket for OpenSSL):
:func:`parse_client_hello` tells whether the EV offers TLS 1.3.

    hello = parse_client_hello(peeked)     # None: more bytes needed
    if hello is not None and hello.offers_tls13: ...

RFC 8446 4.1.2 (ClientHello), 4.2.1 (supported_versions); RFC 5246 6.2.1 (records).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["ClientHello", "ClientHelloError", "parse_client_hello", "MAX_CLIENT_HELLO", "MAX_RECORDS",
           "MAX_PEEK"]

TLS12 = 0x0303
TLS13 = 0x0304
_HANDSHAKE = 22                 # record content type
_CLIENT_HELLO = 1               # handshake message type
_SUPPORTED_VERSIONS = 43        # extension type
# ClientHellos of V2G peers are a few hundred bytes; a peer announcing more than this
# is refused without waiting for it (bounded memory per connection).
MAX_CLIENT_HELLO = 16384
# Records a ClientHello may be split into (stdlib/OpenSSL clients send one).
MAX_RECORDS = 16
# The most bytes parse_client_hello needs to decide (a ClientHello, or an error).
MAX_PEEK = MAX_CLIENT_HELLO + 4 + 5 * MAX_RECORDS


class ClientHelloError(ValueError):
    """The bytes are not a TLS ClientHello we can read."""


@dataclass(frozen=True)
class ClientHello:
    legacy_version: int
    versions: tuple[int, ...]           # supported_versions, else (legacy_version,)
    cipher_suites: tuple[int, ...]
    extensions: dict[int, bytes] = field(default_factory=dict)

    @property
    def offers_tls13(self) -> bool:
        return TLS13 in self.versions


def _handshake_bytes(data: bytes) -> Optional[bytes]:
    """The ClientHello body carried by the leading records, once all of it is there (the
    rest of its last record is not waited for); None while incomplete."""
    out = bytearray()
    pos = 0
    records = 0
    need: Optional[int] = None
    while True:
        if records == MAX_RECORDS:
            raise ClientHelloError(f"ClientHello split over more than {MAX_RECORDS} records")
        if len(data) < pos + 5:
            return None
        ctype, length = data[pos], int.from_bytes(data[pos + 3:pos + 5], "big")
        if ctype != _HANDSHAKE:
            raise ClientHelloError(f"TLS record type {ctype}, not a handshake")
        if data[pos + 1] != 3 or length == 0 or length > 16384:     # RFC 8446 5.1
            raise ClientHelloError("not a TLS record header")
        chunk = data[pos + 5:pos + 5 + length]
        out += chunk
        records += 1
        if need is None and len(out) >= 4:
            if out[0] != _CLIENT_HELLO:
                raise ClientHelloError(f"handshake message type {out[0]}, not a ClientHello")
            need = 4 + int.from_bytes(out[1:4], "big")
            if need > MAX_CLIENT_HELLO + 4:
                raise ClientHelloError(f"ClientHello of {need - 4} bytes (at most {MAX_CLIENT_HELLO})")
        if need is not None and len(out) >= need:
            return bytes(out[4:need])
        if len(chunk) < length:
            return None                  # the rest of this record is on its way
        pos += 5 + length


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ClientHelloError("ClientHello truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def parse_client_hello(data: bytes) -> Optional[ClientHello]:
    """The ClientHello at the start of ``data`` (one or more TLS records); None while
    incomplete; :class:`ClientHelloError` when the bytes are something else."""
    body = _handshake_bytes(bytes(data))
    if body is None:
        return None
    r = _Reader(body)
    legacy = r.number(2)
    r.take(32)                                   # random
    r.vector(1)                                  # legacy_session_id
    suites = r.vector(2)
    if len(suites) % 2:
        raise ClientHelloError("odd cipher_suites length")
    r.vector(1)                                  # legacy_compression_methods
    extensions: dict[int, bytes] = {}
    if r.left:
        ext = _Reader(r.vector(2))
        while ext.left:
            kind = ext.number(2)
            extensions[kind] = ext.vector(2)
    versions: tuple[int, ...] = (legacy,)
    if _SUPPORTED_VERSIONS in extensions:
        listed = _Reader(extensions[_SUPPORTED_VERSIONS]).vector(1)
        versions = tuple(int.from_bytes(listed[i:i + 2], "big") for i in range(0, len(listed) - 1, 2))
    return ClientHello(legacy, versions,
                       tuple(int.from_bytes(suites[i:i + 2], "big") for i in range(0, len(suites), 2)),
                       extensions)
