"""An EVCC core and an SECC core wired together in memory, with a fake clock
(h11 ``ConnectionPair`` style) -- for our tests and for code that embeds the stack.

    pair = SessionPair(EVCCConfig(protocols=("din",), mode="dc"), SECCConfig())
    result = pair.run()                 # whole session, in no real time
    assert result.ok, result.reason
    pair.log                            # [(time, "evcc->secc", name), ...]

Frames go through real V2GTP framing (``exi.v2g.v2gtp``) so header handling is
exercised too.  ``backend``: what the SECC's :class:`~.events.BackendRequest` calls run on
(Plug & Charge), answering after ``backend_delay`` seconds of the fake clock.  Hooks let a test tamper with traffic: ``pair.tamper = fn(direction,
payload) -> payload | None`` (None drops the frame), and ``pair.inject(side, payload)``.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Optional

from exi.v2g.v2gtp import TCP_PAYLOAD_TYPES, Frame, V2GTPFramer

from .controllers import EVController, EVSEController
from .events import BackendRequest, Close, Send, SessionEnded
from .evcc import EVCCConfig, EVCCSession
from .secc import SECCConfig, SECCSession

__all__ = ["FakeClock", "SessionPair", "TraceEntry"]


class FakeClock:
    """Monotonic time that only moves when told to."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> float:
        if dt < 0:
            raise ValueError("time does not go back")
        self.now += dt
        return self.now

    def set(self, t: float) -> float:
        self.now = max(self.now, t)
        return self.now


@dataclass(frozen=True)
class TraceEntry:
    time: float
    direction: str          # "evcc->secc" / "secc->evcc"
    schema: str
    name: str
    message: object


