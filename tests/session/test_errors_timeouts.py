"""Error and timeout paths of the cores: response codes, timers (fake clock), bad frames."""
from __future__ import annotations

import exi
import pytest

from exi.messages import din, iso2
from exi.v2g.session import (Close, EVCCConfig, SECCConfig, SECCSession, Send, SessionEnded,
                             SimulatedEVSE)
from exi.v2g.session._msg import v2g, val
from exi.v2g.session.testing import SessionPair


def pair_for(proto="iso2", mode="dc", evse=None, ev=None, secc=None, **kw):
    kw.setdefault("max_charge_loops", 3)
    return SessionPair(EVCCConfig(protocols=(proto,), mode=mode, **kw), secc, evse=evse, ev=ev)


def modify(name, fn):
    """A tamper hook that rewrites the first message called ``name``."""
    done = []

    def tamper(direction, payload):
        for s in ("din", "iso2"):
            try:
                msg = exi.decode(payload, s)
                n = next(f for f in type(msg.Body).__slots__ if getattr(msg.Body, f) is not None)
            except Exception:
                continue
            if n == name and not done:
                done.append(1)
                fn(msg, getattr(msg.Body, n))
                return exi.encode(msg)
            return payload
        return payload
    return tamper


def drop(name, after=0):
    seen = []

    def tamper(direction, payload):
        for s in ("din", "iso2"):
            try:
                msg = exi.decode(payload, s)
                n = next(f for f in type(msg.Body).__slots__ if getattr(msg.Body, f) is not None)
            except Exception:
                continue
            if n == name:
                seen.append(1)
                if len(seen) > after:
                    return None
            return payload
        return payload
    return tamper


# -- SECC core fed directly ------------------------------------------------------------------

def secc_after_setup(proto="iso2"):
    from exi.messages import sap
    from exi.registry import SCHEMAS
    core = SECCSession(SECCConfig())
    core.connection_made(0.0)
    info = SCHEMAS[proto]
    out = core.receive(exi.encode(sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace=info.protocol_namespace, VersionNumberMajor=2, VersionNumberMinor=0,
        SchemaID=1, Priority=1)])), 0.1)
    m = din if proto == "din" else iso2
    out = core.receive(exi.encode(v2g(proto, b"\x00", "SessionSetupReq",
                                      m.SessionSetupReqType(EVCCID=b"\x01\x02\x03\x04\x05\x06"))), 0.2)
    assert core.session_id and val(response(out, proto).Body.SessionSetupRes.ResponseCode) == "OK_NewSessionEstablished"
    return core


def response(out, schema):
    sends = [o for o in out if isinstance(o, Send)]
    assert len(sends) == 1
    return exi.decode(sends[0].payload, schema)     # must decode: mandatory fields present


@pytest.mark.parametrize("proto", ["iso2", "din"])
def test_out_of_sequence_request_gets_failed_sequence_error(proto):
    core = secc_after_setup(proto)
    m = din if proto == "din" else iso2
    req = m.CurrentDemandReqType(
        DC_EVStatus=m.DC_EVStatusType(EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=50),
        EVTargetCurrent=m.PhysicalValueType(Multiplier=0, Unit="A", Value=10),
        ChargingComplete=False,
        EVTargetVoltage=m.PhysicalValueType(Multiplier=0, Unit="V", Value=400))
    out = core.receive(exi.encode(v2g(proto, core.session_id, "CurrentDemandReq", req)), 1.0)
    res = response(out, proto).Body.CurrentDemandRes
    assert val(res.ResponseCode) == "FAILED_SequenceError"
    assert res.DC_EVSEStatus is not None and res.EVSEPresentVoltage is not None
    assert isinstance(out[-1], Close) and not core.ended.ok
    assert core.ended.response_code == "FAILED_SequenceError"
    assert core.receive(b"\x80", 2.0) == []          # ended: nothing more


@pytest.mark.parametrize("proto", ["iso2", "din"])
def test_wrong_session_id_gets_failed_unknown_session(proto):
    core = secc_after_setup(proto)
    m = din if proto == "din" else iso2
    out = core.receive(exi.encode(v2g(proto, b"\x99" * 8, "ServiceDiscoveryReq",
                                      m.ServiceDiscoveryReqType())), 1.0)
    res = response(out, proto).Body.ServiceDiscoveryRes
    assert val(res.ResponseCode) == "FAILED_UnknownSession"
    assert res.ChargeService is not None         # mandatory content still there
    assert isinstance(out[-1], Close) and "SessionID" in core.ended.reason


def test_secc_sequence_timeout():
    core = secc_after_setup("iso2")
    assert core.next_deadline() == pytest.approx(60.2)
    assert core.handle_timer(60.1) == []
    out = core.handle_timer(60.2)
    assert isinstance(out[0], SessionEnded) and "V2G_SECC_Sequence_Timeout" in out[0].reason
    assert isinstance(out[-1], Close) and core.next_deadline() is None


