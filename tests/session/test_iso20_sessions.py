"""ISO 15118-20 sessions (EIM) between our EVCC and SECC cores, in memory.

Every service (AC, DC, AC_BPT, DC_BPT) in both control modes; the TLS 1.3 rule of
SupportedAppProtocol; FAILED ends the session on both sides; the 0.5 s charge-loop
sequence timeout; EIM authorization failure; pause/resume, standby, schedule and
service renegotiation; EVSE notifications."""
from __future__ import annotations

import pytest

import exi
from exi.v2g.session.controllers import SimulatedEV, SimulatedEVSE
from exi.v2g.session.evcc import EVCCConfig
from exi.v2g.session.iso20 import ISO20EVCCSettings, ISO20SECCSettings
from exi.messages import iso20_cm as CM
from exi.v2g.session.iso20._msg import fr
from exi.v2g.session.iso20.secc import ISO20SECC
from exi.v2g.session.iso20.tables import SECC_TABLE, SECC20State
from exi.v2g.session.events import Send, SessionEnded
from exi.v2g.session.machine import diagram
from exi.v2g.session.secc import SECCConfig, SECCSession
from exi.v2g.session.testing import SessionPair

PAYLOAD_TYPES = {"sap": 0x8001, "iso20_cm": 0x8002, "iso20_ac": 0x8003, "iso20_dc": 0x8004}


def run(mode="dc", control="scheduled", *, secc=None, tls="TLSv1.3", ev=None, evse=None, **evcc):
    evcc.setdefault("max_charge_loops", 4)
    pair = SessionPair(EVCCConfig(protocols=("iso20", "iso2"), mode=mode, control=control, **evcc),
                       secc or SECCConfig(protocols=("iso20", "iso2", "din")),
                       ev=ev, evse=evse, tls_version=tls)
    return pair, pair.run()


def secc_end(pair) -> SessionEnded:
    return next(e for e in pair.events["secc"] if isinstance(e, SessionEnded))


@pytest.mark.parametrize("control", ["scheduled", "dynamic"])
@pytest.mark.parametrize("mode", ["dc", "dc_bpt", "ac", "ac_bpt"])
def test_whole_session_each_service_and_control_mode(mode, control):
    ev = SimulatedEV()
    pair, result = run(mode, control, ev=ev)
    assert result.ok, result.reason
    assert secc_end(pair).ok
    dc = mode.startswith("dc")
    expected = ["supportedAppProtocolReq", "SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
                "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
                "DC_ChargeParameterDiscoveryReq" if dc else "AC_ChargeParameterDiscoveryReq",
                "ScheduleExchangeReq"]
    expected += ["DC_CableCheckReq", "DC_PreChargeReq"] if dc else []
    loop = "DC_ChargeLoopReq" if dc else "AC_ChargeLoopReq"
    expected += ["PowerDeliveryReq", loop, "PowerDeliveryReq"]
    expected += ["DC_WeldingDetectionReq"] if dc else []
    expected += ["SessionStopReq"]
    requests = pair.requests()
    collapsed = [r for i, r in enumerate(requests) if i == 0 or r != requests[i - 1]]   # loops as one
    assert collapsed == expected
    assert requests.count(loop) == 4
    # Every message on the payload type of its message set (Table 12).
    for side in ("evcc", "secc"):
        for e in pair.events[side]:
            if isinstance(e, Send):
                assert e.payload_type == PAYLOAD_TYPES[e.schema], (e.name, hex(e.payload_type))
    assert ev.energy_wh > 0, "the battery was charged"
    neg = pair.secc.schema
    assert neg == ("iso20_dc" if dc else "iso20_ac")
    # The service and parameter set the EV selected match what it asked for.
    sel = next(e.message for e in pair.log if e.name == "ServiceSelectionReq").SelectedEnergyTransferService
    assert sel.ServiceID == {"ac": 1, "dc": 2, "ac_bpt": 5, "dc_bpt": 6}[mode]
    assert pair.secc.protocol.control == (2 if control == "dynamic" else 1)
    start = next(e.message for e in pair.log if e.name == "PowerDeliveryReq")
    if control == "scheduled":
        offered = next(e.message for e in pair.log if e.name == "ScheduleExchangeRes" and
                       e.message.EVSEProcessing == "Finished").Scheduled_SEResControlMode.ScheduleTuple
        assert 1 <= len(offered) <= 3
        assert all(t.ChargingSchedule.PriceLevelSchedule is not None for t in offered)
        assert start.EVPowerProfile.Scheduled_EVPPTControlMode.SelectedScheduleTupleID == 1
    else:
        se = next(e.message for e in pair.log if e.name == "ScheduleExchangeReq").Dynamic_SEReqControlMode
        assert se.DepartureTime > 0 and se.EVTargetEnergyRequest.Value > 0
    if mode.endswith("bpt"):
        assert start.BPT_ChannelSelection == "Charge"
    # MeterInfo in the first loop response ([V2G20-1833]).
    loop_res = [e.message for e in pair.log if e.name.endswith("ChargeLoopRes")]
    assert loop_res[0].MeterInfo is not None


