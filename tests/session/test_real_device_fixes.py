"""What the replay of real devices showed (issue 10), each fixed behaviour on its own,
between our own cores in memory (exi.v2g.session.testing.SessionPair)."""
from __future__ import annotations

import pytest

import exi
from exi.messages import din, iso2
from exi.v2g.session import EVCCConfig, SECCConfig, SimulatedEV, SimulatedEVSE
from exi.v2g.session.events import TimerViolation
from exi.v2g.session.machine import SECC_TABLES, SECCState
from exi.v2g.session.din.secc import DINSECC
from exi.v2g.session.iso2.secc import ISO2SECC
from exi.v2g.session.secc import SECCSession
from exi.v2g.session.testing import SessionPair
from exi.v2g.session._msg import ZERO_SESSION, val

MODULES = {"din": din, "iso2": iso2}
PROTOCOLS = {"din": DINSECC, "iso2": ISO2SECC}      # the SECC handlers of each protocol


def _codes(schema):
    return [c.value for c in MODULES[schema].responseCodeType]


def _builders(schema):
    return sorted(n for n in dir(PROTOCOLS[schema]) if n.startswith("build_"))


@pytest.mark.parametrize("schema,mode", [("din", "DC"), ("iso2", "DC"), ("iso2", "AC")])
def test_every_response_the_secc_can_send_is_schema_valid(schema, mode):
    """Every response builder, in every state, with every response code of the schema
    and every EVSEProcessing value, encodes with validation on -- including the DIN
    ChargeParameterDiscoveryRes with Ongoing or FAILED, whose SAScheduleList DIN makes
    mandatory (it used to be left out, and the encoder refused the message)."""
    builders = _builders(schema)
    requests = {req for (_, req) in SECC_TABLES[schema] if req != "supportedAppProtocolReq"}
    assert {f"build_{r[:-3]}Res" for r in requests} <= set(builders)     # every request it accepts
    count = 0
    for state in SECCState:
        core = SECCSession(SECCConfig(protocols=(schema,)), SimulatedEVSE())
        core.schema, core.session_id, core.state = schema, b"\x01" * 8, state
        core.protocol = PROTOCOLS[schema](core, schema)
        core.protocol.mode = mode
        for name in builders:
            build = getattr(core.protocol, name)
            takes_processing = "processing" in build.__code__.co_varnames[:build.__code__.co_argcount]
            processings = [p.value for p in MODULES[schema].EVSEProcessingType] if takes_processing else [None]
            for code in _codes(schema):
                for processing in processings:
                    body = build(code, 1000.0) if processing is None else build(code, 1000.0, processing)
                    res = name[len("build_"):]
                    msg = MODULES[schema].V2G_Message(
                        Header=MODULES[schema].MessageHeaderType(SessionID=core.session_id),
                        Body=MODULES[schema].BodyType(**{res: body}))
                    data = exi.encode(msg)                  # validate=True
                    assert val(getattr(exi.decode(data, schema).Body, res).ResponseCode) == code
                    count += 1
    assert count > 1000


def test_din_charge_parameter_discovery_ongoing_has_a_schedule():
    pair = SessionPair(EVCCConfig(protocols=("din",), mode="dc", max_charge_loops=2), SECCConfig(),
                       evse=SimulatedEVSE(cpd_polls=2))
    r = pair.run()
    assert r.ok, r.reason
    cpd = [e.message.Body.ChargeParameterDiscoveryRes for e in pair.log if e.name == "ChargeParameterDiscoveryRes"]
    assert [val(c.EVSEProcessing) for c in cpd] == ["Ongoing", "Ongoing", "Finished"]
    assert all(c.SAScheduleList.SAScheduleTuple for c in cpd)


