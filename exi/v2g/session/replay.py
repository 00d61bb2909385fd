"""Replay recorded V2G sessions into our session cores.

A capture (pcap/pcapng, read with :func:`exi.capture.read`) holds what a real EV and a
real charger said.  Each TCP stream that starts with a SupportedAppProtocolReq and speaks
DIN SPEC 70121 or ISO 15118-2 is one :class:`RecordedSession`.

* :func:`replay_secc` plays the recorded EV's requests, in order and at their recorded
  times, into a :class:`~.secc.SECCSession` configured from what the recorded charger
  answered (protocol, energy modes, services, Ongoing counts, isolation result); our
  SessionID is substituted into every request.
* :func:`replay_evcc` plays the recorded charger's responses into an
  :class:`~.evcc.EVCCSession` configured like the recorded EV (offered protocols, energy
  transfer mode, ServiceDetail, stop or pause, resumed SessionID, late-response
  tolerance); a :class:`RecordedEV` takes the decisions that are the car's own (when
  PreCharge is done, when charging is complete, how many WeldingDetection requests) from
  the recording.  Our SchemaID is substituted into the SAP response.

Both return a :class:`ReplayResult`: whether the core ran to the recorded end (every
request/response of the recording answered/sent as recorded, up to the end of the
capture or the charger's first FAILED response), and where and why not.  Time is the
recorded time: requests reach the SECC when the car sent them, responses reach the EVCC
when the charger sent them, and the EVCC's repeated requests (Ongoing, loops) leave when
the recorded car sent its next one; the EVCC runs with ``late_responses="tolerate"``, so
its ``violations`` list what the recorded charger was late with.

    for rec in recorded_sessions("capture.pcapng"):
        print(rec.label, replay_secc(rec).summary(), replay_evcc(rec).summary())

:func:`replay_capture` replays every session of one file in order, sharing the SECC's
:class:`~.secc.SessionStore` so that paused sessions can be resumed
(``OK_OldSessionJoined``) as they were recorded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import exi
import exi.capture
from exi.registry import schema_for_protocol_namespace

from ._msg import ZERO_SESSION, fv, val
from .controllers import ACLimits, DCLimits, EVController, SchedulePeriod, SimulatedEVSE
from .evcc import EVCCConfig, EVCCSession
from .events import Send, SessionEnded, SessionEstablished
from .secc import SECCConfig, SECCSession, SessionStore

__all__ = ["RecordedSession", "RecordedEV", "RecordedEVSE", "ReplayResult", "recorded_sessions",
           "replay_secc", "replay_evcc", "replay_capture"]

REPLAYABLE = ("din", "iso2")
EV, CHARGER = "EVCC->SECC", "SECC->EVCC"
_LOOPS = ("CurrentDemandReq", "ChargingStatusReq")


def _body(rec):
    if rec.schema == "sap":
        return rec.message
    return getattr(rec.message.Body, rec.name)


def _code(rec) -> str:
    return str(val(getattr(_body(rec), "ResponseCode", None)) or "")


def _failed(code: str) -> bool:
    return code.upper().startswith("FAILED")


@dataclass
class RecordedSession:
    """One recorded V2G session (one TCP stream) of a capture."""
    source: str
    stream: int
    records: list                   # exi.capture MessageRecords (sap/din/iso2), in order

    @property
    def label(self) -> str:
        return f"{self.source}#{self.stream}"

    @property
    def schema(self) -> Optional[str]:
        """"din"/"iso2", or None when the protocol negotiation failed."""
        return next((r.schema for r in self.records if r.schema in REPLAYABLE), None)

    def named(self, name: str, direction: Optional[str] = None) -> list:
        return [r for r in self.records if r.name == name and (direction is None or r.direction == direction)]

    def first(self, name: str):
        return next((_body(r) for r in self.records if r.name == name), None)

    @property
    def end(self) -> int:
        """Index after the last record that counts: the capture's end, or the charger's
        first FAILED response (after it the standards end the session)."""
        for i, r in enumerate(self.records):
            if r.direction == CHARGER and _failed(_code(r)):
                return i + 1
        return len(self.records)

    @property
    def session_id(self) -> Optional[bytes]:
        """The SessionID the recorded charger assigned."""
        for r in self.records:
            if r.name == "SessionSetupRes":
                return r.message.Header.SessionID
        return None


def recorded_sessions(path, label: Optional[str] = None) -> list[RecordedSession]:
    """The replayable sessions of one capture file, in the order they started.  Streams
    that do not begin with a SupportedAppProtocolReq (a capture started mid-session) or
    that negotiate another protocol (ISO 15118-20) are left out."""
    streams: dict = {}
    for r in exi.capture.read(path):
        if r.stream is None or r.name is None or r.error:
            continue
        streams.setdefault(r.stream, []).append(r)
    out = []
    for sid, recs in streams.items():
        if recs[0].name != "supportedAppProtocolReq" or recs[0].direction != EV:
            continue
        if any(r.schema not in REPLAYABLE + ("sap",) for r in recs):
            continue
        out.append(RecordedSession(label or os.fspath(path), sid, recs))
    return out


@dataclass
class ReplayResult:
    side: str                       # "secc" / "evcc"
    session: RecordedSession
    ok: bool
    reached: int                    # records of the recording replayed
    total: int                      # records up to the recorded end
    reason: str = ""
    at: Optional[str] = None        # the recorded message where it went wrong
    ended: Optional[SessionEnded] = None
    violations: list = field(default_factory=list)   # timing violations tolerated (EVCC)

    def summary(self) -> str:
        where = f" at {self.at}" if self.at else ""
        return f"{self.side} {'ok' if self.ok else 'FAILED'} {self.reached}/{self.total}{where} {self.reason}".rstrip()


# ---------------------------------------------------------------------------------------
# SECC side

class RecordedEVSE(SimulatedEVSE):
    """A simulated charger that answers EVSEProcessing as the recorded one did: Ongoing
    for as many Authorization/ContractAuthentication, ChargeParameterDiscovery and
    CableCheck requests (per round) as recorded, and the recorded isolation result."""

    def __init__(self, session: RecordedSession, **kw):
        super().__init__(isolation_polls=0, auth_polls=0, **kw)
        self._queues = {}
        for key, names in (("auth", ("AuthorizationRes", "ContractAuthenticationRes")),
                           ("cpd", ("ChargeParameterDiscoveryRes",)), ("cable", ("CableCheckRes",))):
            q = []
            for r in session.records[:session.end]:
                if r.name in names and r.direction == CHARGER:
                    b = _body(r)
                    status = getattr(b, "DC_EVSEStatus", None)
                    q.append((val(b.EVSEProcessing), val(getattr(status, "EVSEIsolationStatus", None))))
            self._queues[key] = q
        res = session.first("SessionSetupRes")
        if res is not None and isinstance(res.EVSEID, str) and res.EVSEID:
            self.evseid = res.EVSEID
        tuples = _recorded_tuples(session)
        entries = tuples[0].PMaxSchedule.PMaxScheduleEntry if tuples and tuples[0].PMaxSchedule else []
        self._schedule = []
        for e in entries:
            t = e.RelativeTimeInterval
            pmax = fv(e.PMax) if not isinstance(e.PMax, int) else float(e.PMax)
            self._schedule.append(SchedulePeriod(t.start if t else 0, t.duration if t else None, pmax))

    def schedule(self):
        return self._schedule or super().schedule()

    def _next(self, key: str):
        q = self._queues[key]
        return q.pop(0) if q else ("Finished", None)

    def authorize(self, now):
        return None if str(self._next("auth")[0]).startswith("Ongoing") else True

    def charge_parameters_ready(self, now):
        return self._next("cpd")[0] != "Ongoing"

    def isolation_check(self, now):
        self._advance(now)
        processing, isolation = self._next("cable")
        if processing == "Ongoing":
            return None
        return "Fault" if isolation == "Fault" else ("Warning" if isolation == "Warning" else "Valid")


def secc_config_for(session: RecordedSession, store: Optional[SessionStore] = None) -> SECCConfig:
    """An SECC configured like the recorded charger."""
    cfg = SECCConfig(store=store or SessionStore())
    schema = session.schema
    sap_res = session.first("supportedAppProtocolRes")
    if sap_res is None:             # not recorded: any protocol we replay
        cfg.protocols = REPLAYABLE
    else:
        cfg.protocols = (schema,) if schema and not str(val(sap_res.ResponseCode)).upper().startswith("FAILED") else ()
    sd = session.first("ServiceDiscoveryRes")
    if sd is not None and schema == "iso2" and sd.ChargeService is not None:
        cfg.energy_modes = tuple(val(m) for m in sd.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode)
        listed = sd.ServiceList.Service if sd.ServiceList is not None else []
        cfg.offer_value_added_services = any(x.ServiceID == 3 for x in listed)
        cfg.extra_services = tuple((x.ServiceID, x.ServiceName, str(val(x.ServiceCategory)))
                                   for x in listed if x.ServiceID != 3)
    elif sd is not None and schema == "din" and sd.ChargeService is not None:
        cfg.energy_modes = ("DC_core", "DC_extended")
    tuples = _recorded_tuples(session)
    if tuples:
        cfg.sa_schedule_tuple_id = tuples[0].SAScheduleTupleID
    return cfg


def _recorded_tuples(session: RecordedSession) -> list:
    for r in session.named("ChargeParameterDiscoveryRes", CHARGER):
        lst = _body(r).SAScheduleList
        if lst is not None and lst.SAScheduleTuple:
            return lst.SAScheduleTuple
    return []


def _our_session_id(ids: dict, sid):
    """The SessionID our SECC gave for one the recorded charger gave (else unchanged)."""
    return ids.get(bytes(sid), sid) if sid is not None else sid


def replay_secc(session: RecordedSession, *, store: Optional[SessionStore] = None,
                ids: Optional[dict] = None) -> ReplayResult:
    """Play the recorded EV's requests into our SECC.  ``ids`` maps recorded SessionIDs
    to ours (filled in; share it across the sessions of one capture for resumes)."""
    ids = {} if ids is None else ids
    cfg = secc_config_for(session, store)
    core = SECCSession(cfg, RecordedEVSE(session), name=session.label)
    recs = session.records[:session.end]
    recorded_sid = session.session_id
    t0 = recs[0].time
    core.connection_made(t0)
    reached = 0
    for i, r in enumerate(recs):
        if r.direction != EV:
            continue
        dl = core.next_deadline()
        if dl is not None and dl <= r.time:
            core.handle_timer(r.time)
        if core.ended is not None:
            return ReplayResult("secc", session, False, reached, len(recs),
                                f"our SECC ended before this request: {core.ended.reason}", _at(r, i), core.ended)
        msg = exi.decode(r.exi, r.schema, padding=True)
        if r.schema != "sap":
            if msg.Header is not None and (r.name != "SessionSetupReq" or bytes(msg.Header.SessionID or b"") in ids):
                msg.Header.SessionID = _our_session_id(ids, msg.Header.SessionID)
            body = getattr(msg.Body, r.name)
            if hasattr(body, "SessionID") and r.name == "MeteringReceiptReq":
                body.SessionID = _our_session_id(ids, body.SessionID)
        out = core.receive(exi.encode(msg, validate=False), r.time)
        for e in out:
            if isinstance(e, SessionEstablished) and recorded_sid is not None:
                ids[bytes(recorded_sid)] = e.session_id
        sent = [e for e in out if isinstance(e, Send)]
        recorded = recs[i + 1] if i + 1 < len(recs) and recs[i + 1].direction == CHARGER else None
        if not sent:
            return ReplayResult("secc", session, False, reached, len(recs),
                                f"no response: {core.ended.reason if core.ended else '?'}", _at(r, i), core.ended)
        ours = sent[0]
        code = str(val(getattr(ours.message.Body, ours.name).ResponseCode) if ours.schema != "sap"
                   else val(ours.message.ResponseCode))
        rec_code = _code(recorded) if recorded is not None else ""
        if _failed(code) and not (_failed(rec_code) or rec_code.startswith("Failed")) or \
                (code.startswith("Failed") and not rec_code.startswith("Failed")):
            return ReplayResult("secc", session, False, reached, len(recs),
                                f"our SECC answered {code}"
                                + (f" (recorded: {rec_code})" if recorded is not None else "")
                                + f": {core.ended.reason if core.ended else ''}", _at(r, i), core.ended)
        if recorded is not None and recorded.name != ours.name:
            return ReplayResult("secc", session, False, reached, len(recs),
                                f"our SECC sent {ours.name}, recorded {recorded.name}", _at(r, i), core.ended)
        reached = i + 2 if recorded is not None else i + 1
    last = recs[-1]
    if last.name == "SessionStopRes" and not _failed(_code(last)) and (core.ended is None or not core.ended.ok):
        return ReplayResult("secc", session, False, len(recs), len(recs),
                            "recorded SessionStop, our SECC did not end the session normally",
                            _at(last, len(recs) - 1), core.ended)
    return ReplayResult("secc", session, True, len(recs), len(recs), "", None, core.ended)


def _at(r, i: int) -> str:
    return f"#{i} {r.name} (frame {r.frame}, t={r.time:.3f})"


# ---------------------------------------------------------------------------------------
# EVCC side

class RecordedEV(EVController):
    """An EV whose own decisions come from the recording: its limits, SoC and PreCharge
    target from its requests; whether PreCharge is done, charging is complete or the
    driver stops from what the recorded car sent next.  The replay tells it the car's
    next request (:meth:`recorded_next`) before each response is delivered."""

    def __init__(self, session: RecordedSession):
        setup = session.first("SessionSetupReq")
        self.evcc_id = bytes(setup.EVCCID or b"\x00") if setup is not None else b"\x00"
        cpd = session.first("ChargeParameterDiscoveryReq")
        self._dc = getattr(cpd, "DC_EVChargeParameter", None) if cpd is not None else None
        self._ac = getattr(cpd, "AC_EVChargeParameter", None) if cpd is not None else None
        pc = session.first("PreChargeReq")
        self._precharge_v = fv(pc.EVTargetVoltage) if pc is not None else 400.0
        self._soc = int(getattr(getattr(self._dc, "DC_EVStatus", None), "EVRESSSOC", None) or 50)
        self._next: Optional[str] = None
        self._next_progress: Optional[str] = None

    def recorded_next(self, record) -> None:
        """The recorded car's next request (None at the end of the recording)."""
        self._next = record.name if record is not None else None
        self._next_progress = None
        if record is not None and record.name == "PowerDeliveryReq":
            b = _body(record)
            p = getattr(b, "ChargeProgress", None)
            self._next_progress = str(val(p)) if p is not None else \
                ("Start" if b.ReadyToChargeState else "Stop")

    # decisions
    def precharge_complete(self, now, evse_voltage):
        return self._next is not None and self._next != "PreChargeReq"

    def charging_complete(self, now):
        return self._next_progress == "Stop" or self._next == "SessionStopReq"

    def stop_requested(self, now):
        return self._next == "SessionStopReq" or self._next_progress == "Stop"

    def renegotiation_requested(self, now):
        return self._next_progress == "Renegotiate"

    # values
    def dc_limits(self):
        p = self._dc
        if p is None:
            return DCLimits(500.0, 125.0, 50000.0)
        return DCLimits(fv(p.EVMaximumVoltageLimit), fv(p.EVMaximumCurrentLimit),
                        fv(p.EVMaximumPowerLimit) or 50000.0)

    def ac_limits(self):
        p = self._ac
        if p is None:
            return ACLimits(230.0, 16.0, 6.0)
        return ACLimits(fv(p.EVMaxVoltage), fv(p.EVMaxCurrent), fv(p.EVMinCurrent))

    def soc(self):
        return max(0, min(100, self._soc))

    def battery_voltage(self):
        return self._precharge_v

    def target_current(self):
        return 10.0

    def update(self, now, voltage, current):
        pass