def test_service_detail_parameter_sets():
    pair, result = run("dc_bpt", "dynamic")
    assert result.ok
    res = next(e.message for e in pair.log if e.name == "ServiceDetailRes")
    sets = {ps.ParameterSetID: {p.Name: p.intValue for p in ps.Parameter}
            for ps in res.ServiceParameterList.ParameterSet}
    assert sets[1]["ControlMode"] == 1 and sets[2]["ControlMode"] == 2
    assert sets[2]["BPTChannel"] == 1 and sets[2]["GeneratorMode"] == 1
    assert sets[1]["Connector"] == 2 and "EVSENominalVoltage" not in sets[1]


def test_iso20_needs_tls13_on_both_sides():
    # [V2G20-1237]: the EVCC does not offer -20 on plain TCP ...
    pair, result = run("dc", tls=None)
    assert result.ok and pair.secc.schema == "iso2"
    sap = pair.log[0].message
    assert [a.ProtocolNamespace for a in sap.AppProtocol] == ["urn:iso:15118:2:2013:MsgDef"]
    # ... and [V2G20-2356]: the SECC does not select it there, even when offered.
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", iso20_plain_tcp=True),
                       SECCConfig(protocols=("iso20", "iso2")))
    result = pair.run()
    assert not result.ok
    assert pair.log[1].message.ResponseCode == "Failed_NoNegotiation"
    # TLS 1.2 is not enough either.
    pair, result = run("dc", tls="TLSv1.2")
    assert pair.secc.schema == "iso2"
    # The documented test option on both sides allows plain TCP.
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", iso20_plain_tcp=True, max_charge_loops=2),
                       SECCConfig(protocols=("iso20",), iso20_plain_tcp=True))
    result = pair.run()
    assert result.ok and pair.secc.schema == "iso20_dc"


def _tamper(name, schema, change):
    def tamper(direction, payload):
        if direction != "evcc->secc":
            return payload
        try:
            msg = exi.decode(payload, schema)
        except exi.DecodeError:
            return payload
        if type(msg).__name__ == name:
            change(msg)
            return exi.encode(msg)
        return payload
    return tamper


def test_failed_code_ends_the_session_on_both_sides():
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc"), SECCConfig(protocols=("iso20",)),
                       tls_version="TLSv1.3")
    pair.tamper = _tamper("ServiceSelectionReq", "iso20_cm",
                          lambda m: setattr(m.SelectedEnergyTransferService, "ParameterSetID", 9))
    result = pair.run()
    assert not result.ok and result.response_code == "FAILED_ServiceSelectionInvalid"
    end = secc_end(pair)
    assert not end.ok and end.response_code == "FAILED_ServiceSelectionInvalid"
    assert pair.closed["secc"] and pair.closed["evcc"]


def test_out_of_sequence_request_gets_failed_sequence_error_with_mandatory_fields():
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc"), SECCConfig(protocols=("iso20",)),
                       tls_version="TLSv1.3")

    def swap(direction, payload):
        if direction == "evcc->secc":
            try:
                msg = exi.decode(payload, "iso20_cm")
            except exi.DecodeError:
                return payload
            if type(msg).__name__ == "AuthorizationSetupReq":
                from exi.messages import iso20_cm
                return exi.encode(iso20_cm.ServiceDiscoveryReq(Header=msg.Header))
        return payload
    pair.tamper = swap
    result = pair.run()
    assert not result.ok
    res = [e for e in pair.log if e.name == "ServiceDiscoveryRes"][0].message
    assert res.ResponseCode == "FAILED_SequenceError" and res.EnergyTransferServiceList is not None
    assert secc_end(pair).response_code == "FAILED_SequenceError"