def test_secc_undecodable_frame_ends_that_session_only():
    config = SECCConfig()
    a, b = SECCSession(config, name="a"), SECCSession(config, name="b")
    a.connection_made(0)
    b.connection_made(0)
    out = a.receive(b"\x80\x98\xff\xff\x00", 1.0)
    assert isinstance(out[-1], Close) and "undecodable" in a.ended.reason
    # The other session (same SECC config and store) goes on to a full session.
    pair = SessionPair(EVCCConfig(protocols=("iso2",), mode="ac", max_charge_loops=2), config)
    assert pair.run().ok


def test_secc_wrong_payload_type():
    core = SECCSession(SECCConfig())
    core.connection_made(0)
    out = core.receive(b"\x80", 1.0, payload_type=0x8002)
    assert isinstance(out[-1], Close) and "payload type 0x8002" in core.ended.reason


def test_secc_survives_a_controller_bug():
    class Broken(SimulatedEVSE):
        def authorize(self, now):
            raise RuntimeError("backend exploded")
    pair = pair_for("iso2", "ac", evse=Broken())
    r = pair.run()
    assert not r.ok and "connection lost" in r.reason
    assert "internal error" in pair.secc.ended.reason and "backend exploded" in pair.secc.ended.reason


def test_metering_receipt_not_asked_for():
    pair = pair_for("iso2", "ac")
    pair.start()
    while pair.evcc.state.name != "CHARGING_STATUS":
        pair.step()
    m = iso2.MeteringReceiptReqType(SessionID=pair.secc.session_id,
                                    MeterInfo=iso2.MeterInfoType(MeterID="x"))
    pair.inject("secc", exi.encode(v2g("iso2", pair.secc.session_id, "MeteringReceiptReq", m)))
    pair.run()
    sent = [e for e in pair.log if e.name == "MeteringReceiptRes"]
    assert sent and val(sent[0].message.Body.MeteringReceiptRes.ResponseCode) == "FAILED_SequenceError"


# -- response codes seen by the EVCC ------------------------------------------------------------

def test_authorization_refused():
    r = pair_for("iso2", "ac", evse=SimulatedEVSE(authorized=False)).run()
    assert not r.ok and r.response_code == "FAILED" and "AuthorizationReq" in r.reason


def test_tariff_selection_invalid():
    def bad_tuple(msg, body):
        body.SAScheduleTupleID = 7
    pair = pair_for("iso2", "dc")
    pair.tamper = modify("PowerDeliveryReq", bad_tuple)
    r = pair.run()
    assert r.response_code == "FAILED_TariffSelectionInvalid", r.reason


def test_charging_profile_invalid():
    def greedy(msg, body):
        body.ChargingProfile.ProfileEntry[0].ChargingProfileEntryMaxPower = \
            iso2.PhysicalValueType(Multiplier=3, Unit="W", Value=900)
    pair = pair_for("iso2", "ac")
    pair.tamper = modify("PowerDeliveryReq", greedy)
    r = pair.run()
    assert r.response_code == "FAILED_ChargingProfileInvalid", r.reason


def test_wrong_energy_transfer_mode():
    pair = SessionPair(EVCCConfig(protocols=("iso2",), mode="dc"),
                       SECCConfig(energy_modes=("AC_three_phase_core", "DC_extended")))
    pair.tamper = modify("ChargeParameterDiscoveryReq",
                         lambda m, b: setattr(b, "RequestedEnergyTransferMode", "DC_core"))
    r = pair.run()
    assert r.response_code == "FAILED_WrongEnergyTransferMode", r.reason


def test_evcc_refuses_missing_energy_mode():
    pair = SessionPair(EVCCConfig(protocols=("iso2",), mode="dc"),
                       SECCConfig(energy_modes=("AC_three_phase_core",)))
    r = pair.run()
    assert not r.ok and "does not offer DC_extended" in r.reason


@pytest.mark.parametrize("mode, change, reason", [
    ("ac", lambda b: setattr(b.AC_EVSEChargeParameter, "EVSENominalVoltage",
                             iso2.PhysicalValueType(Multiplier=3, Unit="V", Value=-2400)),
     "EVSENominalVoltage is -2.4e+06 V"),
    ("ac", lambda b: setattr(b.AC_EVSEChargeParameter, "EVSENominalVoltage",
                             iso2.PhysicalValueType(Multiplier=2, Unit="V", Value=500)),
     "EVSENominalVoltage is 50000 V"),
    ("dc", lambda b: setattr(b.SAScheduleList.SAScheduleTuple[0].PMaxSchedule.PMaxScheduleEntry[0], "PMax",
                             iso2.PhysicalValueType(Multiplier=3, Unit="W", Value=-50)),
     "PMax -50000 W"),
])
def test_evcc_refuses_charge_parameters_no_charger_can_mean(mode, change, reason):
    """The EVCC computes its charging profile from the SECC's PMax and nominal voltage: a
    negative or beyond-any-supply value ends the session with the reason instead of an
    internal error (found by the evcc fuzz target) or a profile built from it."""
    pair = pair_for("iso2", mode)
    pair.tamper = modify("ChargeParameterDiscoveryRes", lambda m, b: change(b))
    r = pair.run()
    assert not r.ok and reason in r.reason and "internal error" not in r.reason, r.reason
    assert "PowerDeliveryReq" not in pair.names("evcc->secc")