def evcc_config_for(session: RecordedSession) -> EVCCConfig:
    """An EVCC configured like the recorded EV."""
    cfg = EVCCConfig(loop_interval=1e-6, late_responses="tolerate")
    sap_req = session.first("supportedAppProtocolReq")
    offers = sorted(sap_req.AppProtocol or [], key=lambda a: a.Priority or 99)
    cfg.protocols = tuple(s for s in (schema_for_protocol_namespace(a.ProtocolNamespace or "") for a in offers)
                          if s in REPLAYABLE)
    cpd = session.first("ChargeParameterDiscoveryReq")
    if cpd is not None:
        mode = val(getattr(cpd, "RequestedEnergyTransferMode", None) or getattr(cpd, "EVRequestedEnergyTransferType", None))
        cfg.energy_transfer_mode = str(mode)
        cfg.mode = "dc" if str(mode).startswith("DC") else "ac"
    elif session.first("CableCheckReq") is not None or session.schema == "din":
        cfg.mode = "dc"
    else:       # stopped before ChargeParameterDiscovery: what the charger offered
        sd = session.first("ServiceDiscoveryRes")
        modes = [str(val(m)) for m in sd.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode] \
            if sd is not None and session.schema == "iso2" and sd.ChargeService is not None else []
        if modes and not any(m.startswith("DC") for m in modes):
            cfg.mode, cfg.energy_transfer_mode = "ac", modes[0]
    cfg.request_service_details = bool(session.named("ServiceDetailReq"))
    stop = session.first("SessionStopReq")
    if stop is not None and str(val(getattr(stop, "ChargingSession", None))) == "Pause":
        cfg.stop = "pause"
    setup = session.records[[r.name for r in session.records].index("SessionSetupReq")] \
        if session.first("SessionSetupReq") is not None else None
    if setup is not None and any(setup.message.Header.SessionID or b""):
        cfg.resume_session_id = bytes(setup.message.Header.SessionID)
    names = [r.name for r in session.records if r.direction == EV]
    first_loop = min((names.index(n) for n in _LOOPS if n in names), default=len(names))
    evreqs = [r for r in session.records if r.direction == EV]
    first_stop = next((i for i, r in enumerate(evreqs) if _progress(r) == "(Stop)"), len(names))
    cfg.early_stop_power_off = first_stop < first_loop
    reneg = [i for i, r in enumerate(session.records) if r.direction == EV and _progress(r) == "(Renegotiate)"]
    cfg.recheck_after_renegotiation = bool(reneg) and "CableCheckReq" in \
        [r.name for r in session.records[reneg[0]:] if r.direction == EV][:4]
    cfg.max_welding_requests = len(session.named("WeldingDetectionReq"))
    cfg.welding_safe_voltage = float("-inf")
    return cfg


