"""asyncio glue: the session cores over :mod:`exi.v2g.transport` and :mod:`exi.v2g.sdp`.

    service = await serve_secc("eth1", SECCConfig(protocols=("iso2", "din")), tls=ctx)
    ...; await service.close()

    result = await run_evcc("eth1", EVCCConfig(protocols=("iso2",), mode="ac"), ssl=ctx)

Everything protocol-related happens in the cores; this module moves frames, passes
``loop.time()`` in, traces and logs.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import gc
import hashlib
import json
import logging
import ssl as _ssl
import time
from pathlib import Path
from typing import IO, Optional, Union

import exi
from exi.v2g import sdp, tls, transport
from exi.v2g.faults import FaultLog, peer_label

from . import protocols as protocol_modules
from .controllers import EVController
from .events import (BackendRequest, Close, MessageReceived, PowerDeliveryChanged,
                     ProtocolNegotiated, Send, SessionEnded, SessionEstablished, TimerViolation)
from .evcc import EVCCConfig, EVCCSession
from .secc import SECCConfig, SECCSession
from .timers import secc_performance_time

__all__ = ["Tracer", "CoreHandler", "SECCService", "serve_secc", "run_evcc",
           "secc_tls_context", "secc_tls_contexts", "evcc_tls_context", "PerformanceStats",
           "pki_profile", "pki_profiles"]

log = logging.getLogger("exi.v2g.session")


class Tracer:
    """JSON lines: time (ISO 8601), elapsed (s since the first line), direction
    ("EVCC->SECC"/"SECC->EVCC"), schema, message name, content (exi.to_dict) — the keys
    and names of `exi15118 decode` on a capture."""

    def __init__(self, target: Union[str, Path, IO[str], None]):
        self._t0: Optional[_dt.datetime] = None
        self._own = isinstance(target, (str, Path))
        self._f = open(target, "a", buffering=1) if self._own else target

    def record(self, direction: str, schema: str, name: str, message, session: str = "") -> None:
        if self._f is None:
            return
        try:
            content = exi.to_dict(message)
        except Exception as e:           # noqa: BLE001 - a trace never breaks a session
            content = {"error": repr(e)}
        now = _dt.datetime.now(_dt.timezone.utc)
        if self._t0 is None:
            self._t0 = now
        line = {"time": now.isoformat(timespec="microseconds"),
                "elapsed": round((now - self._t0).total_seconds(), 6),
                "direction": direction.upper(), "schema": schema, "message": name, "content": content}
        if session:
            line["connection"] = session
        self._f.write(json.dumps(line, default=str) + "\n")

    def event(self, kind: str, session: str = "", **fields) -> None:
        """A JSON line that is not a message (e.g. a tolerated timer violation)."""
        if self._f is None:
            return
        line = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
                "event": kind, **fields}
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
        self._limits: dict = {}             # (schema, request) -> its performance time

    def add(self, schema: str, name: str, seconds: float) -> None:
        self.count += 1
        if seconds > self.worst:
            self.worst = seconds
        limit = self._limits.get((schema, name))
        if limit is None:
            limit = self._limits[schema, name] = secc_performance_time(schema, name)
        if seconds > limit:
            self.late += 1
        if self.keep_samples:
            self.samples.append(seconds)


# How long a response held for the backend may wait (CertificateInstallation/Update):
# within the EVCC's 5 s message timeout for them, so a slow backend still gets its FAILED
# answer to the EV in time.
BACKEND_HOLD_TIMEOUT = 4.0


class CoreHandler:
    """A :mod:`exi.v2g.transport` frame handler driving an SECC or EVCC core.

    ``backend``: what the core's :class:`~.events.BackendRequest` calls run on (default:
    the SECC config's ``pnc.backend``)."""

    def __init__(self, core: Union[SECCSession, EVCCSession], *, tracer: Optional[Tracer] = None,
                 label: str = "", setup_started: Optional[float] = None,
                 stats: Optional[PerformanceStats] = None, faults: Optional[FaultLog] = None,
                 backend=None):
        self.core = core
        self.backend = backend if backend is not None else \
            getattr(getattr(getattr(core, "config", None), "pnc", None), "backend", None)
        self._backend_tasks: set = set()
        self.faults = faults
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
            self.label = self.label or peer_label(info.peer)
            self.log.debug("%s connected%s", self.label, f" ({info.tls_version})" if info.secure else "")
            return self._emit(self.core.connection_made(now))
        return self._emit(self.core.start(now, self.setup_started))

    def frame_received(self, frame, now: float):
        t0 = time.perf_counter()
        out = self.core.receive(frame.payload, now, frame.payload_type)
        if self.stats is not None:
            for o in out:
                if type(o) is Send:         # its Res name gives the same timer row as the Req
                    self.stats.add(o.schema, o.name, time.perf_counter() - t0)
        held = self._start_backend(out)
        frames = self._emit(out)
        return self._after_backend(frames, held) if held else frames

    def _start_backend(self, outputs: list) -> list:
        """Start the backend calls the core asked for; return those its response waits on."""
        held = []
        for o in outputs:
            if not isinstance(o, BackendRequest):
                continue
            if self.backend is None:
                o.call.fail("no backend configured")
            elif o.hold:
                held.append(o)
            else:                            # the core answers Ongoing meanwhile
                task = asyncio.ensure_future(o.call.run(self.backend))
                self._backend_tasks.add(task)
                task.add_done_callback(self._backend_tasks.discard)
            if o.hold and self.backend is None:
                held.append(o)
        return held

    async def _after_backend(self, frames: list, held: list) -> list:
        loop = asyncio.get_running_loop()
        for request in held:
            if not request.call.finished:
                try:
                    await asyncio.wait_for(request.call.run(self.backend), BACKEND_HOLD_TIMEOUT)
                except asyncio.TimeoutError:
                    request.call.fail(f"the backend did not answer within {BACKEND_HOLD_TIMEOUT:g} s")
            frames = frames + self._emit(self.core.backend_done(request.call, loop.time()))
        return frames

    def get_timer(self) -> Optional[float]:
        return self.core.next_deadline()

    def handle_timer(self, now: float):
        return self._emit(self.core.handle_timer(now))

    def connection_lost(self, reason: str) -> None:
        self._emit(self.core.connection_lost(reason), closing=True)

    def _emit(self, outputs: list, closing: bool = False) -> list:
        frames: list = []
        tracer = self.tracer
        debug = self.log.isEnabledFor(logging.DEBUG)
        if tracer is None and not debug:    # the charge loop's path: nothing to note
            for o in outputs:
                t = type(o)
                if t is Send:
                    frames.append((o.payload_type, o.payload))
                elif t is not MessageReceived:
                    break
            else:
                return frames
            frames = []
        tx, rx = ("secc->evcc", "evcc->secc") if self.secc else ("evcc->secc", "secc->evcc")
        for o in outputs:
            if isinstance(o, Send):
                frames.append((o.payload_type, o.payload))
                if tracer:
                    tracer.record(tx, o.schema, o.name, o.message, self.label)
                if debug:
                    body = o.message if o.schema == "sap" or o.schema.startswith("iso20") else _body(o.message)
                    code = getattr(body, "ResponseCode", None)
                    self.log.debug("%s -> %s%s", self.label, o.name,
                                   f" {getattr(code, 'value', code)}" if code else "")
            elif isinstance(o, MessageReceived):
                if tracer:
                    tracer.record(rx, o.schema, o.name, o.message, self.label)
                if debug:
                    self.log.debug("%s <- %s", self.label, o.name)
            elif isinstance(o, ProtocolNegotiated):
                self.log.info("%s protocol %s (SchemaID %s, %s)", self.label, o.schema, o.schema_id,
                              o.response_code)
            elif isinstance(o, SessionEstablished):
                self.log.info("%s session %s %s", self.label, o.session_id.hex().upper(), o.response_code)
            elif isinstance(o, PowerDeliveryChanged):
                self.log.info("%s power delivery: %s", self.label, o.progress)
            elif isinstance(o, TimerViolation):
                self.log.warning("%s timer violation tolerated: %s (%g s): %s", self.label, o.timer, o.limit, o.detail)
                if self.tracer:
                    self.tracer.event("timer_violation", self.label, timer=o.timer, limit=o.limit, detail=o.detail)
            elif isinstance(o, SessionEnded):
                self._ended(o, closing)
            elif isinstance(o, Close) and not closing:
                frames.append(transport.CLOSE)
                break
        return frames


    def _ended(self, o: SessionEnded, connection_lost: bool) -> None:
        if o.ok:
            self.log.info("%s session ended (ok): %s", self.label, o.reason)
        elif connection_lost:
            # The transport has logged the connection's fault, if it was one; a session
            # that never started is not worth a line of its own.
            started = getattr(self.core, "session_id", None) is not None
            self.log.log(logging.INFO if started else logging.DEBUG,
                         "%s session ended (failed): %s", self.label, o.reason)
        elif self.faults is not None:
            self.faults.report("session failed", self.label, o.reason)
        else:
            self.log.warning("%s session ended (failed): %s", self.label, o.reason)