def _requests(*schemas):
    return sorted({exi.schema(sid).qnames[q][1] for sid in schemas for q in exi.schema(sid).root.qnames
                   if exi.schema(sid).qnames[q][1].endswith("Req")})


def test_every_failed_response_is_encodable():
    """Every request that can reach the SECC (CommonMessages, and the service's own set) can
    be refused with a schema-valid response, also those outside the SECC's table (a
    CertificateInstallationReq or VehicleCheckOutReq once ended it with an internal
    error: their responses' mandatory content was missing; found by the secc fuzz target)."""
    secc = SECCSession(SECCConfig(protocols=("iso20",)))
    secc.session_id = b"\x01" * 8
    services = {"iso20_dc": (None, 2, 6), "iso20_ac": (None, 1, 5)}      # none selected yet, DC, DC_BPT...
    for schema in ("iso20_dc", "iso20_ac"):
        for service in services[schema]:
            for control in (None, 1, 2):        # before selection, scheduled, dynamic
                proto = ISO20SECC(secc, schema)
                proto.service, proto.control = service, control
                for name in _requests("iso20_cm", schema):
                    for code in ("FAILED", "FAILED_SequenceError"):
                        send = proto._respond(name, 0.0, code)
                        back = exi.decode(send.payload, send.schema)
                        assert back.ResponseCode == code, (schema, service, control, name)


def test_eim_authorization_failure_is_a_warning_and_the_ev_stops():
    pair, result = run("dc", evse=SimulatedEVSE(authorized=False))
    assert not result.ok and "WARNING_EIMAuthorizationFailure" in result.reason
    codes = [e.message.ResponseCode for e in pair.log if e.name == "AuthorizationRes"]
    assert codes[-1] == "WARNING_EIMAuthorizationFailure"
    assert pair.requests()[-1] == "SessionStopReq"
    assert secc_end(pair).ok          # the SECC saw an orderly SessionStop


def _no_eim(m):
    m.AuthorizationServices = ["PnC"]


def _no_offered_service(m):
    # ServiceID 2: DC (ISO 15118-20 Table 204)
    m.EnergyTransferServiceList.Service = [s for s in m.EnergyTransferServiceList.Service if s.ServiceID != 2]


def _no_dynamic_parameter_set(m):
    for ps in m.ServiceParameterList.ParameterSet:
        ps.Parameter = [p for p in ps.Parameter if p.Name != "ControlMode"]


@pytest.mark.parametrize("name,change,reason", [
    ("AuthorizationSetupRes", _no_eim, "the SECC does not offer EIM"),
    ("ServiceDiscoveryRes", _no_offered_service, "not offered"),
    ("ServiceDetailRes", _no_dynamic_parameter_set, "no parameter set with ControlMode"),
])
def test_ev_stops_orderly_where_the_secc_leaves_it_nothing(name, change, reason):
    """Where a response leaves the EV no way on, it sends SessionStopReq(Terminate) and
    ends with the reason, and the SECC sees an orderly stop (the EVCC's transition table
    once lacked these three stops: an internal error, found by the evcc fuzz target)."""
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", control="dynamic"),
                       SECCConfig(protocols=("iso20",)), tls_version="TLSv1.3")
    pair.tamper = _rewrite("secc->evcc", name, "iso20_cm", change)
    result = pair.run()
    assert not result.ok and reason in result.reason and "internal error" not in result.reason, result.reason
    assert pair.requests()[-1] == "SessionStopReq"
    assert secc_end(pair).ok, secc_end(pair).reason


