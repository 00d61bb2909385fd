"""SECC Discovery Protocol (SDP): messages, sans-I/O client and server, asyncio drivers.

The EVCC multicasts an SDP request (V2GTP payload type 0x9000) to ``ff02::1`` UDP port
15118 on the link it shares with the charger; the SECC answers (0x9001) with the IPv6
address and TCP port of its V2G server and the security it will use.

Standards: DIN SPEC 70121, ISO 15118-2:2014 and ISO 15118-20 (SECC Discovery Protocol
clauses; -20 adds the wireless and EMSP variants).  Requirement ids marked "(2nd-hand)"
were checked against implementations that quote the standard, not against its text;
ids marked "(unverified)" are from memory.

Payload layouts
---------------
* request  (0x9000, 2 bytes): Security u8, Transport u8
* response (0x9001, 20 bytes): SECC IPv6 address (16), SECC port u16, Security u8,
  Transport u8
* wireless request (0x9002, 61 bytes) and response (0x9003, 58 bytes) and EMSP request/
  response (0x9004/0x9005): layouts as dissected by dsV2Gshark (Wireshark plugin by
  dSPACE, ``v2gsdp.lua``); we could not check them against ISO 15118-20's text:

  - 0x9002: Security u8, Transport u8, P2PS/PPD flags u16, CouplingType u8,
    EVID (20 bytes ASCII, NUL padded), EVSEID (36 bytes ASCII, NUL padded)
  - 0x9003: address (16), port u16, Security u8, Transport u8, DiagStatus u8,
    CouplingType u8, EVSEID (36 bytes ASCII, NUL padded)
  - 0x9004: EMSP ids as text (may be empty); 0x9005: address (16), port u16, EMSP ids text.
    How several EMSP ids are separated is not visible there; we keep the text as is.
"""
from __future__ import annotations

import asyncio
import enum
import ipaddress
import socket
import struct
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional, Union

from exi.v2g import v2gtp

if TYPE_CHECKING:
    from exi.v2g.faults import FaultLog

__all__ = [
    "SDP_PORT", "SDP_MULTICAST", "SDP_RESPONSE_TIMEOUT", "SDP_MAX_REQUESTS",
    "Security", "Transport", "SDPError", "SDPTimeout",
    "SDPRequest", "SDPResponse", "WirelessSDPRequest", "WirelessSDPResponse",
    "EMSPSDPRequest", "EMSPSDPResponse", "encode", "decode",
    "ClientState", "SDPClient", "SDPServer", "WirelessInfo",
    "discover", "serve_sdp", "SDPServerHandle",
]

# [V2G-DC-159] (DIN) / [V2G2-125] (-2) (2nd-hand): the SDP server listens on UDP 15118.
SDP_PORT = 15118
# All-nodes link-local multicast group the request goes to.
SDP_MULTICAST = "ff02::1"
# [V2G2-159] (2nd-hand): the EVCC waits at least 250 ms for the response before it
# repeats the request.  DIN SPEC 70121 and -20 use the same value (ids unverified).
SDP_RESPONSE_TIMEOUT = 0.25
# [V2G2-161] (2nd-hand, quoted as "V2G-161" by RISE-V2G): at most 50 consecutive
# requests; then SDP has failed.
SDP_MAX_REQUESTS = 50

_REQ = struct.Struct(">BB")
_RES = struct.Struct(">16sHBB")
_WREQ = struct.Struct(">BBHB20s36s")
_WRES = struct.Struct(">16sHBBBB36s")
_EMSP_RES_HEAD = struct.Struct(">16sH")


class Security(enum.IntEnum):
    TLS = 0x00
    NONE = 0x10        # "no transport layer security"


class Transport(enum.IntEnum):
    TCP = 0x00
    UDP = 0x10         # allowed in the field, but no V2G message is ever sent over UDP


class SDPError(ValueError):
    """A malformed SDP payload.  The receiver discards the datagram."""