def _body(msg):
    from ._msg import body_of
    return body_of(msg)[1]


# ---------------------------------------------------------------------------------------
# TLS from a PKI folder written by exi.v2g.pki / `exi15118 pki create`

def pki_profile(pki: Union[str, Path]) -> str:
    """"iso20" for a folder from ``pki create --profile iso20`` (it has a vehicle
    certificate), else "iso2"."""
    return "iso20" if (Path(pki) / "private_keys" / "vehicleLeaf.key").exists() else "iso2"


def pki_profiles(pki: Union[str, Path]) -> tuple[str, ...]:
    """The profiles a PKI folder holds: both for one from ``pki create --profile
    iso2,iso20`` (a sub-folder per profile, :func:`exi.v2g.pki.write_pkis`), else the
    one of :func:`pki_profile`."""
    from exi.v2g.pki import folder_profiles
    return folder_profiles(pki) or (pki_profile(pki),)


def secc_tls_context(pki: Union[str, Path], keylog=None, password: Optional[str] = None) -> _ssl.SSLContext:
    """TLS server context of the PKI folder's profile; -20: TLS 1.3 and the vehicle
    certificate required ([V2G20-2400]), trusted up to the OEM or V2G root.
    ``password`` decrypts an encrypted key; without one an encrypted key is an error
    (ssl would otherwise ask on the terminal)."""
    pki = Path(pki)
    profile = pki_profile(pki)
    trust = [p for p in (pki / "certs" / "oemRootCA.pem", pki / "certs" / "v2gRootCA.pem") if p.exists()]

    def no_prompt():
        if password is None:
            raise ValueError(f"{pki / 'private_keys' / 'seccLeaf.key'} is encrypted and no password was given")
        return password
    return tls.secc_context(profile, pki / "certs" / "seccChain.pem", pki / "private_keys" / "seccLeaf.key",
                            password=no_prompt, keylog=keylog, trust=trust if profile == "iso20" else None)