@pytest.mark.parametrize("mode", ["ac", "ac_bpt", "dc"])
@pytest.mark.parametrize("exponent,value", [(12, 7557), (12, -7557), (0, -5)])
def test_scheduled_power_profile_stays_within_the_ev(mode, exponent, value):
    """A schedule's first power (a RationalNumber: up to 32767 x 10^127) is echoed in the
    PowerDeliveryReq profile only within what the EV can take, or give back with BPT (an
    AC schedule of 7.557 TW once ended the EVCC with an internal error; found by the evcc
    fuzz target)."""
    def huge(m):
        for t in m.Scheduled_SEResControlMode.ScheduleTuple:
            t.ChargingSchedule.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry[0].Power = \
                CM.RationalNumberType(Exponent=exponent, Value=value)
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode=mode, control="scheduled", max_charge_loops=2),
                       SECCConfig(protocols=("iso20",)), tls_version="TLSv1.3")
    pair.tamper = _rewrite("secc->evcc", "ScheduleExchangeRes", "iso20_cm", huge)
    result = pair.run()
    assert "internal error" not in result.reason, result.reason
    req = next(e.message for e in pair.log if e.name == "PowerDeliveryReq")
    power = fr(req.EVPowerProfile.EVPowerProfileEntries.EVPowerProfileEntry[0].Power)
    ev = pair.evcc.ev
    ev_max = ev.dc_limits().max_power if mode == "dc" else ev.ac_limits().nominal_voltage * ev.ac_limits().max_current * 3
    low = -ev_max if mode.endswith("bpt") else 0.0
    assert low <= power <= ev_max
    assert power == (ev_max if value > 0 else low if exponent else max(low, -5.0))


def test_charge_loop_sequence_timeout_is_half_a_second():
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", max_charge_loops=50),
                       SECCConfig(protocols=("iso20",)), tls_version="TLSv1.3")
    seen = []

    def drop_third_loop(direction, payload):
        if direction == "evcc->secc":
            try:
                if type(exi.decode(payload, "iso20_dc")).__name__ == "DC_ChargeLoopReq":
                    seen.append(pair.clock.now)
                    if len(seen) == 3:
                        return None
            except exi.DecodeError:
                pass
        return payload
    pair.tamper = drop_third_loop
    pair.run()
    end = secc_end(pair)
    assert not end.ok and "V2G_SECC_Sequence_Timeout (0.5 s)" in end.reason
    # The SECC ended exactly 0.5 s after its last loop response (fake clock).
    last_res = [e.time for e in pair.log if e.name == "DC_ChargeLoopRes"][-1]
    assert pair.secc.ended is end and pair.clock.now >= last_res + 0.5
    # The test option for slow peers replaces the 0.5 s in the loop only.
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", max_charge_loops=50,
                                  late_responses="tolerate"),
                       SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(loop_sequence_timeout=2.0)),
                       tls_version="TLSv1.3")
    seen.clear()
    pair.tamper = drop_third_loop
    pair.run()
    assert "V2G_SECC_Sequence_Timeout (2 s)" in pair.secc.ended.reason


def test_pause_and_resume_continue_at_charge_parameter_discovery():
    secc = SECCConfig(protocols=("iso20",))
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", stop="pause", max_charge_loops=2), secc,
                       tls_version="TLSv1.3")
    r1 = pair.run()
    assert r1.ok and r1.paused
    stop = [e.message for e in pair.log if e.name == "SessionStopReq"][-1]
    assert stop.ChargingSession == "Pause"
    pair2 = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", resume_session_id=r1.session_id,
                                   max_charge_loops=2), secc, tls_version="TLSv1.3")
    r2 = pair2.run()
    assert r2.ok, r2.reason
    assert [e.message.ResponseCode for e in pair2.log if e.name == "SessionSetupRes"] == ["OK_OldSessionJoined"]
    reqs = pair2.requests()
    assert reqs[2] == "DC_ChargeParameterDiscoveryReq"
    assert "AuthorizationReq" not in reqs and "ServiceSelectionReq" not in reqs
    # A paused session is resumed once; another vehicle gets a new session ([V2G20-2626]).
    pair3 = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", stop="pause", max_charge_loops=1), secc,
                        tls_version="TLSv1.3")
    r3 = pair3.run()
    other = SimulatedEV(evcc_id=bytes.fromhex("0A0A0A0A0A0A"))
    pair4 = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", resume_session_id=r3.session_id,
                                   max_charge_loops=1), secc, ev=other, tls_version="TLSv1.3")
    assert pair4.run().ok
    assert [e.message.ResponseCode for e in pair4.log if e.name == "SessionSetupRes"] == ["OK_NewSessionEstablished"]