class SDPTimeout(TimeoutError):
    """No valid SDP response after the allowed number of requests."""

    def __init__(self, requests: int):
        self.requests = requests
        super().__init__(f"no SECC Discovery response after {requests} requests")


def _enum(cls, value: int, what: str):
    try:
        return cls(value)
    except ValueError:
        raise SDPError(f"{what}: invalid value 0x{value:02X}") from None


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.rstrip(b"\x00").decode("ascii")
    except UnicodeDecodeError:
        raise SDPError(f"{what}: not ASCII") from None


def _fixed(text: str, size: int, what: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"{what} longer than {size} bytes")
    return raw.ljust(size, b"\x00")


def _addr(raw: bytes) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(raw)


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")


@dataclass(frozen=True)
class SDPRequest:
    security: Security = Security.TLS
    transport: Transport = Transport.TCP
    payload_type = v2gtp.SDP_REQUEST

    def pack(self) -> bytes:
        return _REQ.pack(self.security, self.transport)

    @classmethod
    def unpack(cls, payload: bytes) -> "SDPRequest":
        if len(payload) != _REQ.size:
            raise SDPError(f"SDP request payload must be {_REQ.size} bytes, got {len(payload)}")
        sec, tp = _REQ.unpack(payload)
        return cls(_enum(Security, sec, "Security"), _enum(Transport, tp, "Transport"))


@dataclass(frozen=True)
class SDPResponse:
    """``address`` may carry a scope (``fe80::1%eth0``); the scope is not sent."""
    address: ipaddress.IPv6Address
    port: int
    security: Security = Security.TLS
    transport: Transport = Transport.TCP
    payload_type = v2gtp.SDP_RESPONSE

    def pack(self) -> bytes:
        _check_port(self.port)
        return _RES.pack(ipaddress.IPv6Address(self.address).packed, self.port,
                         self.security, self.transport)

    @classmethod
    def unpack(cls, payload: bytes) -> "SDPResponse":
        if len(payload) != _RES.size:
            raise SDPError(f"SDP response payload must be {_RES.size} bytes, got {len(payload)}")
        a, port, sec, tp = _RES.unpack(payload)
        return cls(_addr(a), port, _enum(Security, sec, "Security"),
                   _enum(Transport, tp, "Transport"))

    def with_scope(self, interface: str) -> "SDPResponse":
        return replace(self, address=_scoped(self.address, interface))

    @property
    def host(self) -> str:
        """Address text for connecting, with ``%scope`` when it has one."""
        return str(self.address)


def _scoped(addr: ipaddress.IPv6Address, interface: str) -> ipaddress.IPv6Address:
    # A link-local address means nothing without the link: attach the interface.
    if addr.is_link_local and addr.scope_id is None:
        return ipaddress.IPv6Address(f"{addr}%{interface}")
    return addr


# P2PS/PPD flag bits of the wireless request (names as dsV2Gshark gives them).
P2PS_PPD_ON_INFRASTRUCTURE = 0x0100
P2PS_PPD_ON_EV = 0x0200
P2PS_WPT_LF_ON_INFRASTRUCTURE = 0x0400
P2PS_WPT_LF_ON_EV = 0x0800
P2PS_WPT_CAM_ON_EV = 0x1000
P2PS_ACD_U_INFRARED = 0x2000
P2PS_ACD_DIRECTED_WLAN = 0x4000