def _collapsed(names):
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def _rewrite(schema, name, change):
    """A SessionPair tamper hook that edits one response type on its way to the EVCC."""
    def tamper(direction, payload):
        if direction != "secc->evcc":
            return payload
        try:
            msg = exi.decode(payload, schema)
        except exi.DecodeError:
            return payload              # the SAP response
        body = getattr(msg.Body, name, None) if hasattr(msg, "Body") else None
        if body is None:
            return payload
        change(body)
        return exi.encode(msg, validate=False)
    return tamper


def test_iso2_evcc_waits_while_ongoing_waiting_for_customer_interaction():
    """[V2G2-854] (quoted in shared/research/iso20-pnc.md): EIM authorization that waits
    for the driver answers Ongoing_WaitingForCustomerInteraction (EVerest, the iso15118
    package); the EVCC repeats AuthorizationReq instead of moving on."""
    pair = SessionPair(EVCCConfig(protocols=("iso2",), mode="dc", max_charge_loops=2), SECCConfig(),
                       evse=SimulatedEVSE(auth_polls=2))

    def waiting(body):
        if val(body.EVSEProcessing) == "Ongoing":
            body.EVSEProcessing = "Ongoing_WaitingForCustomerInteraction"
    pair.tamper = _rewrite("iso2", "AuthorizationRes", waiting)
    r = pair.run()
    assert r.ok, r.reason
    assert pair.requests().count("AuthorizationReq") == 3


class StoppingEV(SimulatedEV):
    """Stops (driver, car fault) once the EVCC handles a response in one of ``states``."""
    evcc = None
    stop_states: tuple = ()

    def stop_requested(self, now):
        return self.evcc is not None and self.evcc.state.name in self.stop_states


def _stopping_pair(proto, mode, stop_state, **kw):
    ev = StoppingEV()
    ev.stop_states = (stop_state,)
    pair = SessionPair(EVCCConfig(protocols=(proto,), mode=mode, **kw), SECCConfig(), ev=ev)
    ev.evcc = pair.evcc
    return pair


@pytest.mark.parametrize("proto,mode,state", [
    ("din", "dc", "AUTHORIZATION"), ("din", "dc", "CHARGE_PARAMETER_DISCOVERY"),
    ("din", "dc", "CABLE_CHECK"), ("din", "dc", "PRE_CHARGE"),
    ("iso2", "dc", "AUTHORIZATION"), ("iso2", "dc", "CABLE_CHECK"), ("iso2", "dc", "PRE_CHARGE"),
    ("iso2", "ac", "CHARGE_PARAMETER_DISCOVERY")])
def test_session_stop_before_the_charge_loop(proto, mode, state):
    """Real cars end the session after ContractAuthentication/Authorization, CableCheck
    or PreCharge (Hyundai Ioniq 5, Tesla Model Y, Polestar 2 in the captures): the SECC
    answers SessionStopReq OK and ends the session cleanly (it used to answer
    FAILED_SequenceError)."""
    pair = _stopping_pair(proto, mode, state)
    r = pair.run()
    assert r.ok, r.reason
    assert pair.requests()[-1] == "SessionStopReq" and "PowerDeliveryReq" not in pair.requests()
    assert pair.secc.ended.ok and pair.secc.ended.response_code is None