def test_schedule_renegotiation_goes_back_to_schedule_exchange():
    pair, result = run("dc", "scheduled", max_charge_loops=6,
                       iso20=ISO20EVCCSettings(schedule_renegotiation_after=2))
    assert result.ok, result.reason
    reqs = pair.requests()
    progress = [e.message.ChargeProgress for e in pair.log if e.name == "PowerDeliveryReq"]
    assert progress == ["Start", "ScheduleRenegotiation", "Start", "Stop"]
    i = reqs.index("PowerDeliveryReq", reqs.index("DC_ChargeLoopReq"))
    assert reqs[i + 1] == "ScheduleExchangeReq" and reqs[i + 2] == "PowerDeliveryReq"
    assert "DC_CableCheckReq" not in reqs[i:]


def test_standby_and_its_exit():
    pair, result = run("dc", "dynamic", max_charge_loops=8,
                       iso20=ISO20EVCCSettings(standby_after=2, standby_loops=2))
    assert result.ok, result.reason
    progress = [e.message.ChargeProgress for e in pair.log if e.name == "PowerDeliveryReq"]
    assert progress == ["Start", "Standby", "Start", "Stop"]
    # Refused standby: WARNING_StandbyNotAllowed, the loop goes on charging.
    pair, result = run("dc", "dynamic", max_charge_loops=4, iso20=ISO20EVCCSettings(standby_after=2),
                       secc=SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(standby_allowed=False)))
    codes = [e.message.ResponseCode for e in pair.log if e.name == "PowerDeliveryRes"]
    assert "WARNING_StandbyNotAllowed" in codes


def test_service_renegotiation_runs_a_second_service_selection():
    pair, result = run("dc", "scheduled", max_charge_loops=2,
                       iso20=ISO20EVCCSettings(service_renegotiation=True))
    assert result.ok, result.reason
    stops = [e.message.ChargingSession for e in pair.log if e.name == "SessionStopReq"]
    assert stops == ["ServiceRenegotiation", "Terminate"]
    assert pair.requests().count("ServiceSelectionReq") == 2
    assert pair.requests().count("SessionSetupReq") == 1
    # A SECC that does not support it says so, and that FAILED ends the session.
    pair, result = run("dc", max_charge_loops=2, iso20=ISO20EVCCSettings(service_renegotiation=True),
                       secc=SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(service_renegotiation=False)))
    assert result.response_code == "FAILED_NoServiceRenegotiationSupported"
    assert next(e.message for e in pair.log
                if e.name == "ServiceDiscoveryRes").ServiceRenegotiationSupported is False


def test_evse_notification_terminate_stops_the_charge_loop():
    evse = SimulatedEVSE(notify_at={0.2: "StopCharging"})
    pair, result = run("ac", "dynamic", evse=evse, max_charge_loops=100)
    assert result.ok
    loop = [e.message for e in pair.log if e.name == "AC_ChargeLoopRes"]
    assert loop[-1].EVSEStatus.EVSENotification == "Terminate"
    assert len(loop) < 100 and pair.evcc.stop_reason == "the SECC asked to terminate"


def test_tables_draw():
    text = diagram(SECC_TABLE, "mermaid", "SECC iso20")
    assert "CHARGING --> POWER_STOPPED: PowerDeliveryReq" in text
    assert SECC20State.ENDED.name in text


def test_dynamic_bpt_discharge_drains_the_battery():
    ev = SimulatedEV(soc_pct=60.0)
    evse = SimulatedEVSE(bidirectional=True)
    pair, result = run("dc_bpt", "dynamic", ev=ev, evse=evse, max_charge_loops=10,
                       secc=SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(discharge_power=11000)))
    assert result.ok, result.reason
    currents = [e.message.EVSEPresentCurrent for e in pair.log if e.name == "DC_ChargeLoopRes"]
    assert currents[-1].Value < 0, "the EVSE sinks power"
    assert ev.soc_pct < 60.0 and ev.energy_wh < 0
    # A unidirectional EVSE never discharges, whatever the setting.
    ev = SimulatedEV(soc_pct=60.0)
    pair, result = run("dc_bpt", "dynamic", ev=ev, max_charge_loops=5,
                       secc=SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(discharge_power=11000)))
    assert result.ok and ev.soc_pct > 60.0


def test_evse_notification_pause_ends_with_a_paused_session():
    secc = SECCConfig(protocols=("iso20",))
    pair, result = run("dc", "dynamic", evse=SimulatedEVSE(notify_at={0.2: "Pause"}), max_charge_loops=100,
                       secc=secc)
    assert result.ok and result.paused
    assert [e.message.ChargingSession for e in pair.log if e.name == "SessionStopReq"] == ["Pause"]
    assert result.session_id in secc.store.paused