@dataclass(frozen=True)
class WirelessSDPRequest:
    security: Security = Security.TLS
    transport: Transport = Transport.TCP
    p2ps_ppd: int = 0              # P2PS_* flags
    coupling_type: int = 0xFF      # 0xFF = n.a.
    evid: str = ""                 # <= 20 ASCII characters
    evseid: str = ""               # <= 36 ASCII characters
    payload_type = v2gtp.SDP_REQUEST_WIRELESS

    def pack(self) -> bytes:
        return _WREQ.pack(self.security, self.transport, self.p2ps_ppd, self.coupling_type,
                          _fixed(self.evid, 20, "EVID"), _fixed(self.evseid, 36, "EVSEID"))

    @classmethod
    def unpack(cls, payload: bytes) -> "WirelessSDPRequest":
        if len(payload) != _WREQ.size:
            raise SDPError(f"wireless SDP request must be {_WREQ.size} bytes, got {len(payload)}")
        sec, tp, flags, ct, evid, evseid = _WREQ.unpack(payload)
        return cls(_enum(Security, sec, "Security"), _enum(Transport, tp, "Transport"),
                   flags, ct, _text(evid, "EVID"), _text(evseid, "EVSEID"))


@dataclass(frozen=True)
class WirelessSDPResponse:
    address: ipaddress.IPv6Address
    port: int
    security: Security = Security.TLS
    transport: Transport = Transport.TCP
    diag_status: int = 0x00        # 0 ongoing, 1 finished with EVSEID, 2 without, 0x10 no SECC
    coupling_type: int = 0xFF
    evseid: str = ""
    payload_type = v2gtp.SDP_RESPONSE_WIRELESS

    def pack(self) -> bytes:
        _check_port(self.port)
        return _WRES.pack(ipaddress.IPv6Address(self.address).packed, self.port, self.security,
                          self.transport, self.diag_status, self.coupling_type,
                          _fixed(self.evseid, 36, "EVSEID"))

    @classmethod
    def unpack(cls, payload: bytes) -> "WirelessSDPResponse":
        if len(payload) != _WRES.size:
            raise SDPError(f"wireless SDP response must be {_WRES.size} bytes, got {len(payload)}")
        a, port, sec, tp, diag, ct, evseid = _WRES.unpack(payload)
        return cls(_addr(a), port, _enum(Security, sec, "Security"),
                   _enum(Transport, tp, "Transport"), diag, ct, _text(evseid, "EVSEID"))

    def with_scope(self, interface: str) -> "WirelessSDPResponse":
        return replace(self, address=_scoped(self.address, interface))

    @property
    def host(self) -> str:
        return str(self.address)


@dataclass(frozen=True)
class EMSPSDPRequest:
    emsp_ids: str = ""
    payload_type = v2gtp.SDP_REQUEST_EMSP

    def pack(self) -> bytes:
        return self.emsp_ids.encode("ascii")

    @classmethod
    def unpack(cls, payload: bytes) -> "EMSPSDPRequest":
        return cls(_text(payload, "EMSP ids"))


@dataclass(frozen=True)
class EMSPSDPResponse:
    address: ipaddress.IPv6Address
    port: int
    emsp_ids: str = ""
    payload_type = v2gtp.SDP_RESPONSE_EMSP

    def pack(self) -> bytes:
        _check_port(self.port)
        return (_EMSP_RES_HEAD.pack(ipaddress.IPv6Address(self.address).packed, self.port)
                + self.emsp_ids.encode("ascii"))

    @classmethod
    def unpack(cls, payload: bytes) -> "EMSPSDPResponse":
        if len(payload) < _EMSP_RES_HEAD.size:
            raise SDPError(f"EMSP SDP response needs >= {_EMSP_RES_HEAD.size} bytes")
        a, port = _EMSP_RES_HEAD.unpack_from(payload)
        return cls(_addr(a), port, _text(payload[_EMSP_RES_HEAD.size:], "EMSP ids"))

    def with_scope(self, interface: str) -> "EMSPSDPResponse":
        return replace(self, address=_scoped(self.address, interface))

    @property
    def host(self) -> str:
        return str(self.address)


SDPMessage = Union[SDPRequest, SDPResponse, WirelessSDPRequest, WirelessSDPResponse,
                   EMSPSDPRequest, EMSPSDPResponse]
