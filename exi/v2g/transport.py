"""asyncio drivers for V2GTP over TCP and TLS, bound to one network interface.

The protocol logic stays out of here.  A connection is driven by a *frame handler*, a
plain object with no I/O and no clock of its own (the sans-I/O boundary the session
state machines plug into)::

    class Handler:
        def connection_made(self, info: ConnectionInfo, now: float) -> Outputs: ...   # optional
        def frame_received(self, frame: Frame, now: float) -> Outputs: ...              # required
        def get_timer(self) -> float | None: ...          # optional: next deadline (loop time)
        def handle_timer(self, now: float) -> Outputs: ...   # optional: called at that deadline
        def connection_lost(self, reason: str) -> None: ...  # optional

``Outputs`` is an iterable (or None) of :class:`~exi.v2g.v2gtp.Frame` objects or
``(payload_type, payload)`` tuples to send, optionally ending in :data:`CLOSE` to close
the connection after sending (e.g. after SessionStopRes or a FAILED response code).
``frame_received`` may also be a coroutine function for quick prototypes.  Times are
``loop.time()`` seconds.

SECC::

    server = await start_secc_server(lambda info: Handler(), interface="eth1",
                                     ssl=tls.secc_context(...), tls_profile="iso2")
    # announce server.port via SDP (exi.v2g.sdp.serve_sdp), later: await server.close()

EVCC::

    conn = await connect_evcc(resp.host, resp.port, ssl=ctx, tls_profile="iso2")
    await conn.send(0x8001, exi_bytes); frame = await conn.receive()
    # or let a handler drive it: await conn.run(Handler())

A malformed or oversize V2GTP header closes only the connection it arrived on (see
``exi.v2g.v2gtp`` for the rules); a handler that raises closes only its connection.
"""
from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import random
import socket
import ssl as _ssl
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union

from exi.v2g import tls as _tls
from exi.v2g.v2gtp import (
    DEFAULT_MAX_PAYLOAD, TCP_PAYLOAD_TYPES, Action, Frame, V2GTPError, V2GTPFramer,
)

__all__ = [
    "CLOSE", "Close", "ConnectionInfo", "SECCServer", "EVCCConnection", "ConnectionClosed",
    "start_secc_server", "connect_evcc", "interface_index", "link_local_address",
    "bind_to_device", "SECC_PORT_RANGE",
]

log = logging.getLogger("exi.v2g.transport")

# The SECC's TCP port is a dynamic port (ISO 15118-2 7.10.1 / DIN SPEC 70121: the SDP
# response names a port from the IANA dynamic range; id unverified).
SECC_PORT_RANGE = (49152, 65535)
_READ_SIZE = 65536
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40


# ---------------------------------------------------------------------------------------
# interfaces

def interface_index(interface: str) -> int:
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise OSError(f"no network interface named {interface!r}") from None


def link_local_address(interface: str) -> ipaddress.IPv6Address:
    """The interface's usable fe80:: address, scoped (``fe80::1%eth0``).

    Addresses still in duplicate address detection (tentative) are not usable: a bind
    to them fails.  Linux only (reads /proc/net/if_inet6).
    """
    index = interface_index(interface)
    try:
        with open("/proc/net/if_inet6") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise OSError(f"cannot list IPv6 addresses ({e}); Linux /proc is needed") from None
    tentative = False
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or int(parts[1], 16) != index:
            continue
        addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
        flags = int(parts[4], 16)
        if not addr.is_link_local:
            continue
        if flags & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
            tentative = True
            continue
        return ipaddress.IPv6Address(f"{addr}%{interface}")
    hint = " (still tentative: duplicate address detection not finished)" if tentative else ""
    raise OSError(f"interface {interface!r} has no usable IPv6 link-local address{hint}")