# -- EVSENotification: the EVCC acts on each of them --------------------------------------

def _notifications(pair, loop):
    return [e.message.EVSEStatus.EVSENotification for e in pair.log
            if e.name == loop and e.message.EVSEStatus is not None]


def test_evse_notification_service_renegotiation():
    """ServiceRenegotiation: the EV stops power (welding detection for DC) and sends
    SessionStop(ServiceRenegotiation); the same session goes on at ServiceDiscovery."""
    evse = SimulatedEVSE(notify_at={0.25: "ServiceRenegotiation"})
    pair, result = run("dc", "dynamic", evse=evse, max_charge_loops=6)
    assert result.ok, result.reason
    assert _notifications(pair, "DC_ChargeLoopRes") == ["ServiceRenegotiation"]
    reqs = pair.requests()
    i = reqs.index("DC_ChargeLoopReq")
    after = reqs[i:]
    assert after[after.index("PowerDeliveryReq") + 1] == "DC_WeldingDetectionReq"
    assert [e.message.ChargingSession for e in pair.log if e.name == "SessionStopReq"] == \
        ["ServiceRenegotiation", "Terminate"]
    assert reqs.count("ServiceSelectionReq") == 2 and reqs.count("SessionSetupReq") == 1
    assert reqs.count("DC_CableCheckReq") >= 2           # the output was off: CableCheck again
    # A SECC that said it does not support it never asks for it.
    evse = SimulatedEVSE(notify_at={0.25: "ServiceRenegotiation"})
    pair, result = run("ac", "dynamic", evse=evse, max_charge_loops=6,
                       secc=SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(service_renegotiation=False)))
    assert result.ok and _notifications(pair, "AC_ChargeLoopRes") == []
    assert pair.requests().count("ServiceSelectionReq") == 1


@pytest.mark.parametrize("mode,control", [("dc", "scheduled"), ("ac_bpt", "dynamic")])
def test_evse_notification_metering_confirmation(mode, control):
    """MeteringConfirmation: the SECC sends MeterInfo with it, the EV confirms that
    reading in SignedMeteringData (this SessionID, the control mode's part) and the loop
    goes on."""
    evse = SimulatedEVSE(notify_at={0.25: "MeteringConfirmation"}, bidirectional=mode.endswith("bpt"))
    pair, result = run(mode, control, evse=evse, max_charge_loops=6)
    assert result.ok, result.reason
    loop = "DC_ChargeLoopRes" if mode.startswith("dc") else "AC_ChargeLoopRes"
    assert _notifications(pair, loop) == ["MeteringConfirmation"]
    notified = next(e.message for e in pair.log if e.name == loop and e.message.EVSEStatus is not None)
    assert notified.MeterInfo is not None
    req = next(e.message for e in pair.log if e.name == "MeteringConfirmationReq")
    data = req.SignedMeteringData
    assert data.SessionID == result.session_id and data.Id == "meter1"
    assert data.MeterInfo.MeterID == notified.MeterInfo.MeterID
    assert data.MeterInfo.ChargedEnergyReadingWh == notified.MeterInfo.ChargedEnergyReadingWh
    if control == "scheduled":
        assert data.Scheduled_SMDTControlMode.SelectedScheduleTupleID is not None
    else:
        assert data.Dynamic_SMDTControlMode is not None
    assert [e.message.ResponseCode for e in pair.log if e.name == "MeteringConfirmationRes"] == ["OK"]
    assert evse.confirmed_readings == [(notified.MeterInfo.MeterID, notified.MeterInfo.ChargedEnergyReadingWh,
                                        notified.MeterInfo.BPT_DischargedEnergyReadingWh)]
    reqs = pair.requests()
    i = reqs.index("MeteringConfirmationReq")
    assert reqs[i + 1] == reqs[i - 1] and pair.evcc.protocol.metering_confirmations == 1
    assert reqs.count(loop[:-3] + "Req") == 6                  # the loop went on