AnyResponse = Union[SDPResponse, WirelessSDPResponse, EMSPSDPResponse]
_BY_TYPE = {c.payload_type: c for c in (SDPRequest, SDPResponse, WirelessSDPRequest,
                                         WirelessSDPResponse, EMSPSDPRequest, EMSPSDPResponse)}
_RESPONSE_FOR = {v2gtp.SDP_REQUEST: v2gtp.SDP_RESPONSE,
                 v2gtp.SDP_REQUEST_WIRELESS: v2gtp.SDP_RESPONSE_WIRELESS,
                 v2gtp.SDP_REQUEST_EMSP: v2gtp.SDP_RESPONSE_EMSP}


def encode(msg: SDPMessage) -> bytes:
    """The UDP datagram (V2GTP header + payload) carrying ``msg``."""
    return v2gtp.pack(msg.payload_type, msg.pack())


def decode(datagram: bytes) -> SDPMessage:
    """Parse one SDP datagram.  Raises V2GTPError / SDPError (both ValueError): discard."""
    frame = v2gtp.parse_datagram(datagram, payload_types=v2gtp.SDP_PAYLOAD_TYPES)
    return _BY_TYPE[frame.payload_type].unpack(frame.payload)


# ---------------------------------------------------------------------------------------
# Sans-I/O client (EVCC side)

class ClientState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting for a response"
    DONE = "response received"
    FAILED = "gave up"


@dataclass
class SDPClient:
    """EVCC side of SDP, without I/O and without a clock.

    ::

        c = SDPClient(SDPRequest(Security.TLS))
        send(c.start(now))
        # on a datagram:            resp = c.receive_datagram(data)   -> response or None
        # at c.get_timer():         data = c.handle_timer(now)        -> resend or None
        # c.state is DONE (c.response) or FAILED (c.requests_sent requests went unanswered)

    The request is repeated every ``timeout`` seconds ([V2G2-159]) up to
    ``max_requests`` requests in total ([V2G2-161]); then the client is FAILED.  Datagrams
    that are not a valid response of the matching kind are ignored (discarded) and do
    not stop the timer.
    """
    request: Union[SDPRequest, WirelessSDPRequest, EMSPSDPRequest] = field(default_factory=SDPRequest)
    timeout: float = SDP_RESPONSE_TIMEOUT
    max_requests: int = SDP_MAX_REQUESTS
    state: ClientState = ClientState.IDLE
    requests_sent: int = 0
    response: Optional[AnyResponse] = None
    ignored: int = 0                       # datagrams discarded while waiting
    _deadline: Optional[float] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.timeout <= 0:
            raise ValueError("max_requests must be >= 1 and timeout > 0")
        self._datagram = encode(self.request)
        self._expect = _RESPONSE_FOR[self.request.payload_type]

    def start(self, now: float) -> bytes:
        if self.state is not ClientState.IDLE:
            raise RuntimeError(f"SDP client already {self.state.value}")
        self.state = ClientState.WAITING
        return self._send(now)

    def _send(self, now: float) -> bytes:
        self.requests_sent += 1
        self._deadline = now + self.timeout
        return self._datagram

    def get_timer(self) -> Optional[float]:
        """Absolute time of the next retransmission/give-up, or None when not waiting."""
        return self._deadline if self.state is ClientState.WAITING else None

    def handle_timer(self, now: float) -> Optional[bytes]:
        """Call at (or after) ``get_timer()``: the datagram to send again, or None."""
        if self.state is not ClientState.WAITING or now < self._deadline:
            return None
        if self.requests_sent >= self.max_requests:
            self.state = ClientState.FAILED
            self._deadline = None
            return None
        return self._send(now)

    def receive_datagram(self, data: bytes) -> Optional[AnyResponse]:
        if self.state is not ClientState.WAITING:
            return None
        try:
            msg = decode(data)
        except ValueError:             # V2GTPError or SDPError: discard
            self.ignored += 1
            return None
        if msg.payload_type != self._expect:
            self.ignored += 1           # e.g. our own multicast request looped back
            return None
        self.state = ClientState.DONE
        self._deadline = None
        self.response = msg
        return msg


