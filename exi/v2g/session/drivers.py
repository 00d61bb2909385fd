"""asyncio glue: the session cores over :mod:`exi.v2g.transport` and :mod:`exi.v2g.sdp`.

    service = await serve_secc("eth1", SECCConfig(protocols=("iso2", "din")), tls=ctx)
    ...; await service.close()

    result = await run_evcc("eth1", EVCCConfig(protocols=("iso2",), mode="ac"), ssl=ctx)

Everything protocol-related happens in the cores; this module moves frames, passes
``loop.time()`` in, traces and logs.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import json
import logging
import ssl as _ssl
import time
from pathlib import Path
from typing import IO, Optional, Union

import exi
from exi.v2g import sdp, tls, transport

from . import protocols as protocol_modules
from .controllers import EVController
from .events import (Close, MessageReceived, PowerDeliveryChanged, ProtocolNegotiated, Send,
                     SessionEnded, SessionEstablished)
from .evcc import EVCCConfig, EVCCSession
from .secc import SECCConfig, SECCSession
from .timers import secc_performance_time

__all__ = ["Tracer", "CoreHandler", "SECCService", "serve_secc", "run_evcc",
           "secc_tls_context", "evcc_tls_context", "PerformanceStats"]

log = logging.getLogger("exi.v2g.session")


class Tracer:
    """JSON lines: time, direction, schema, message name, content (exi.to_dict)."""

    def __init__(self, target: Union[str, Path, IO[str], None]):
        self._own = isinstance(target, (str, Path))
        self._f = open(target, "a", buffering=1) if self._own else target

    def record(self, direction: str, schema: str, name: str, message, session: str = "") -> None:
        if self._f is None:
            return
        try:
            content = exi.to_dict(message)
        except Exception as e:           # noqa: BLE001 - a trace never breaks a session
            content = {"error": repr(e)}
        line = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
                "direction": direction, "schema": schema, "message": name, "content": content}
        if session:
            line["connection"] = session
        self._f.write(json.dumps(line, default=str) + "\n")

    def close(self) -> None:
        if self._own and self._f is not None:
            self._f.close()
        self._f = None


class PerformanceStats:
    """SECC side: how long each request took to answer (core time, seconds)."""

    def __init__(self):
        self.count = 0
        self.late = 0
        self.worst = 0.0
        self.samples: list[float] = []
        self.keep_samples = False

    def add(self, schema: str, name: str, seconds: float) -> None:
        self.count += 1
        self.worst = max(self.worst, seconds)
        if seconds > secc_performance_time(schema, name):
            self.late += 1
        if self.keep_samples:
            self.samples.append(seconds)


class CoreHandler:
    """A :mod:`exi.v2g.transport` frame handler driving an SECC or EVCC core."""

    def __init__(self, core: Union[SECCSession, EVCCSession], *, tracer: Optional[Tracer] = None,
                 label: str = "", setup_started: Optional[float] = None,
                 stats: Optional[PerformanceStats] = None):
        self.core = core
        self.secc = isinstance(core, SECCSession)
        self.tracer = tracer
        self.label = label
        self.setup_started = setup_started
        self.stats = stats
        self.log = logging.getLogger("exi.v2g.session." + ("secc" if self.secc else "evcc"))

    def connection_made(self, info: transport.ConnectionInfo, now: float):
        # What the connection is decides whether ISO 15118-20 may run on it.
        self.core.tls_version = info.tls_version
        if self.secc and info.peer_certificate is not None:
            from cryptography.hazmat.primitives.serialization import Encoding
            self.core.peer_cert_digest = hashlib.sha512(info.peer_certificate.public_bytes(Encoding.DER)).digest()
        if self.secc:
            self.label = self.label or f"[{info.peer[0]}]:{info.peer[1]}"
            self.log.info("%s connected%s", self.label, f" ({info.tls_version})" if info.secure else "")
            return self._emit(self.core.connection_made(now))
        return self._emit(self.core.start(now, self.setup_started))

    def frame_received(self, frame, now: float):
        t0 = time.perf_counter()
        out = self.core.receive(frame.payload, now, frame.payload_type)
        if self.stats is not None:
            for o in out:
                if isinstance(o, Send):
                    self.stats.add(o.schema, o.name[:-3] + "Req", time.perf_counter() - t0)
        return self._emit(out)

    def get_timer(self) -> Optional[float]:
        return self.core.next_deadline()

    def handle_timer(self, now: float):
        return self._emit(self.core.handle_timer(now))

    def connection_lost(self, reason: str) -> None:
        self._emit(self.core.connection_lost(reason), closing=True)

    def _emit(self, outputs: list, closing: bool = False) -> list:
        frames: list = []
        tx, rx = ("secc->evcc", "evcc->secc") if self.secc else ("evcc->secc", "secc->evcc")
        for o in outputs:
            if isinstance(o, Send):
                frames.append((o.payload_type, o.payload))
                if self.tracer:
                    self.tracer.record(tx, o.schema, o.name, o.message, self.label)
                body = o.message if o.schema == "sap" or o.schema.startswith("iso20") else _body(o.message)
                code = getattr(body, "ResponseCode", None)
                self.log.info("%s -> %s%s", self.label, o.name, f" {getattr(code, 'value', code)}" if code else "")
            elif isinstance(o, MessageReceived):
                if self.tracer:
                    self.tracer.record(rx, o.schema, o.name, o.message, self.label)
                self.log.debug("%s <- %s", self.label, o.name)
            elif isinstance(o, ProtocolNegotiated):
                self.log.info("%s protocol %s (SchemaID %s, %s)", self.label, o.schema, o.schema_id,
                              o.response_code)
            elif isinstance(o, SessionEstablished):
                self.log.info("%s session %s %s", self.label, o.session_id.hex().upper(), o.response_code)
            elif isinstance(o, PowerDeliveryChanged):
                self.log.info("%s power delivery: %s", self.label, o.progress)
            elif isinstance(o, SessionEnded):
                (self.log.info if o.ok else self.log.warning)(
                    "%s session ended (%s): %s", self.label, "ok" if o.ok else "failed", o.reason)
            elif isinstance(o, Close) and not closing:
                frames.append(transport.CLOSE)
                break
        return frames


def _body(msg):
    from ._msg import body_of
    return body_of(msg)[1]


# ---------------------------------------------------------------------------------------
# TLS from a PKI folder written by exi.v2g.pki / `exi15118 pki create`

def pki_profile(pki: Union[str, Path]) -> str:
    """"iso20" for a folder from ``pki create --profile iso20`` (it has a vehicle
    certificate), else "iso2"."""
    return "iso20" if (Path(pki) / "private_keys" / "vehicleLeaf.key").exists() else "iso2"


def secc_tls_context(pki: Union[str, Path], keylog=None) -> _ssl.SSLContext:
    """TLS server context of the PKI folder's profile; -20: TLS 1.3 and the vehicle
    certificate required ([V2G20-2400]), trusted up to the OEM or V2G root."""
    pki = Path(pki)
    profile = pki_profile(pki)
    trust = [p for p in (pki / "certs" / "oemRootCA.pem", pki / "certs" / "v2gRootCA.pem") if p.exists()]
    return tls.secc_context(profile, pki / "certs" / "seccChain.pem", pki / "private_keys" / "seccLeaf.key",
                            keylog=keylog, trust=trust if profile == "iso20" else None)


def evcc_tls_context(pki: Union[str, Path], keylog=None) -> _ssl.SSLContext:
    """TLS client context of the PKI folder's profile; -20 presents the vehicle
    certificate ([V2G20-2339])."""
    pki = Path(pki)
    if pki_profile(pki) == "iso20":
        return tls.evcc_context("iso20", pki / "certs" / "v2gRootCA.pem", keylog=keylog,
                                certfile=pki / "certs" / "vehicleChain.pem",
                                keyfile=pki / "private_keys" / "vehicleLeaf.key")
    return tls.evcc_context("iso2", pki / "certs" / "v2gRootCA.pem", keylog=keylog)


# ---------------------------------------------------------------------------------------
# SECC

class SECCService:
    """A running SECC: a TCP server, optionally a TLS server, and the SDP responder."""

    def __init__(self, servers: list, sdp_handle, config: SECCConfig, tracer: Optional[Tracer],
                 stats: PerformanceStats):
        self.servers = servers
        self.sdp = sdp_handle
        self.config = config
        self.tracer = tracer
        self.stats = stats
        self.sessions: list[SECCSession] = []

    @property
    def tcp_port(self) -> Optional[int]:
        return next((s.port for s in self.servers if not s.secure), None)

    @property
    def tls_port(self) -> Optional[int]:
        return next((s.port for s in self.servers if s.secure), None)

    async def close(self) -> None:
        if self.sdp is not None:
            self.sdp.close()
        for s in self.servers:
            await s.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def serve_secc(interface: str, config: Optional[SECCConfig] = None, *,
                     tls_context: Optional[_ssl.SSLContext] = None, tls_only: bool = False,
                     tracer: Optional[Tracer] = None, port: Optional[int] = None,
                     sdp_enabled: bool = True, keep_sessions: bool = False,
                     tls_profile: str = "iso2") -> SECCService:
    """Serve concurrent sessions on ``interface`` until ``close()``.

    A plain TCP server always runs unless ``tls_only`` (DIN SPEC 70121 has no TLS,
    [V2G-DC-618] (2nd-hand)); with ``tls_context`` a TLS server runs too and SDP answers
    each EV with the security it asked for when offered."""
    config = config or SECCConfig()
    protocol_modules.preload(config.protocols)     # grammars loaded before the first EV
    stats = PerformanceStats()
    service = SECCService([], None, config, tracer, stats)
    counter = [0]

    def factory(info: transport.ConnectionInfo):
        counter[0] += 1
        core = SECCSession(config, name=f"conn{counter[0]}")
        if keep_sessions:
            service.sessions.append(core)
        return CoreHandler(core, tracer=tracer, stats=stats)

    if not tls_only or tls_context is None:
        service.servers.append(await transport.start_secc_server(factory, interface, port=port))
    if tls_context is not None:
        service.servers.append(await transport.start_secc_server(
            factory, interface, ssl=tls_context, tls_profile=tls_profile))
    if sdp_enabled:
        service.sdp = await sdp.serve_sdp(interface, tls_port=service.tls_port, tcp_port=service.tcp_port)
    return service


# ---------------------------------------------------------------------------------------
# EVCC

async def run_evcc(interface: str, config: Optional[EVCCConfig] = None, *, ev: Optional[EVController] = None,
                   ssl: Optional[_ssl.SSLContext] = None, tracer: Optional[Tracer] = None,
                   host: Optional[str] = None, port: Optional[int] = None,
                   sdp_max_requests: int = sdp.SDP_MAX_REQUESTS, tls_profile: str = "iso2") -> SessionEnded:
    """One whole session: SDP, TCP/TLS, the session core.  Returns how it ended."""
    config = config or EVCCConfig()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = EVCCSession(config, ev, name="evcc")
    if host is None:
        want = sdp.Security.TLS if ssl is not None else sdp.Security.NONE
        try:
            resp = await sdp.discover(interface, sdp.SDPRequest(want, sdp.Transport.TCP),
                                      max_requests=sdp_max_requests)
        except sdp.SDPTimeout as e:
            return SessionEnded(False, f"SDP failed: {e}")
        log.info("SDP: SECC at [%s]:%s (%s)", resp.host, resp.port, resp.security.name)
        if resp.security is not want:
            return SessionEnded(False, f"SECC offers {resp.security.name} security, EV asked for {want.name}")
        host, port = resp.host, resp.port
    try:
        conn = await transport.connect_evcc(host, port, interface=interface, ssl=ssl,
                                            tls_profile=tls_profile if ssl is not None else None)
    except (OSError, _ssl.SSLError, asyncio.TimeoutError) as e:
        return SessionEnded(False, f"cannot connect to [{host}]:{port}: {e!r}")
    if conn.info.secure:
        log.info("TLS %s %s", conn.info.tls_version, conn.info.cipher)
    handler = CoreHandler(core, tracer=tracer, label="evcc", setup_started=t0)
    reason = await conn.run(handler)
    if core.result is None:
        return SessionEnded(False, f"connection ended before the session did: {reason}")
    return core.result