def secc_tls_contexts(pki: Union[str, Path], keylog=None, password: Optional[str] = None,
                      profiles: tuple = ("iso2", "iso20")) -> dict[str, _ssl.SSLContext]:
    """One TLS server context per profile of ``profiles`` the folder holds (a folder of
    several profiles, or of one), for :func:`serve_secc`: one TLS port then serves -2
    and -20, the context chosen per connection from its ClientHello."""
    from exi.v2g.pki import profile_folder
    return {p: secc_tls_context(profile_folder(pki, p), keylog, password)
            for p in pki_profiles(pki) if p in profiles}


def evcc_tls_context(pki: Union[str, Path], keylog=None, profile: Optional[str] = None) -> _ssl.SSLContext:
    """TLS client context of the PKI folder's profile; -20 presents the vehicle
    certificate ([V2G20-2339]).  ``profile`` picks one of a folder of several profiles
    (default "iso2")."""
    from exi.v2g.pki import folder_profiles, profile_folder
    if folder_profiles(pki):
        pki = profile_folder(pki, profile or "iso2")
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
        self.faults: Optional[FaultLog] = None

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
        if self.faults is not None:
            self.faults.flush()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def serve_secc(interface: str, config: Optional[SECCConfig] = None, *,
                     tls_context: Union[_ssl.SSLContext, dict, None] = None, tls_only: bool = False,
                     tracer: Optional[Tracer] = None, port: Optional[int] = None,
                     sdp_enabled: bool = True, keep_sessions: bool = False,
                     handshake_timeout: float = 10.0, tls_profile: str = "iso2",
                     faults: Optional[FaultLog] = None, freeze_gc: bool = False,
                     tls_port: Optional[int] = None, reuse_port: bool = False,
                     max_connections: int = transport.DEFAULT_MAX_CONNECTIONS) -> SECCService:
    """Serve concurrent sessions on ``interface`` until ``close()``.

    A plain TCP server always runs unless ``tls_only`` (DIN SPEC 70121 has no TLS,
    [V2G-DC-618] (2nd-hand)); with ``tls_context`` a TLS server runs too and SDP answers
    each EV with the security it asked for when offered.  ``tls_context`` may map
    profiles to contexts (:func:`secc_tls_contexts`): the one TLS port then serves -2
    (TLS 1.2) and -20 (TLS 1.3), chosen per connection from the ClientHello.

    Idle connections end by the cores' V2G_SECC_Sequence_Timeout
    (``config.sequence_timeout``), TLS handshakes after ``handshake_timeout``; beyond
    ``max_connections`` per server, connections are closed on arrival.  What
    peers do wrong is logged once per fault and rate-limited through ``faults`` (one
    :class:`~exi.v2g.faults.FaultLog` for the transport, SDP and the sessions).

    ``freeze_gc`` (for a process that is the SECC, as ``exi15118 secc``): once listening,
    move everything made so far (modules, codec tables) out of the garbage collector's
    reach (``gc.freeze()``), so its full collections scan only the sessions' objects and
    stop pausing the event loop for milliseconds.

    ``reuse_port`` (with fixed ``port``/``tls_port``): listen with SO_REUSEPORT so that
    worker processes share the ports (:mod:`exi.v2g.session.workers`)."""
    config = config or SECCConfig()
    protocol_modules.preload(config.protocols)     # grammars loaded before the first EV
    stats = PerformanceStats()
    faults = faults or FaultLog(logging.getLogger("exi.v2g.secc.faults"))
    service = SECCService([], None, config, tracer, stats)
    service.faults = faults
    counter = [0]

    # DIN SPEC 70121 has no TLS ([V2G-DC-618] (2nd-hand)): a TLS connection is not offered DIN
    tls_config = dataclasses.replace(config, protocols=tuple(p for p in config.protocols if p != "din"))
    if tls_context is not None and not tls_config.protocols:
        raise ValueError("DIN SPEC 70121 has no TLS: serve TLS with ISO 15118-2 (protocols iso2 or iso2,din)")

    def factory(info: transport.ConnectionInfo):
        counter[0] += 1
        # the core's log lines name the peer as every fault line does: [address%interface]:port
        peer = peer_label(info.peer) if info.peer else f"conn{counter[0]}"
        core = SECCSession(tls_config if info.secure else config, name=peer)
        if keep_sessions:
            service.sessions.append(core)
        return CoreHandler(core, tracer=tracer, stats=stats, faults=faults)

    if not tls_only or tls_context is None:
        service.servers.append(await transport.start_secc_server(factory, interface, port=port,
                                                                 faults=faults, reuse_port=reuse_port,
                                                                 max_connections=max_connections))
    if tls_context is not None:
        service.servers.append(await transport.start_secc_server(
            factory, interface, port=tls_port, ssl=tls_context, tls_profile=tls_profile,
            handshake_timeout=handshake_timeout, faults=faults, reuse_port=reuse_port,
            max_connections=max_connections))
    if sdp_enabled:
        service.sdp = await sdp.serve_sdp(interface, tls_port=service.tls_port, tcp_port=service.tcp_port,
                                          faults=faults)
    if freeze_gc:
        gc.collect()
        gc.freeze()
    return service