# ---------------------------------------------------------------------------------------
# Sans-I/O server (SECC side)

@dataclass(frozen=True)
class WirelessInfo:
    diag_status: int = 0x01
    coupling_type: int = 0x10          # WPT
    evseid: str = ""


@dataclass
class SDPServer:
    """SECC side of SDP: one datagram in, zero or one datagram out.

    ``tls_port``/``tcp_port`` are the ports of the SECC's TLS and plain TCP servers
    (None: not offered).  The answer follows the EVCC's requested security when the SECC
    offers it and otherwise names what the SECC does offer (ISO 15118-2 7.10.1 lets the
    SECC answer with its own security; the EVCC decides whether to accept).  -20 SECCs
    offer TLS only ([V2G20-1235] (2nd-hand): TLS is always applied with -20); DIN SPEC
    70121 SECCs offer TCP without TLS only ([V2G-DC-618] (2nd-hand)).
    The transport in the answer is always TCP: no V2G message goes over UDP.
    """
    address: ipaddress.IPv6Address
    tls_port: Optional[int] = None
    tcp_port: Optional[int] = None
    wireless: Optional[WirelessInfo] = None     # answer 0x9002 requests when set
    emsp_ids: Optional[str] = None              # answer 0x9004 requests when set
    answered: int = 0
    discarded: int = 0
    last_discard: str = ""                      # why the last datagram was discarded

    def __post_init__(self) -> None:
        if self.tls_port is None and self.tcp_port is None:
            raise ValueError("SDP server needs a TLS or a TCP port to announce")

    def choose(self, wanted: Security) -> tuple[Security, int]:
        if wanted is Security.TLS and self.tls_port is not None:
            return Security.TLS, self.tls_port
        if wanted is Security.NONE and self.tcp_port is not None:
            return Security.NONE, self.tcp_port
        if self.tls_port is not None:
            return Security.TLS, self.tls_port
        return Security.NONE, self.tcp_port  # type: ignore[return-value]

    def handle_datagram(self, data: bytes) -> Optional[bytes]:
        try:
            msg = decode(data)
        except ValueError as e:
            self.discarded += 1
            self.last_discard = str(e)
            return None
        address = ipaddress.IPv6Address(ipaddress.IPv6Address(self.address).packed)  # no scope
        resp: Optional[SDPMessage] = None
        if isinstance(msg, SDPRequest):
            sec, port = self.choose(msg.security)
            resp = SDPResponse(address, port, sec, Transport.TCP)
        elif isinstance(msg, WirelessSDPRequest) and self.wireless is not None:
            sec, port = self.choose(msg.security)
            w = self.wireless
            resp = WirelessSDPResponse(address, port, sec, Transport.TCP, w.diag_status,
                                       w.coupling_type, w.evseid)
        elif isinstance(msg, EMSPSDPRequest) and self.emsp_ids is not None:
            _, port = self.choose(Security.TLS)
            resp = EMSPSDPResponse(address, port, self.emsp_ids)
        if resp is None:                # a response, or a variant we do not serve
            self.discarded += 1
            self.last_discard = f"{type(msg).__name__} not served here"
            return None
        self.answered += 1
        return encode(resp)


# ---------------------------------------------------------------------------------------
# asyncio drivers

class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.handler = None

    def datagram_received(self, data: bytes, addr) -> None:
        if self.handler is not None:
            self.handler(data, addr)
        else:
            self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:   # ICMP errors: keep going
        pass