def bind_to_device(sock: socket.socket, interface: str) -> bool:
    """SO_BINDTODEVICE when permitted (root/CAP_NET_RAW); scope ids do the rest."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\0")
        return True
    except (PermissionError, AttributeError):
        return False


def _sockaddr(host: Union[str, ipaddress.IPv6Address], port: int,
              interface: Optional[str]) -> tuple:
    addr = ipaddress.IPv6Address(str(host))
    if addr.is_link_local and interface is not None:
        # An explicit interface wins over a scope in the text: a scope id names a link
        # of the host that wrote it, which need not be ours.
        addr = ipaddress.IPv6Address(f"{ipaddress.IPv6Address(addr.packed)}%{interface}")
    elif addr.scope_id is None and addr.is_link_local:
        raise ValueError(f"link-local address {addr} needs an interface (fe80::...%eth0)")
    scope = addr.scope_id
    ifindex = 0
    if scope:
        ifindex = int(scope) if scope.isdigit() else interface_index(scope)
    bare = str(ipaddress.IPv6Address(addr.packed))
    return (bare, port, 0, ifindex)


# ---------------------------------------------------------------------------------------
# handler plumbing

class Close:
    """Output marker: close the connection once everything before it has been sent."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = Close()
Output = Union[Frame, tuple, Close]


class ConnectionClosed(ConnectionError):
    """The peer closed the connection or it was closed because of a protocol error."""


@dataclass(frozen=True)
class ConnectionInfo:
    """What a handler may want to know about its connection."""
    local: tuple
    peer: tuple
    interface: Optional[str]
    tls_version: Optional[str] = None
    cipher: Optional[str] = None
    peer_certificate: Any = None         # cryptography x509.Certificate or None
    profile: Optional[_tls.Profile] = None

    @property
    def secure(self) -> bool:
        return self.tls_version is not None


def _info(writer: asyncio.StreamWriter, interface: Optional[str],
          profile: Optional[_tls.Profile], peer_cert) -> ConnectionInfo:
    so = writer.get_extra_info("ssl_object")
    return ConnectionInfo(writer.get_extra_info("sockname"), writer.get_extra_info("peername"),
                          interface, so.version() if so else None,
                          (so.cipher() or (None,))[0] if so else None, peer_cert, profile)


async def _maybe_await(x):
    return await x if inspect.isawaitable(x) else x