def test_metering_confirmation_for_someone_elses_session_is_failed():
    def other_session(msg):
        msg.SignedMeteringData.SessionID = b"\x01" * 8
    evse = SimulatedEVSE(notify_at={0.25: "MeteringConfirmation"})
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", control="dynamic", max_charge_loops=6),
                       SECCConfig(protocols=("iso20",)), evse=evse, tls_version="TLSv1.3")
    pair.tamper = _tamper("MeteringConfirmationReq", "iso20_cm", other_session)
    result = pair.run()
    assert not result.ok and result.response_code == "FAILED"
    assert not secc_end(pair).ok and evse.confirmed_readings == []


def test_evse_notification_exit_standby_and_schedule_renegotiation():
    # ExitStandby: the EV would stay in standby for 50 responses; the SECC ends it.
    evse = SimulatedEVSE(notify_at={0.45: "ExitStandby"})
    pair, result = run("dc", "dynamic", evse=evse, max_charge_loops=10,
                       iso20=ISO20EVCCSettings(standby_after=2, standby_loops=50))
    assert result.ok, result.reason
    assert _notifications(pair, "DC_ChargeLoopRes") == ["ExitStandby"]
    progress = [e.message.ChargeProgress for e in pair.log if e.name == "PowerDeliveryReq"]
    assert progress == ["Start", "Standby", "Start", "Stop"]
    # ScheduleRenegotiation: back to ScheduleExchange, then PowerDelivery(Start).
    evse = SimulatedEVSE(notify_at={0.25: "ScheduleRenegotiation"})
    pair, result = run("ac", "scheduled", evse=evse, max_charge_loops=6)
    assert result.ok, result.reason
    progress = [e.message.ChargeProgress for e in pair.log if e.name == "PowerDeliveryReq"]
    assert progress == ["Start", "ScheduleRenegotiation", "Start", "Stop"]
    assert pair.requests().count("ScheduleExchangeReq") == 2


# -- AC_BPT discharge, dynamic: the SECC steers the AC power negative ---------------------

def test_dynamic_ac_bpt_discharge_drains_the_battery():
    ev = SimulatedEV(soc_pct=60.0)
    evse = SimulatedEVSE(bidirectional=True)
    secc = SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(discharge_power=11000))
    pair, result = run("ac_bpt", "dynamic", ev=ev, evse=evse, max_charge_loops=10, secc=secc)
    assert result.ok, result.reason
    res = [e.message.BPT_Dynamic_AC_CLResControlMode for e in pair.log if e.name == "AC_ChargeLoopRes"]
    # 11 kW over three phases, negative: the EVSE sinks power
    assert all(abs(fr(r.EVSETargetActivePower) + 11000 / 3) < 1 for r in res)
    assert fr(res[0].EVSETargetActivePower_L2) < 0 and fr(res[0].EVSETargetActivePower_L3) < 0
    reqs = [e.message.BPT_Dynamic_AC_CLReqControlMode for e in pair.log if e.name == "AC_ChargeLoopReq"]
    assert fr(reqs[-1].EVPresentActivePower) < 0                     # the EV says it gives power
    assert fr(reqs[-1].EVMaximumDischargePower_L3) > 0
    assert ev.soc_pct < 60.0 and ev.energy_wh < 0
    # the meter counts the discharged energy apart, and says so in MeterInfo
    meter = evse.meter(pair.clock.now)
    assert meter.energy_wh == 0 and meter.discharged_wh > 0
    assert abs(meter.discharged_wh + ev.energy_wh) <= 1          # what the EV lost, the EVSE took
    first = next(e.message for e in pair.log if e.name == "AC_ChargeLoopRes")
    assert first.MeterInfo.BPT_DischargedEnergyReadingWh is not None


def test_ac_bpt_discharge_stops_at_the_ev_minimum_soc():
    # 10 Wh battery: 11 kW takes 3 % per 0.1 s loop; at min_soc the EV's limit drops to 0
    ev = SimulatedEV(soc_pct=26.0, capacity_wh=10.0, min_soc=20.0)
    evse = SimulatedEVSE(bidirectional=True)
    secc = SECCConfig(protocols=("iso20",), iso20=ISO20SECCSettings(discharge_power=11000))
    pair, result = run("ac_bpt", "dynamic", ev=ev, evse=evse, max_charge_loops=8, secc=secc)
    assert result.ok, result.reason
    reqs = [e.message.BPT_Dynamic_AC_CLReqControlMode for e in pair.log if e.name == "AC_ChargeLoopReq"]
    res = [e.message.BPT_Dynamic_AC_CLResControlMode for e in pair.log if e.name == "AC_ChargeLoopRes"]
    assert fr(reqs[-1].EVMaximumDischargePower) == 0 and fr(res[-1].EVSETargetActivePower) == 0
    assert 16.0 < ev.soc_pct <= 20.0
    # A unidirectional EVSE never discharges, whatever the setting.
    ev = SimulatedEV(soc_pct=60.0)
    pair, result = run("ac_bpt", "dynamic", ev=ev, max_charge_loops=5, secc=secc)
    assert result.ok and ev.soc_pct > 60.0