def test_din_power_delivery_not_ready_in_precharge():
    """DIN PowerDelivery(ReadyToChargeState=false) while in PreCharge (an Audi Q4 after
    CableCheck): accepted as -2 accepts ChargeProgress=Stop there, then WeldingDetection
    and SessionStop."""
    pair = _stopping_pair("din", "dc", "PRE_CHARGE", early_stop_power_off=True)
    r = pair.run()
    assert r.ok, r.reason
    req = pair.requests()
    assert _collapsed(req)[-4:] == ["PreChargeReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]
    pd = [e.message.Body.PowerDeliveryReq for e in pair.log if e.name == "PowerDeliveryReq"]
    assert [p.ReadyToChargeState for p in pd] == [False]
    assert "CurrentDemandReq" not in req


@pytest.mark.parametrize("recheck", [False, True])
def test_iso2_dc_renegotiation_with_or_without_a_new_cable_check(recheck):
    pair = SessionPair(EVCCConfig(protocols=("iso2",), mode="dc", max_charge_loops=8, renegotiate_after=3,
                                  recheck_after_renegotiation=recheck), SECCConfig())
    r = pair.run()
    assert r.ok, r.reason
    req = pair.requests()
    after = req[req.index("ChargeParameterDiscoveryReq", req.index("CurrentDemandReq")) + 1]
    assert after == ("CableCheckReq" if recheck else "PowerDeliveryReq")
    assert req.count("PreChargeReq") >= (2 if recheck else 1)


@pytest.mark.parametrize("proto", ["din", "iso2"])
@pytest.mark.parametrize("isolation,code", [(None, "EVSE_NotReady"), ("Invalid", "EVSE_Ready"),
                                            ("Valid", "EVSE_NotReady")])
def test_no_precharge_without_a_valid_isolation_result(proto, isolation, code):
    """A CableCheckRes that says Finished without Valid/Warning isolation or with the EVSE
    not ready (pyPLC as a charger sends this; an Audi Q4 refused): the EVCC never sends
    PreChargeReq, switches the output off with PowerDelivery(Stop) and ends."""
    pair = SessionPair(EVCCConfig(protocols=(proto,), mode="dc"), SECCConfig())

    def no_isolation(body):
        if val(body.EVSEProcessing) == "Finished":
            body.DC_EVSEStatus.EVSEIsolationStatus = isolation
            body.DC_EVSEStatus.EVSEStatusCode = code
    pair.tamper = _rewrite(proto, "CableCheckRes", no_isolation)
    r = pair.run()
    assert "PreChargeReq" not in pair.requests()
    assert _collapsed(pair.requests())[-4:] == ["CableCheckReq", "PowerDeliveryReq", "WeldingDetectionReq",
                                                "SessionStopReq"]
    assert pair.evcc.isolation_refused and "isolation" in r.reason


@pytest.mark.parametrize("proto", ["din", "iso2"])
def test_late_charger_enforced_by_default_tolerated_and_reported_on_request(proto):
    """A charger answering CurrentDemand in 0.3 s (recorded chargers: 0.26-0.57 s) breaks
    V2G_EVCC_Msg_Timeout (0.25 s): by default the EVCC ends the session; with
    late_responses="tolerate" it goes on and reports every violation as an event."""
    def slow(**kw):
        return SessionPair(EVCCConfig(protocols=(proto,), mode="dc", max_charge_loops=4, **kw),
                           SECCConfig(), latency=0.15)
    strict = slow()
    r = strict.run()
    assert not r.ok and "V2G_EVCC_Msg_Timeout" in r.reason and "CurrentDemandReq" in r.reason
    lenient = slow(late_responses="tolerate")
    r = lenient.run()
    assert r.ok, r.reason
    events = [e for e in lenient.events["evcc"] if isinstance(e, TimerViolation)]
    assert len(events) == 4 and events == lenient.evcc.violations
    assert all(e.timer == "V2G_EVCC_Msg_Timeout" and e.limit == 0.25 for e in events)


def test_tolerated_response_still_has_a_limit():
    """Tolerating late responses is bounded: no response at all still ends the session."""
    pair = SessionPair(EVCCConfig(protocols=("din",), mode="dc", late_responses="tolerate",
                                  late_response_limit=5.0), SECCConfig())
    pair.tamper = lambda d, p: None if d == "secc->evcc" and pair.evcc.state.name == "CABLE_CHECK" else p
    r = pair.run()
    assert not r.ok and "late_response_limit" in r.reason
    assert pair.evcc.violations and pair.evcc.violations[0].timer == "V2G_EVCC_Msg_Timeout"
    assert pair.clock.now < 1000 + 60