class _Driver:
    """Runs one connection: bytes -> framer -> handler -> bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 framer: V2GTPFramer):
        self.reader = reader
        self.writer = writer
        self.framer = framer
        self.loop = asyncio.get_running_loop()

    async def emit(self, outputs: Optional[Iterable[Output]]) -> bool:
        """Send outputs; True when the handler asked to close."""
        if outputs is None:
            return False
        if isinstance(outputs, (Frame, Close)):
            outputs = (outputs,)
        closing = False
        for item in outputs:
            if isinstance(item, Close):
                closing = True
                break
            frame = item if isinstance(item, Frame) else Frame(*item)
            self.writer.write(frame.pack())
        await self.writer.drain()
        return closing

    async def run(self, handler, info: ConnectionInfo) -> str:
        loop = self.loop
        if hasattr(handler, "connection_made"):
            if await self.emit(await _maybe_await(handler.connection_made(info, loop.time()))):
                return "closed by handler"
        get_timer = getattr(handler, "get_timer", None)
        while True:
            deadline = get_timer() if get_timer else None
            try:
                if deadline is None:
                    data = await self.reader.read(_READ_SIZE)
                else:
                    data = await asyncio.wait_for(self.reader.read(_READ_SIZE),
                                                  max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                if await self.emit(await _maybe_await(handler.handle_timer(loop.time()))):
                    return "closed by handler (timer)"
                continue
            if not data:
                return "peer closed the connection"
            while True:
                try:
                    frames = self.framer.feed(data)
                except V2GTPError as e:
                    if e.action is Action.CLOSE_CONNECTION:
                        return str(e)
                    log.warning("%s: %s", info.peer, e)
                    frames = []
                data = b""
                for frame in frames:
                    out = await _maybe_await(handler.frame_received(frame, loop.time()))
                    if await self.emit(out):
                        return "closed by handler"
                if not self.framer.has_pending:
                    break


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (asyncio.TimeoutError, OSError, _ssl.SSLError):
        writer.transport.abort()


# ---------------------------------------------------------------------------------------
# SECC server

class SECCServer:
    """A listening SECC: ``address``/``port`` to announce, ``close()`` to stop.

    ``closed_reasons`` keeps the last reasons connections ended (for logs and tests).
    """

    def __init__(self, server: asyncio.base_events.Server, interface: str,
                 address: ipaddress.IPv6Address, port: int, secure: bool):
        self._server = server
        self.interface = interface
        self.address = address
        self.port = port
        self.secure = secure
        self.connections: set[asyncio.Task] = set()
        self.closed_reasons: list[str] = []

    async def close(self) -> None:
        self._server.close()
        for t in list(self.connections):
            t.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> "SECCServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _listen_socket(interface: str, port: Optional[int]) -> tuple[socket.socket, ipaddress.IPv6Address]:
    addr = link_local_address(interface)
    index = interface_index(interface)
    bare = str(ipaddress.IPv6Address(addr.packed))
    ports = [port] if port is not None else random.sample(range(SECC_PORT_RANGE[0],
                                                                 SECC_PORT_RANGE[1] + 1), 32)
    last: Optional[OSError] = None
    for p in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            bind_to_device(s, interface)
            s.bind((bare, p, 0, index))
            s.setblocking(False)
            return s, addr
        except OSError as e:
            s.close()
            last = e
    raise OSError(f"cannot bind a TCP port on {interface}: {last}")


async def start_secc_server(factory: Callable[[ConnectionInfo], Any], interface: str, *,
                            port: Optional[int] = None, ssl: Optional[_ssl.SSLContext] = None,
                            tls_profile: Optional[Union[_tls.Profile, str]] = None,
                            max_payload: int = DEFAULT_MAX_PAYLOAD,
                            handshake_timeout: float = 10.0,
                            backlog: int = 16) -> SECCServer:
    """Listen on the link-local address of ``interface``; one handler per connection.

    ``port``: fixed port, default a random free one in 49152-65535.  ``ssl``: a context
    from :func:`exi.v2g.tls.secc_context`; ``tls_profile`` then also applies the
    profile's post-handshake checks (-20: the vehicle certificate).
    """
    profile = _tls.Profile(tls_profile) if isinstance(tls_profile, str) else tls_profile
    sock, addr = _listen_socket(interface, port)
    holder: dict[str, SECCServer] = {}

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv = holder["server"]
        task = asyncio.current_task()
        srv.connections.add(task)
        reason = "?"
        handler = None
        try:
            peer_cert = None
            so = writer.get_extra_info("ssl_object")
            if so is not None and profile is not None:
                peer_cert = _tls.check_session(so, profile,
                                               require_peer_cert=profile is _tls.Profile.ISO20)
            info = _info(writer, interface, profile, peer_cert)
            handler = factory(info)
            framer = V2GTPFramer(max_payload=max_payload, payload_types=TCP_PAYLOAD_TYPES)
            reason = await _Driver(reader, writer, framer).run(handler, info)
        except _tls.TLSPolicyError as e:
            reason = f"TLS policy: {e}"
        except (ConnectionError, _ssl.SSLError, asyncio.IncompleteReadError) as e:
            reason = f"connection error: {e!r}"
        except asyncio.CancelledError:
            # SECCServer.close(): end here, without re-raising; Python 3.11's start_server
            # callback would log a cancelled connection task as an error with a traceback
            reason = "server closing"
        except Exception as e:            # a handler bug ends its own connection only
            log.exception("handler failed")
            reason = f"handler error: {e!r}"
        finally:
            srv.closed_reasons.append(reason)
            del srv.closed_reasons[:-100]
            log.info("connection %s closed: %s", writer.get_extra_info("peername"), reason)
            if handler is not None and hasattr(handler, "connection_lost"):
                try:
                    handler.connection_lost(reason)
                except Exception:
                    log.exception("connection_lost failed")
            await _close_writer(writer)
            srv.connections.discard(task)

    server = await asyncio.start_server(on_connection, sock=sock, ssl=ssl, backlog=backlog,
                                        ssl_handshake_timeout=handshake_timeout if ssl else None)
    secc = SECCServer(server, interface, addr, sock.getsockname()[1], ssl is not None)
    holder["server"] = secc
    return secc


# ---------------------------------------------------------------------------------------
# EVCC client

class EVCCConnection:
    """One EVCC connection to an SECC.  Use ``send``/``receive`` or ``run(handler)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 info: ConnectionInfo, max_payload: int):
        self.reader = reader
        self.writer = writer
        self.info = info
        self.framer = V2GTPFramer(max_payload=max_payload, payload_types=TCP_PAYLOAD_TYPES)
        self._frames: list[Frame] = []

    async def send(self, payload_type: Union[int, Frame], payload: bytes = b"") -> None:
        frame = payload_type if isinstance(payload_type, Frame) else Frame(payload_type, payload)
        self.writer.write(frame.pack())
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (tests: broken headers)."""
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: Optional[float] = None) -> Frame:
        """Next frame.  Raises ConnectionClosed on EOF, V2GTPError on a bad header,
        asyncio.TimeoutError after ``timeout`` seconds."""
        async def next_frame() -> Frame:
            while not self._frames:
                if self.framer.has_pending:
                    self._frames.extend(self.framer.feed(b""))
                    continue
                data = await self.reader.read(_READ_SIZE)
                if not data:
                    raise ConnectionClosed("SECC closed the connection")
                self._frames.extend(self.framer.feed(data))
            return self._frames.pop(0)
        return await asyncio.wait_for(next_frame(), timeout)

    async def run(self, handler) -> str:
        """Drive the connection with a frame handler until either side closes it."""
        if self._frames:
            raise RuntimeError("frames already received with receive(); run() needs a fresh connection")
        reason = await _Driver(self.reader, self.writer, self.framer).run(handler, self.info)
        if hasattr(handler, "connection_lost"):
            handler.connection_lost(reason)
        await self.close()
        return reason

    async def close(self) -> None:
        await _close_writer(self.writer)

    async def __aenter__(self) -> "EVCCConnection":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def connect_evcc(host: Union[str, ipaddress.IPv6Address], port: int, *,
                       interface: Optional[str] = None, ssl: Optional[_ssl.SSLContext] = None,
                       tls_profile: Optional[Union[_tls.Profile, str]] = None,
                       max_payload: int = DEFAULT_MAX_PAYLOAD,
                       timeout: float = 10.0) -> EVCCConnection:
    """Connect to ``[host]:port`` (``fe80::...%eth0``, or fe80:: plus ``interface``, which
    then replaces any scope in ``host``).

    With ``ssl`` (:func:`exi.v2g.tls.evcc_context`), the handshake's verification is
    OpenSSL's; ``tls_profile`` adds the profile checks of the SECC certificate and raises
    :class:`exi.v2g.tls.TLSPolicyError` (after closing) when they fail.
    """
    profile = _tls.Profile(tls_profile) if isinstance(tls_profile, str) else tls_profile
    sa = _sockaddr(host, port, interface)
    scope_if = interface
    if scope_if is None and sa[3]:
        scope_if = socket.if_indextoname(sa[3])
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if scope_if:
            bind_to_device(sock, scope_if)
        await asyncio.wait_for(loop.sock_connect(sock, sa), timeout)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(sock=sock, ssl=ssl, server_hostname="" if ssl else None,
                                    ssl_handshake_timeout=timeout if ssl else None),
            timeout)
    except BaseException:
        sock.close()
        raise
    peer_cert = None
    so = writer.get_extra_info("ssl_object")
    if so is not None and profile is not None:
        try:
            peer_cert = _tls.check_session(so, profile, require_peer_cert=True)
        except _tls.TLSPolicyError:
            await _close_writer(writer)
            raise
    return EVCCConnection(reader, writer, _info(writer, scope_if, profile, peer_cert), max_payload)