def replay_evcc(session: RecordedSession) -> ReplayResult:
    """Play the recorded charger's responses into our EVCC."""
    cfg = evcc_config_for(session)
    ev = RecordedEV(session)
    core = EVCCSession(cfg, ev, name=session.label)
    recs = session.records[:session.end]
    ours_by_schema = {s: i for i, s in enumerate(cfg.protocols, 1)}
    sap_req = session.first("supportedAppProtocolReq")
    recorded_ns = {a.SchemaID: schema_for_protocol_namespace(a.ProtocolNamespace or "")
                   for a in sap_req.AppProtocol or []}
    out = core.start(recs[0].time)
    sent = [e for e in out if isinstance(e, Send)]
    reached = 0
    i = 0
    while i < len(recs):
        r = recs[i]
        if r.direction == EV:
            if not sent:
                if core.next_deadline() is not None and core._pending is not None:
                    out = core.handle_timer(max(core.next_deadline(), r.time))
                    sent = [e for e in out if isinstance(e, Send)]
                if not sent:
                    why = core.result.reason if core.result else "our EVCC sent nothing"
                    return ReplayResult("evcc", session, False, reached, len(recs),
                                        f"recorded EV sent {r.name}, ours nothing: {why}", _at(r, i),
                                        core.result, core.violations)
            ours = sent.pop(0)
            if ours.name != r.name or _progress(ours) != _progress(r):
                return ReplayResult("evcc", session, False, reached, len(recs),
                                    f"our EVCC sent {ours.name}{_progress(ours) or ''}, recorded "
                                    f"{r.name}{_progress(r) or ''}", _at(r, i), core.result, core.violations)
            reached = i + 1
            i += 1
            continue
        # a recorded response: deliver it at its recorded time
        dl = core.next_deadline()
        if dl is not None and dl < r.time and core._pending is None:
            core.handle_timer(r.time)
        if core.result is not None and not core.result.ok:
            return ReplayResult("evcc", session, False, reached, len(recs), core.result.reason,
                                _at(r, i), core.result, core.violations)
        payload = r.exi
        if r.schema == "sap":
            msg = exi.decode(r.exi, "sap", padding=True)
            if msg.SchemaID is not None:
                msg.SchemaID = ours_by_schema.get(recorded_ns.get(msg.SchemaID), msg.SchemaID)
            payload = exi.encode(msg, validate=False)
        ev.recorded_next(recs[i + 1] if i + 1 < len(recs) and recs[i + 1].direction == EV else None)
        out = core.receive(payload, r.time)
        sent = [e for e in out if isinstance(e, Send)]
        reached = i + 1
        i += 1
        if core.result is not None and not core.result.ok and i < len(recs):
            return ReplayResult("evcc", session, False, reached, len(recs), core.result.reason,
                                _at(r, i - 1), core.result, core.violations)
    if core.result is not None and not core.result.ok and not _failed(_code(recs[-1])) \
            and not _code(recs[-1]).startswith("Failed"):
        return ReplayResult("evcc", session, False, reached, len(recs), core.result.reason,
                            _at(recs[-1], len(recs) - 1), core.result, core.violations)
    return ReplayResult("evcc", session, True, len(recs), len(recs), "", None, core.result, core.violations)


def _progress(x) -> Optional[str]:
    """ChargeProgress (or DIN ReadyToChargeState) of a PowerDeliveryReq, as "(Start)"."""
    if x.name != "PowerDeliveryReq":
        return None
    b = getattr(x.message.Body, x.name)
    p = getattr(b, "ChargeProgress", None)
    return f"({val(p) if p is not None else ('Start' if b.ReadyToChargeState else 'Stop')})"


def replay_capture(path, label: Optional[str] = None) -> list[tuple[ReplayResult, ReplayResult]]:
    """Replay every session of one capture, both sides, in recorded order (resumed
    sessions find the paused ones)."""
    store, ids = SessionStore(), {}
    return [(replay_secc(s, store=store, ids=ids), replay_evcc(s))
            for s in recorded_sessions(path, label)]