@pytest.mark.parametrize("direction,ender", [("evcc->secc", "secc"), ("secc->evcc", "evcc")])
def test_undecodable_frame_ends_the_session_on_either_side(direction, ender):
    """Both roles read a -20 frame the same way (the cores' shared preamble): a frame that is
    no message of its set ends the session with the reason, no response."""
    seen = []

    def tamper(d, payload):
        if d == direction:
            seen.append(d)
            if len(seen) == 3:              # after SupportedAppProtocol and SessionSetup
                return b"\xff" * 6
        return payload
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc"), SECCConfig(protocols=("iso20",)),
                       tls_version="TLSv1.3")
    pair.tamper = tamper
    result = pair.run()
    assert not result.ok
    ended = result if ender == "evcc" else secc_end(pair)
    assert not ended.ok and ended.reason.startswith("undecodable iso20_cm message")


def _rewrite(direction, name, schema, change):
    """A tamper hook editing one message type on its way, re-encoded without the facet
    checks (non-strict EXI carries values beyond them)."""
    def tamper(d, payload):
        if d != direction:
            return payload
        try:
            msg = exi.decode(payload, schema)
        except exi.DecodeError:
            return payload
        if type(msg).__name__ != name:
            return payload
        change(msg)
        return exi.encode(msg, validate=False)
    return tamper


@pytest.mark.parametrize("name,schema,change,where", [
    ("SessionSetupReq", "iso20_cm", lambda m: setattr(m, "EVCCID", "A" * 60000), "EVCCID"),
    ("DC_ChargeLoopReq", "iso20_dc", lambda m: setattr(m.EVPresentVoltage, "Value", 40000), "Value"),
    ("SessionStopReq", "iso20_cm", lambda m: setattr(m, "EVTerminationExplanation", "x" * 500),
     "EVTerminationExplanation"),
])
def test_secc_answers_failed_to_a_request_beyond_the_schema(name, schema, change, where):
    """A -20 request that decodes but breaks the schema's facets gets the generic FAILED
    (with its mandatory fields), the session ends and nothing of it is kept."""
    secc = SECCConfig(protocols=("iso20",))
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", control="dynamic", stop="pause",
                                  max_charge_loops=2), secc, tls_version="TLSv1.3")
    pair.tamper = _rewrite("evcc->secc", name, schema, change)
    result = pair.run()
    res = [e.message for e in pair.log if e.name == name[:-3] + "Res"][-1]
    assert res.ResponseCode == "FAILED"
    assert exi.validate(res) is None                # a complete, schema-valid answer
    end = secc_end(pair)
    assert not end.ok and end.response_code == "FAILED" and "outside the schema" in end.reason
    assert where in end.reason
    assert not result.ok and result.response_code == "FAILED"       # the EVCC ends too (8.6)
    assert pair.secc.evcc_id != "A" * 60000
    assert secc.store.paused == {}          # the Pause of a refused SessionStop is not stored


def test_evcc_ends_on_a_response_beyond_the_schema():
    pair = SessionPair(EVCCConfig(protocols=("iso20",), mode="dc", control="dynamic", max_charge_loops=3),
                       SECCConfig(protocols=("iso20",)), tls_version="TLSv1.3")
    pair.tamper = _rewrite("secc->evcc", "DC_ChargeLoopRes", "iso20_dc",
                           lambda m: setattr(m.EVSEPresentCurrent, "Value", 40000))
    result = pair.run()
    assert not result.ok
    assert result.reason.startswith("DC_ChargeLoopRes from the SECC outside the schema")
    assert "EVSEPresentCurrent/Value" in result.reason
    assert pair.requests().count("DC_ChargeLoopReq") == 1      # nothing more sent after it
    assert pair.closed["evcc"]