class SessionPair:
    """One EVCC core talking to one SECC core through an in-memory V2GTP link.

    ``latency``: seconds each frame takes on the wire (0 = delivered at once, still in
    order).  The SECC's ``SECCConfig.store`` survives between pairs that share the config,
    so pause/resume works across two ``SessionPair`` objects."""

    def __init__(self, evcc: Optional[EVCCConfig] = None, secc: Optional[SECCConfig] = None,
                 *, ev: Optional[EVController] = None, evse: Optional[EVSEController] = None,
                 clock: Optional[FakeClock] = None, latency: float = 0.0,
                 tls_version: Optional[str] = None, backend=None, backend_delay: float = 0.0):
        self.clock = clock or FakeClock()
        self.secc_config = secc or SECCConfig()
        self.evcc = EVCCSession(evcc or EVCCConfig(), ev, name="evcc")
        self.secc = SECCSession(self.secc_config, evse, name="secc")
        # What the link pretends to be: "TLSv1.3" lets both sides use ISO 15118-20.
        self.evcc.tls_version = self.secc.tls_version = tls_version
        self.latency = latency
        self.backend = backend
        self.backend_delay = backend_delay
        self.log: list[TraceEntry] = []
        self.events: dict[str, list] = {"evcc": [], "secc": []}
        self.closed: dict[str, Optional[str]] = {"evcc": None, "secc": None}
        self.tamper: Optional[Callable[[str, bytes], Optional[bytes]]] = None
        self._framers = {side: V2GTPFramer(payload_types=TCP_PAYLOAD_TYPES) for side in ("evcc", "secc")}
        self._queue: list = []          # (deliver_at, seq, to_side, bytes)
        self._seq = 0
        self.steps = 0

    # -- plumbing ---------------------------------------------------------------------
    def _core(self, side: str):
        return self.evcc if side == "evcc" else self.secc

    def _handle(self, side: str, outputs: list) -> None:
        other = "secc" if side == "evcc" else "evcc"
        for item in outputs:
            self.events[side].append(item)
            if isinstance(item, Send):
                self.log.append(TraceEntry(self.clock.now, f"{side}->{other}", item.schema, item.name, item.message))
                payload = item.payload
                if self.tamper is not None:
                    payload = self.tamper(f"{side}->{other}", payload)
                    if payload is None:
                        continue
                self._push(other, Frame(item.payload_type, payload).pack())
            elif isinstance(item, BackendRequest):
                if self.backend_delay > 0:
                    self._seq += 1
                    heapq.heappush(self._queue, (self.clock.now + self.backend_delay, self._seq,
                                                 side, item))
                else:
                    self._backend_answer(side, item)
            elif isinstance(item, Close):
                self._close(side, item.reason)
                return

    def _backend_answer(self, side: str, request: BackendRequest) -> None:
        if self.backend is None:
            request.call.fail("SessionPair has no backend")
        else:
            request.call.run_now(self.backend)
        if request.hold and self.closed[side] is None:
            self._handle(side, self._core(side).backend_done(request.call, self.clock.now))

    def _push(self, to_side: str, data: bytes) -> None:
        if self.closed[to_side] is not None:
            return
        self._seq += 1
        heapq.heappush(self._queue, (self.clock.now + self.latency, self._seq, to_side, data))

    def _close(self, side: str, reason: str) -> None:
        """``side`` closes the connection: the other side sees it once its frames are in."""
        if self.closed[side] is None:
            self.closed[side] = reason
            other = "secc" if side == "evcc" else "evcc"
            self._seq += 1
            heapq.heappush(self._queue, (self.clock.now + self.latency, self._seq, other, None))

    def inject(self, to_side: str, payload: bytes, payload_type: int = 0x8001) -> None:
        """Put a raw payload on the wire towards ``to_side`` (tests: broken frames)."""
        self._push(to_side, Frame(payload_type, payload).pack())

    def inject_bytes(self, to_side: str, data: bytes) -> None:
        self._push(to_side, data)

    # -- running ------------------------------------------------------------------------
    def start(self) -> None:
        now = self.clock.now
        self._handle("secc", self.secc.connection_made(now))
        self._handle("evcc", self.evcc.start(now))

    def step(self) -> bool:
        """Deliver the next frame or fire the next timer; False when nothing is left."""
        deadlines = [(d, side) for side in ("evcc", "secc")
                     if self.closed[side] is None and (d := self._core(side).next_deadline()) is not None]
        next_frame = self._queue[0][0] if self._queue else None
        next_timer = min(deadlines) if deadlines else None
        if next_frame is None and next_timer is None:
            return False
        self.steps += 1
        if next_frame is not None and (next_timer is None or next_frame <= next_timer[0]):
            at, _, side, data = heapq.heappop(self._queue)
            self.clock.set(at)
            core = self._core(side)
            if self.closed[side] is not None:
                return True
            if isinstance(data, BackendRequest):
                self._backend_answer(side, data)
                return True
            if data is None:                 # peer closed
                self.closed[side] = "peer closed the connection"
                core.connection_lost("peer closed the connection", self.clock.now)
                return True
            try:
                frames = self._framers[side].feed(data)
            except ValueError as e:          # bad V2GTP header: the driver closes
                self._handle(side, core.connection_lost(f"V2GTP error: {e}", self.clock.now))
                self._close(side, str(e))
                return True
            for f in frames:
                self._handle(side, core.receive(f.payload, self.clock.now, f.payload_type))
            return True
        at, side = next_timer
        self.clock.set(at)
        self._handle(side, self._core(side).handle_timer(self.clock.now))
        return True

    def run(self, max_steps: int = 200000) -> SessionEnded:
        """Run until both sides are done; returns the EVCC's result."""
        if not self.events["evcc"]:
            self.start()
        return self.finish(max_steps)

    def finish(self, max_steps: int = 200000) -> SessionEnded:
        """Run a started session (or a copy of one, paused between steps) until both sides
        are done; returns the EVCC's result."""
        for _ in range(max_steps):
            if not self.step():
                break
        else:
            raise RuntimeError(f"session did not end within {max_steps} steps")
        if self.evcc.result is None:
            raise RuntimeError("session stalled: nothing to deliver and no timer, EVCC not done")
        return self.evcc.result

    # -- inspection -------------------------------------------------------------------------
    def names(self, direction: Optional[str] = None) -> list[str]:
        return [e.name for e in self.log if direction is None or e.direction == direction]

    def requests(self) -> list[str]:
        return self.names("evcc->secc")
