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

The SECC side runs on an asyncio ``Protocol`` (no stream layer, nothing ever waits for a
peer to read): V2G is request/response, so a request that arrives before the peer read
our previous answer closes that connection; a TLS handshake is started per connection
so that its failure is logged with the reason; what peers do wrong goes through one
rate-limited :class:`~exi.v2g.faults.FaultLog`.  The EVCC side keeps asyncio streams.
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
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from exi.v2g import tls as _tls
from exi.v2g.clienthello import MAX_PEEK, ClientHelloError, parse_client_hello
from exi.v2g.faults import FaultLog, peer_label
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
                    log.warning("%s V2GTP: %s", peer_label(info.peer), e)
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

# Unsent answers a connection may queue before the transport reports it paused.  A peer
# that does not read its responses cannot hold the SECC: nothing here ever waits for a
# peer to read (no drain()), and a request arriving while our previous answer is still
# queued is refused (see _SECCConnection).
_WRITE_HIGH_WATER = 64 * 1024
# A connection we close may take this long to hand over what we still send; then it is cut.
_CLOSE_FLUSH_TIMEOUT = 2.0
# Frames the standard has us discard (an unknown payload type) that one connection may
# send in a row before we close it.  The standard gives no bound; without one, a peer
# streaming 8-byte discard-class frames makes the SECC parse and count each one (~7 µs of
# CPU: 100 ms per 128 KiB) without ever waiting for a response, and starves the other
# sessions.  A real EVCC sends one request and waits: it never comes near this.
MAX_DISCARDED_IN_A_ROW = 16
# listen() backlog: connect bursts (many EVs plugged in at once, or a flood) queue in the
# kernel instead of being refused; the kernel caps it at net.core.somaxconn.
DEFAULT_BACKLOG = 4096
# Connections served at once; more are closed as they arrive (one fault line each,
# rate-limited), so a flood of connections that never send costs bounded memory and
# file descriptors until the sequence timer frees them.  Each process needs a file
# descriptor per connection: raise `ulimit -n` above this.
DEFAULT_MAX_CONNECTIONS = 4096


class SECCServer:
    """A listening SECC: ``address``/``port`` to announce, ``close()`` to stop.

    ``closed_reasons`` keeps the last reasons connections ended (for logs and tests);
    ``faults.counts`` counts what peers did wrong, per kind; ``accepted`` counts
    connections.
    """

    def __init__(self, server: asyncio.base_events.Server, interface: str,
                 address: ipaddress.IPv6Address, port: int, secure: bool,
                 faults: FaultLog):
        self._server = server
        self.interface = interface
        self.address = address
        self.port = port
        self.secure = secure
        self.faults = faults
        self.connections: set["_SECCConnection"] = set()
        self.closed_reasons: list[str] = []
        self.accepted = 0

    async def close(self) -> None:
        self._server.close()
        for conn in list(self.connections):
            conn.abort("server closing")
        for _ in range(100):                 # let connection_lost callbacks run
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        await self._server.wait_closed()
        self.faults.flush()

    async def __aenter__(self) -> "SECCServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class _ServerOptions:
    __slots__ = ("factory", "interface", "ssl", "profile", "contexts", "max_payload",
                 "handshake_timeout", "max_connections")

    def __init__(self, factory, interface, ssl, profile, max_payload, handshake_timeout,
                 max_connections, contexts=None):
        self.factory = factory
        self.interface = interface
        self.ssl = ssl                      # the context (the -2 one when there are several)
        self.profile = profile
        self.contexts = contexts            # {Profile: SSLContext} when chosen per ClientHello
        self.max_payload = max_payload
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections


def _tls_failure(e: BaseException) -> str:
    """A handshake failure as one readable phrase (OpenSSL's reason when there is one)."""
    verify = getattr(e, "verify_message", None)
    if verify:                                 # we refused the peer's certificate
        return f"peer certificate refused: {verify}"
    reason = getattr(e, "reason", None) if isinstance(e, _ssl.SSLError) else None
    if reason:
        for prefix in ("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_"):
            if reason.startswith(prefix):      # the peer refused: it says why in an alert
                return f"peer sent alert '{reason[len(prefix):].replace('_', ' ').lower()}'"
        if reason == "NO_SHARED_CIPHER":
            return ("no shared cipher (our certificate cannot serve the profile's cipher "
                    "suites: check its curve and keyUsage)")
        return reason.replace("_", " ").lower()
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        # Python peers (and others) drop the connection without an alert when they
        # refuse our chain.
        return ("peer closed the connection during the handshake, without an alert (a "
                "peer that refuses our certificate chain does this)")
    return str(e) or type(e).__name__


# Every SECC connection of a process reads into this one buffer (a BufferedProtocol:
# recv_into, no allocation per read); what arrived is copied out before the next read.
# asyncio's Protocol path would allocate a 256 KiB bytes object per read, which costs
# ~20 us of CPU per request (malloc/munmap of a buffer beyond the mmap threshold).
_READ_BUFFER = memoryview(bytearray(_READ_SIZE))