# ---------------------------------------------------------------------------------------
# EVCC

async def run_evcc(interface: str, config: Optional[EVCCConfig] = None, *, ev: Optional[EVController] = None,
                   ssl: Optional[_ssl.SSLContext] = None, tracer: Optional[Tracer] = None,
                   host: Optional[str] = None, port: Optional[int] = None,
                   sdp_max_requests: int = sdp.SDP_MAX_REQUESTS,
                   core: Optional[EVCCSession] = None, tls_profile: str = "iso2") -> SessionEnded:
    """One whole session: SDP, TCP/TLS, the session core.  Returns how it ended.
    ``core``: a session made by the caller (to call ``request_stop`` on it)."""
    config = config or EVCCConfig()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = core or EVCCSession(config, ev, name="evcc")
    if host is None:
        want = sdp.Security.TLS if ssl is not None else sdp.Security.NONE
        client = _ProgressSDPClient(sdp.SDPRequest(want, sdp.Transport.TCP), max_requests=sdp_max_requests)
        log.info("SDP: looking for a charger on %s (%s, up to %d requests %g s apart)", interface,
                 want.name, client.max_requests, client.timeout)
        try:
            resp = await sdp.discover(interface, client=client)
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


class _ProgressSDPClient(sdp.SDPClient):
    """Logs each repeated SDP request (debug level)."""

    def handle_timer(self, now: float):
        out = super().handle_timer(now)
        if out is not None:
            log.debug("SDP: no answer yet, request %d of %d", self.requests_sent, self.max_requests)
        return out
