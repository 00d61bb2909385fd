"""Whole sessions between our EVCC and SECC cores, in memory with a fake clock."""
from __future__ import annotations

import exi
import pytest

from exi.v2g.session import (EVCCConfig, SECCConfig, SessionEstablished, SimulatedEV,
                             SimulatedEVSE, ProtocolNegotiated, diagram)
from exi.v2g.session.machine import EVCC_TABLES, SECC_TABLES, SECCState
from exi.v2g.session.secc import SessionStore
from exi.v2g.session._msg import val
from exi.v2g.session.testing import SessionPair


def run(proto, mode, secc=None, evse=None, ev=None, **kw):
    kw.setdefault("max_charge_loops", 5)
    pair = SessionPair(EVCCConfig(protocols=(proto,), mode=mode, **kw), secc, evse=evse, ev=ev)
    result = pair.run()
    return pair, result


def test_din_dc_full_session():
    pair, r = run("din", "dc")
    assert r.ok, r.reason
    req = pair.requests()
    # The DIN DC EIM sequence, with the Ongoing/loop repetitions collapsed.
    collapsed = [n for i, n in enumerate(req) if i == 0 or req[i - 1] != n]
    assert collapsed == [
        "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq",
        "ServicePaymentSelectionReq", "ContractAuthenticationReq", "ChargeParameterDiscoveryReq",
        "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
        "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]
    assert req.count("CurrentDemandReq") == 5
    assert pair.secc.ended.ok and pair.secc.state is SECCState.ENDED
    assert pair.closed["secc"] and pair.closed["evcc"] is not None
    # Every message on the wire decodes as the schema the session negotiated.
    for e in pair.log:
        assert exi.to_dict(e.message)


def test_iso2_dc_full_session():
    ev = SimulatedEV()
    pair, r = run("iso2", "dc", ev=ev)
    assert r.ok, r.reason
    collapsed = [n for i, n in enumerate(pair.requests()) if i == 0 or pair.requests()[i - 1] != n]
    assert collapsed == [
        "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq",
        "PaymentServiceSelectionReq", "AuthorizationReq", "ChargeParameterDiscoveryReq",
        "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
        "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]
    assert ev.energy_wh > 0           # the battery model was charged
    cpd = [e.message for e in pair.log if e.name == "ChargeParameterDiscoveryRes"][-1]
    assert cpd.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple[0].SAScheduleTupleID == 1
    pd = [e.message for e in pair.log if e.name == "PowerDeliveryReq"][0].Body.PowerDeliveryReq
    assert pd.ChargingProfile.ProfileEntry and pd.SAScheduleTupleID == 1


def test_iso2_ac_full_session_with_charging_profile():
    pair, r = run("iso2", "ac")
    assert r.ok, r.reason
    collapsed = [n for i, n in enumerate(pair.requests()) if i == 0 or pair.requests()[i - 1] != n]
    assert collapsed == [
        "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq",
        "PaymentServiceSelectionReq", "AuthorizationReq", "ChargeParameterDiscoveryReq",
        "PowerDeliveryReq", "ChargingStatusReq", "PowerDeliveryReq", "SessionStopReq"]
    res = [e.message.Body.ChargingStatusRes for e in pair.log if e.name == "ChargingStatusRes"]
    assert res[-1].MeterInfo.MeterReading > res[0].MeterInfo.MeterReading


def test_ev_stops_when_soc_target_reached():
    ev = SimulatedEV(soc_pct=89.9, target_soc=90.0)
    pair, r = run("iso2", "dc", ev=ev, max_charge_loops=None)
    assert r.ok and "charging complete" in r.reason


@pytest.mark.parametrize("mode", ["ac", "dc"])
def test_metering_receipt_when_charger_asks(mode):
    secc = SECCConfig(receipt_required=True, receipt_every=2)
    pair, r = run("iso2", mode, secc=secc, max_charge_loops=6)
    assert r.ok, r.reason
    req = pair.requests()
    assert req.count("MeteringReceiptReq") == 3
    # A receipt follows each loop response that had ReceiptRequired=true, and only those.
    loop = "CurrentDemandRes" if mode == "dc" else "ChargingStatusRes"
    seq = pair.names()
    for i, e in enumerate(pair.log):
        if e.name == loop and getattr(e.message.Body, loop).ReceiptRequired:
            assert seq[i + 1] == "MeteringReceiptReq"
    rec = [e.message.Body.MeteringReceiptReq for e in pair.log if e.name == "MeteringReceiptReq"][0]
    assert rec.SessionID == pair.secc.session_id and rec.MeterInfo.MeterID == "EXI-METER-1"


@pytest.mark.parametrize("mode", ["ac", "dc"])
def test_ev_initiated_renegotiation(mode):
    pair, r = run("iso2", mode, renegotiate_after=2, max_charge_loops=5)
    assert r.ok, r.reason
    pds = [e.message.Body.PowerDeliveryReq.ChargeProgress for e in pair.log if e.name == "PowerDeliveryReq"]
    assert [val(p) for p in pds] == ["Start", "Renegotiate", "Start", "Stop"]
    req = pair.requests()
    assert req.count("ChargeParameterDiscoveryReq") == 2
    # No second cable check after a renegotiation.
    assert req.count("CableCheckReq") == (3 if mode == "dc" else 0)


def test_secc_initiated_renegotiation():
    evse = SimulatedEVSE(notify_at={0.15: "ReNegotiation"})
    pair, r = run("iso2", "dc", evse=evse, max_charge_loops=8)
    assert r.ok, r.reason
    pds = [val(e.message.Body.PowerDeliveryReq.ChargeProgress) for e in pair.log if e.name == "PowerDeliveryReq"]
    assert pds == ["Start", "Renegotiate", "Start", "Stop"]


def test_secc_asks_to_stop():
    evse = SimulatedEVSE(notify_at={0.25: "StopCharging"})
    pair, r = run("din", "dc", evse=evse, max_charge_loops=100)
    assert r.ok and "StopCharging" in r.reason
    assert pair.requests().count("CurrentDemandReq") < 10


def test_pause_and_resume_iso2():
    store = SessionStore()
    secc = SECCConfig(store=store)
    pair1, r1 = run("iso2", "ac", secc=secc, stop="pause")
    assert r1.ok and r1.paused and pair1.secc.ended.paused
    stop = [e.message.Body.SessionStopReq for e in pair1.log if e.name == "SessionStopReq"][0]
    assert val(stop.ChargingSession) == "Pause"
    assert r1.session_id in store.paused

    pair2, r2 = run("iso2", "ac", secc=secc, resume_session_id=r1.session_id)
    assert r2.ok and not r2.paused
    est = [e for e in pair2.events["evcc"] if isinstance(e, SessionEstablished)][0]
    assert est.resumed and est.response_code == "OK_OldSessionJoined"
    assert r2.session_id == r1.session_id
    setup = [e.message for e in pair2.log if e.name == "SessionSetupReq"][0]
    assert setup.Header.SessionID == r1.session_id
    assert r1.session_id not in store.paused


def test_unknown_old_session_id_gets_a_new_session():
    pair, r = run("iso2", "ac", resume_session_id=bytes.fromhex("1122334455667788"))
    assert r.ok
    est = [e for e in pair.events["evcc"] if isinstance(e, SessionEstablished)][0]
    assert not est.resumed and est.response_code == "OK_NewSessionEstablished"
    assert r.session_id != bytes.fromhex("1122334455667788")


def test_terminated_session_cannot_be_resumed():
    secc = SECCConfig()
    _, r1 = run("iso2", "ac", secc=secc)
    pair2, _ = run("iso2", "ac", secc=secc, resume_session_id=r1.session_id)
    est = [e for e in pair2.events["evcc"] if isinstance(e, SessionEstablished)][0]
    assert not est.resumed


# -- SupportedAppProtocol negotiation ------------------------------------------------------

def sap_result(ev_protocols, secc_protocols, priority="ev"):
    pair = SessionPair(EVCCConfig(protocols=ev_protocols, mode="dc", max_charge_loops=1),
                       SECCConfig(protocols=secc_protocols, priority=priority))
    r = pair.run()
    neg = [e for e in pair.events["evcc"] if isinstance(e, ProtocolNegotiated)]
    return pair, r, neg


def test_sap_ev_priority_wins():
    pair, r, neg = sap_result(("din", "iso2"), ("iso2", "din"))
    assert r.ok and neg[0].schema == "din" and neg[0].schema_id == 1
    res = [e.message for e in pair.log if e.name == "supportedAppProtocolRes"][0]
    assert val(res.ResponseCode) == "OK_SuccessfulNegotiation" and res.SchemaID == 1


def test_sap_secc_priority_option():
    _, r, neg = sap_result(("din", "iso2"), ("iso2", "din"), priority="secc")
    assert r.ok and neg[0].schema == "iso2" and neg[0].schema_id == 2


def test_sap_picks_the_common_protocol():
    _, r, neg = sap_result(("iso2", "din"), ("din",))
    assert r.ok and neg[0].schema == "din" and neg[0].schema_id == 2


def test_sap_no_common_protocol():
    pair, r, neg = sap_result(("iso2",), ("din",))
    assert not r.ok and not neg
    assert r.response_code == "Failed_NoNegotiation"
    res = [e.message for e in pair.log if e.name == "supportedAppProtocolRes"][0]
    assert res.SchemaID is None
    assert not pair.secc.ended.ok and "no common protocol" in pair.secc.ended.reason


def test_sap_minor_deviation():
    from exi.messages import sap
    from exi.v2g.session import SECCSession
    secc = SECCSession(SECCConfig())
    secc.connection_made(0)
    req = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="urn:iso:15118:2:2013:MsgDef", VersionNumberMajor=2,
        VersionNumberMinor=1, SchemaID=7, Priority=1)])
    out = secc.receive(exi.encode(req), 0.0)
    res = exi.decode(out[1].payload, "sap")
    assert val(res.ResponseCode) == "OK_SuccessfulNegotiationWithMinorDeviation" and res.SchemaID == 7


# -- tables and diagrams -------------------------------------------------------------------

def test_diagrams_are_drawn_from_the_tables():
    for tables in (SECC_TABLES, EVCC_TABLES):
        for table in tables.values():
            m = diagram(table, "mermaid")
            d = diagram(table, "dot")
            assert m.startswith("stateDiagram-v2")
            assert d.startswith("digraph")
            for (frm, trigger), tos in table.items():
                for to in tos:
                    assert f"{frm.name} --> {to.name}: {trigger}" in m
                    assert f'{frm.name} -> {to.name} [label="{trigger}"]' in d
    with pytest.raises(ValueError):
        diagram(SECC_TABLES["din"], "svg")


def test_sessions_take_little_virtual_time():
    pair, r = run("iso2", "dc", loop_interval=0.05)
    assert r.ok and pair.clock.now - 1000 < 10