def test_din_payment_selection_invalid():
    pair = pair_for("din", "dc")
    pair.tamper = modify("ServicePaymentSelectionReq",
                         lambda m, b: setattr(b, "SelectedPaymentOption", "Contract"))
    r = pair.run()
    assert r.response_code == "FAILED_PaymentSelectionInvalid"


# -- EVCC timers with the fake clock --------------------------------------------------------------

def sent_at(pair, name):
    return [e.time for e in pair.log if e.name == name]


def test_current_demand_msg_timeout_250ms():
    pair = pair_for("iso2", "dc", max_charge_loops=None)
    pair.tamper = drop("CurrentDemandRes", after=2)
    r = pair.run()
    assert not r.ok and "V2G_EVCC_Msg_Timeout" in r.reason and "CurrentDemandReq within 0.25 s" in r.reason
    assert pair.clock.now - sent_at(pair, "CurrentDemandReq")[-1] == pytest.approx(0.25)


@pytest.mark.parametrize("proto,name,timeout", [("iso2", "PowerDeliveryReq", 5.0),
                                                ("iso2", "ServiceDetailReq", 5.0),
                                                ("din", "PowerDeliveryReq", 2.0),
                                                ("din", "SessionSetupReq", 2.0)])
def test_msg_timeouts_per_message(proto, name, timeout):
    pair = pair_for(proto, "dc")
    pair.tamper = drop(name.replace("Req", "Res"))
    r = pair.run()
    assert f"no response to {name} within {timeout:g} s" in r.reason
    assert pair.clock.now - sent_at(pair, name)[-1] == pytest.approx(timeout)


def test_ongoing_timeout_60s():
    pair = pair_for("iso2", "ac", evse=SimulatedEVSE(auth_polls=10 ** 9))
    r = pair.run()
    assert not r.ok and "V2G_EVCC_Ongoing_Timeout" in r.reason
    first = sent_at(pair, "AuthorizationReq")[1]          # first repeat after Ongoing
    assert 59.8 <= pair.clock.now - first + 0.1 <= 60.2


def test_cable_check_timeout_40s():
    pair = pair_for("din", "dc", evse=SimulatedEVSE(isolation_polls=10 ** 9))
    r = pair.run()
    assert "V2G_EVCC_CableCheck_Timeout" in r.reason
    assert pair.clock.now - sent_at(pair, "CableCheckReq")[0] == pytest.approx(40.0)


def test_pre_charge_timeout_7s():
    pair = pair_for("iso2", "dc", evse=SimulatedEVSE(slew=10.0))
    r = pair.run()
    assert "V2G_EVCC_PreCharge_Timeout" in r.reason
    assert pair.clock.now - sent_at(pair, "PreChargeReq")[0] == pytest.approx(7.0)


def test_communication_setup_timeout():
    pair = pair_for("iso2", "dc")
    pair.tamper = drop("SessionSetupRes")
    pair.secc.connection_made(pair.clock.now)
    pair._handle("evcc", pair.evcc.start(pair.clock.now, setup_started=pair.clock.now - 19.0))
    r = pair.run()
    assert "V2G_EVCC_CommunicationSetup_Timeout" in r.reason


def test_evcc_undecodable_response():
    pair = pair_for("iso2", "dc")
    n = []

    def garble(direction, payload):
        if direction == "secc->evcc":
            n.append(1)
            if len(n) == 3:
                return b"\x80\x98\x02\xff\xff\xff"
        return payload
    pair.tamper = garble
    r = pair.run()
    assert not r.ok and "undecodable iso2 message from the SECC" in r.reason
    assert pair.closed["evcc"]


def test_evcc_bad_v2gtp_header_closes():
    pair = pair_for("iso2", "dc")
    pair.start()
    pair.inject_bytes("evcc", b"\x02\xfd\x80\x01\x00\x00\x00\x01\x00")   # wrong inverse version
    r = pair.run()
    assert not r.ok


def test_evcc_unexpected_response():
    pair = pair_for("iso2", "ac")
    pair.start()
    pair.step()
    pair.step()         # SAP done
    pair.inject("evcc", exi.encode(v2g("iso2", b"\x00", "SessionStopRes",
                                       iso2.SessionStopResType(ResponseCode="OK"))))
    r = pair.run()
    assert not r.ok and "unexpected SessionStopRes" in r.reason