def _udp_socket(interface: str, bind_port: int) -> socket.socket:
    from exi.v2g.transport import bind_to_device, interface_index
    ifindex = interface_index(interface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        bind_to_device(s, interface)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        s.bind(("::", bind_port, 0, 0))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


async def discover(interface: str, request: Optional[Union[SDPRequest, WirelessSDPRequest,
                                                          EMSPSDPRequest]] = None, *,
                   timeout: float = SDP_RESPONSE_TIMEOUT, max_requests: int = SDP_MAX_REQUESTS,
                   port: int = SDP_PORT, client: Optional[SDPClient] = None) -> AnyResponse:
    """EVCC: find the SECC on ``interface``.  Returns its response, the address scoped
    to ``interface`` (``fe80::...%eth0``).  Raises :class:`SDPTimeout` when all
    ``max_requests`` requests stayed unanswered.  Pass ``client`` (a fresh
    :class:`SDPClient`, which then overrides request/timeout/max_requests) to read its
    counters afterwards."""
    from exi.v2g.transport import interface_index
    loop = asyncio.get_running_loop()
    core = client or SDPClient(request or SDPRequest(), timeout=timeout,
                               max_requests=max_requests)
    sock = _udp_socket(interface, 0)
    transport, proto = await loop.create_datagram_endpoint(_Datagrams, sock=sock)
    dest = (SDP_MULTICAST, port, 0, interface_index(interface))
    try:
        transport.sendto(core.start(loop.time()), dest)
        while core.state is ClientState.WAITING:
            wait = max(0.0, core.get_timer() - loop.time())
            try:
                data, _addr = await asyncio.wait_for(proto.queue.get(), wait)
            except asyncio.TimeoutError:
                again = core.handle_timer(loop.time())
                if again is not None:
                    transport.sendto(again, dest)
                continue
            resp = core.receive_datagram(data)
            if resp is not None:
                return resp.with_scope(interface)
        raise SDPTimeout(core.requests_sent)
    finally:
        transport.close()


class SDPServerHandle:
    """A running SDP responder; ``close()`` stops it.  ``core`` holds the counters."""

    def __init__(self, transport: asyncio.DatagramTransport, core: SDPServer, interface: str):
        self.transport = transport
        self.core = core
        self.interface = interface

    def close(self) -> None:
        self.transport.close()

    async def __aenter__(self) -> "SDPServerHandle":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()


async def serve_sdp(interface: str, *, tls_port: Optional[int] = None,
                    tcp_port: Optional[int] = None, port: int = SDP_PORT,
                    address: Optional[ipaddress.IPv6Address] = None,
                    wireless: Optional[WirelessInfo] = None,
                    emsp_ids: Optional[str] = None,
                    faults: Optional["FaultLog"] = None) -> SDPServerHandle:
    """SECC: answer SDP requests arriving on ``interface``.

    Joins ``ff02::1`` on the interface, listens on UDP ``port`` (15118) and answers each
    request by unicast with the interface's link-local address (or ``address``) and the
    given TLS/TCP port.  Discarded datagrams are logged through ``faults`` (one line
    each, rate-limited), so a flood costs a bounded number of log lines; the kernel's
    receive buffer bounds what waits to be read.
    """
    from exi.v2g.transport import interface_index, link_local_address
    loop = asyncio.get_running_loop()
    if address is None:
        address = link_local_address(interface)
    core = SDPServer(address, tls_port=tls_port, tcp_port=tcp_port, wireless=wireless,
                     emsp_ids=emsp_ids)
    sock = _udp_socket(interface, port)
    try:
        mreq = socket.inet_pton(socket.AF_INET6, SDP_MULTICAST) + struct.pack(
            "@I", interface_index(interface))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError:
        # The kernel already has every interface in ff02::1; joining is a formality
        # that some kernels refuse with EADDRINUSE.
        pass
    transport, proto = await loop.create_datagram_endpoint(_Datagrams, sock=sock)

    def on_datagram(data: bytes, addr) -> None:
        out = core.handle_datagram(data)
        if out is not None:
            transport.sendto(out, addr)      # addr carries the EVCC's scope id
        elif faults is not None:
            faults.report("SDP", addr, f"datagram discarded: {core.last_discard}")
    proto.handler = on_datagram
    return SDPServerHandle(transport, core, interface)