class _SECCConnection(asyncio.BufferedProtocol):
    """One accepted connection: bytes -> framer -> handler -> bytes, no stream layer.

    V2G is request/response: the EVCC sends its next request only after our response.
    A request that arrives while our answer to the previous one is still unsent (the peer
    does not read), or behind an answered request in the same read (pipelined), is a
    protocol violation: the connection is closed, which no other connection notices.
    """

    def __init__(self, server: SECCServer, opts: _ServerOptions):
        self.server = server
        self.opts = opts
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Any = None
        self.profile = opts.profile            # the TLS profile this connection runs
        self.handler: Any = None
        self.framer: Optional[V2GTPFramer] = None
        self.reason: Optional[str] = None      # set when we decided to close
        self.received = 0                      # bytes from the peer
        self._early = b""
        self._handshaking = False
        self._finished = False
        self._answered = False                 # a response went out in this read
        self._discarded = 0                    # frames discarded since the last request
        self._busy: Optional[asyncio.Future] = None   # a coroutine handler call
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = 0.0
        self._get_timer = None

    # -- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        srv = self.server
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        srv.accepted += 1
        if len(srv.connections) >= self.opts.max_connections:
            self.reason = f"refused: {len(srv.connections)} connections already (max_connections)"
            self._fault("too many connections", self.reason)
            srv.closed_reasons.append(self.reason)
            del srv.closed_reasons[:-100]
            transport.abort()
            return
        srv.connections.add(self)
        log.debug("%s connected", peer_label(self.peer))
        if self.opts.ssl is not None:
            transport.pause_reading()
            self._handshaking = True
            self._busy = asyncio.ensure_future(self._handshake(transport))
        else:
            self._start(transport, None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_READ_BUFFER[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.reason is not None:
            return
        self.received += len(data)
        if self.framer is None:
            # TLS hands over the first records with the end of the handshake, before
            # _handshake() resumes: kept for _start().
            self._early += data
            return
        self._answered = False
        self._feed(data)

    def eof_received(self) -> bool:
        return False                          # close our side too

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._handshaking:
            return                            # _handshake() reports it
        if self not in self.server.connections:
            return                            # refused in connection_made
        reason = self.reason
        if reason is None:
            if exc is not None:
                reason = f"connection error: {exc!r}"
                self._fault("connection error", reason)
            elif self.framer is not None and self.framer.buffered:
                reason = (f"peer closed the connection inside a V2GTP frame "
                          f"({self.framer.buffered} bytes of it received)")
                self._fault("incomplete frame", reason)
            elif self.received == 0 and self.opts.ssl is not None:
                reason = ("peer closed the connection right after the TLS handshake, without "
                          "a request (a peer that refuses our certificate after the handshake "
                          "does this)")
                self._fault("silent connection", reason)
            elif self.received == 0:
                reason = "peer closed the connection without sending anything"
                self._fault("silent connection", reason)
            else:
                reason = "peer closed the connection"
        self._finish(reason)

    def pause_writing(self) -> None:
        log.debug("%s does not read its responses", peer_label(self.peer))

    def resume_writing(self) -> None:
        pass

    # -- set-up --------------------------------------------------------------------------
    async def _handshake(self, raw) -> None:
        opts = self.opts
        try:
            ctx, timeout = opts.ssl, opts.handshake_timeout
            if opts.contexts is not None:     # the handshake timeout covers the peek too
                started = self.loop.time()
                self.profile = await self._choose_profile(raw, timeout)
                ctx = opts.contexts[self.profile]
                timeout = max(0.1, timeout - (self.loop.time() - started))
            tls_transport = await self.loop.start_tls(
                raw, self, ctx, server_side=True, ssl_handshake_timeout=timeout)
            if tls_transport is None:
                raise ConnectionResetError("peer closed the connection during the handshake")
        except asyncio.CancelledError:
            self._handshaking = False
            self._finish("server closing")
            raise
        except Exception as e:                # noqa: BLE001 - every failure is the peer's
            self._handshaking = False
            reason = f"TLS handshake failed: {_tls_failure(e)}"
            self._fault("TLS handshake failed", _tls_failure(e))
            self.reason = reason
            raw.abort()
            self._finish(reason)
            return
        self._handshaking = False
        self.transport = tls_transport
        if self.reason is not None:           # closed while we waited
            tls_transport.abort()
            self._finish(self.reason)
            return
        peer_cert = None
        if self.profile is not None:
            try:
                peer_cert = _tls.check_session(
                    tls_transport.get_extra_info("ssl_object"), self.profile,
                    require_peer_cert=self.profile is _tls.Profile.ISO20)
            except _tls.TLSPolicyError as e:
                detail = e.args[0] if e.args else str(e)
                self._close(f"TLS policy: {detail}", fault="TLS policy", detail=detail)
                return
        self._start(tls_transport, peer_cert)

    async def _choose_profile(self, raw, timeout: float) -> _tls.Profile:
        """-20 for a ClientHello offering TLS 1.3, else -2 (see exi.v2g.clienthello):
        peeked from a duplicate of the socket, so OpenSSL still reads all of it."""
        tsock = raw.get_extra_info("socket")
        if tsock is None or tsock.fileno() < 0:
            raise ConnectionResetError("peer closed the connection during the handshake")
        sock = tsock.dup()
        fd = sock.fileno()
        deadline = self.loop.time() + timeout
        pause = 0.005
        try:
            while True:
                readable = self.loop.create_future()
                self.loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
                try:
                    await asyncio.wait_for(readable, max(0.0, deadline - self.loop.time()))
                except asyncio.TimeoutError:
                    raise TimeoutError(f"no complete ClientHello within {timeout:g} s") from None
                finally:
                    self.loop.remove_reader(fd)
                data = sock.recv(MAX_PEEK, socket.MSG_PEEK)
                if not data:
                    raise ConnectionResetError("peer closed the connection during the handshake")
                try:
                    hello = parse_client_hello(data)
                except ClientHelloError:
                    return _tls.Profile.ISO2          # OpenSSL says what is wrong with it
                if hello is not None:
                    iso20 = hello.offers_tls13 and _tls.Profile.ISO20 in self.opts.contexts
                    return _tls.Profile.ISO20 if iso20 else _tls.Profile.ISO2
                # The rest of it is on its way; the peeked part keeps the socket readable,
                # so wait (longer each time: a peer trickling bytes costs little).
                if self.loop.time() + pause > deadline:
                    raise TimeoutError(f"no complete ClientHello within {timeout:g} s")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)
        finally:
            sock.close()

    def _start(self, transport, peer_cert) -> None:
        opts = self.opts
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        so = transport.get_extra_info("ssl_object")
        info = ConnectionInfo(transport.get_extra_info("sockname"), self.peer, opts.interface,
                              so.version() if so else None,
                              (so.cipher() or (None,))[0] if so else None, peer_cert,
                              self.profile)
        try:
            self.handler = opts.factory(info)
        except Exception as e:                # noqa: BLE001
            self._handler_failed(e)
            return
        self._get_timer = getattr(self.handler, "get_timer", None)
        self.framer = V2GTPFramer(max_payload=opts.max_payload, payload_types=TCP_PAYLOAD_TYPES)
        made = getattr(self.handler, "connection_made", None)
        if made is not None and not self._deliver(lambda: made(info, self.loop.time()), ()):
            return
        if self._early:
            data, self._early = self._early, b""
            self._feed(data)
        else:
            self._arm()

    # -- frames in, answers out ----------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        framer = self.framer
        while True:
            try:
                frames = framer.feed(data)
            except V2GTPError as e:
                detail = str(e).replace("V2GTP: ", "", 1)
                if e.action is Action.CLOSE_CONNECTION:
                    self._close(str(e), fault="V2GTP", detail=detail)
                    return
                self._discarded += 1
                if self._discarded > MAX_DISCARDED_IN_A_ROW:
                    self._close(f"{self._discarded} frames discarded in a row (last: {detail})",
                                fault="discarded frames")
                    return
                self._fault("V2GTP", detail)
                frames = []
            data = b""
            if frames:
                self._discarded = 0
                if not self._frames(frames):
                    return
            if not framer.has_pending:
                break
        self._arm()

    def _frames(self, frames: list) -> bool:
        """Hand frames to the handler; False when the connection is closing or waits."""
        for i, frame in enumerate(frames):
            if self._answered or self.transport.get_write_buffer_size():
                self._close("a request arrived before the peer read our response "
                            "(V2G is request/response)", fault="pipelined request")
                return False
            if not self._deliver(lambda: self.handler.frame_received(frame, self.loop.time()),
                                 frames[i + 1:]):
                return False
        return True

    def _deliver(self, call, rest) -> bool:
        """Run one handler call and send its outputs; False when closing or awaiting."""
        try:
            out = call()
        except Exception as e:                # noqa: BLE001 - a handler bug ends its own connection
            self._handler_failed(e)
            return False
        if type(out) is not list and inspect.isawaitable(out):
            self.transport.pause_reading()
            self._busy = asyncio.ensure_future(self._await(out, list(rest)))
            return False
        return self._send(out)

    async def _await(self, pending, rest: list) -> None:
        try:
            out = await pending
        except Exception as e:                # noqa: BLE001
            self._handler_failed(e)
            return
        self._busy = None
        if not self._send(out) or (rest and not self._frames(rest)):
            return
        self.transport.resume_reading()
        self._arm()

    def _send(self, outputs) -> bool:
        if outputs is None:
            return True
        if isinstance(outputs, (Frame, Close)):
            outputs = (outputs,)
        write = self.transport.write
        for item in outputs:
            if isinstance(item, Close):
                self._close("closed by handler")
                return False
            write((item if isinstance(item, Frame) else Frame(*item)).pack())
            self._answered = True
        return True

    # -- timers --------------------------------------------------------------------------
    def _arm(self) -> None:
        # The handler's deadline mostly moves later (a sequence timer restarted by each
        # response): keep the armed timer then, and look again when it fires.
        if self._get_timer is None or self.reason is not None:
            return
        when = self._get_timer()
        if when is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        if self._timer is not None:
            if self._timer_when <= when:
                return
            self._timer.cancel()
        self._timer_when = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.reason is not None or self._busy is not None:
            return
        when = self._get_timer()
        if when is None:
            return
        now = self.loop.time()
        if when > now:
            self._arm()
            return
        if self._deliver(lambda: self.handler.handle_timer(now), ()):
            self._arm()

    # -- closing -------------------------------------------------------------------------
    def _fault(self, kind: str, detail: str) -> None:
        self.server.faults.report(kind, self.peer, detail)

    def _handler_failed(self, e: Exception) -> None:
        log.debug("handler of %s failed", peer_label(self.peer), exc_info=True)
        self._close(f"handler error: {e!r}", fault="handler error")

    def _close(self, reason: str, *, fault: Optional[str] = None,
               detail: Optional[str] = None) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        if fault is not None:
            self._fault(fault, detail or reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self.transport
        t.close()                              # sends what is queued, then closes
        if t.get_write_buffer_size():
            self.loop.call_later(_CLOSE_FLUSH_TIMEOUT, t.abort)

    def abort(self, reason: str) -> None:
        if self._busy is not None:
            self._busy.cancel()
        if self.reason is None:
            self.reason = reason
        if self.transport is not None:
            self.transport.abort()

    def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        srv = self.server
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        srv.connections.discard(self)
        srv.closed_reasons.append(reason)
        del srv.closed_reasons[:-100]
        log.debug("%s closed: %s", peer_label(self.peer), reason)
        lost = getattr(self.handler, "connection_lost", None)
        if lost is not None:
            try:
                lost(reason)
            except Exception as e:            # noqa: BLE001
                self._fault("handler error", f"connection_lost failed: {e!r}")


def _listen_socket(interface: str, port: Optional[int],
                   reuse_port: bool = False) -> tuple[socket.socket, ipaddress.IPv6Address]:
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
            if reuse_port:               # several processes serve one port
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
                            port: Optional[int] = None,
                            ssl: Union[_ssl.SSLContext, Mapping[Union[_tls.Profile, str], _ssl.SSLContext],
                                       None] = None,
                            tls_profile: Optional[Union[_tls.Profile, str]] = None,
                            max_payload: int = DEFAULT_MAX_PAYLOAD,
                            handshake_timeout: float = 10.0,
                            backlog: int = DEFAULT_BACKLOG,
                            faults: Optional[FaultLog] = None,
                            reuse_port: bool = False,
                            max_connections: int = DEFAULT_MAX_CONNECTIONS) -> SECCServer:
    """Listen on the link-local address of ``interface``; one handler per connection.

    ``port``: fixed port, default a random free one in 49152-65535.  ``ssl``: a context
    from :func:`exi.v2g.tls.secc_context`; ``tls_profile`` then also applies the
    profile's post-handshake checks (-20: the vehicle certificate).  A failed handshake
    is logged with its reason (one WARNING line per fault, rate-limited: ``faults``).
    ``reuse_port``: SO_REUSEPORT, so that worker processes listening on the same port
    share its connections (the kernel spreads them).  ``max_connections``: more are
    closed on arrival (see DEFAULT_MAX_CONNECTIONS).

    ``ssl`` may also map profiles to contexts ({"iso2": ctx2, "iso20": ctx20}): one port
    then serves both, each connection getting the -20 context when its ClientHello offers
    TLS 1.3 and the -2 one otherwise (``tls_profile`` is ignored).
    """
    profile = _tls.Profile(tls_profile) if isinstance(tls_profile, str) else tls_profile
    contexts = None
    if isinstance(ssl, Mapping):
        contexts = {_tls.Profile(p): c for p, c in ssl.items()}
        if not contexts:
            raise ValueError("ssl: no TLS context given")
        if len(contexts) == 1:
            (profile, ssl), contexts = next(iter(contexts.items())), None
        else:
            profile, ssl = _tls.Profile.ISO2, contexts[_tls.Profile.ISO2]
    sock, addr = _listen_socket(interface, port, reuse_port)
    opts = _ServerOptions(factory, interface, ssl, profile, max_payload, handshake_timeout,
                          max_connections, contexts)
    holder: list[SECCServer] = []
    loop = asyncio.get_running_loop()
    # TLS is started per connection (loop.start_tls) so that a failed handshake reaches
    # us with its reason; asyncio's own TLS server drops it silently.
    server = await loop.create_server(lambda: _SECCConnection(holder[0], opts), sock=sock,
                                      backlog=backlog)
    secc = SECCServer(server, interface, addr, sock.getsockname()[1], ssl is not None,
                      faults or FaultLog(log))
    holder.append(secc)
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
        try:
            reason = await _Driver(self.reader, self.writer, self.framer).run(handler, self.info)
        except (ConnectionError, _ssl.SSLError) as e:
            reason = f"connection error: {e!r}"
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
