"""A recorded ISO 15118-20 session of independent implementations (dSPACE DS5366 and
Josev, AC_BPT over plain TCP; shared/vectors/captures/dspace-group+dsV2Gshark)
replayed into our -20 SECC (its requests) and our -20 EVCC (its responses)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import exi
import exi.capture
from exi.v2g.session.controllers import SimulatedEVSE
from exi.v2g.session.events import Send, SessionEnded
from exi.v2g.session.evcc import EVCCConfig, EVCCSession
from exi.v2g.session.iso20 import ISO20SECCSettings
from exi.v2g.session.secc import SECCConfig, SECCSession

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EXI_SHARED_VECTORS", REPO.parent / "shared" / "vectors"))
CAPTURE = SHARED / "captures/dspace-group+dsV2Gshark/Wireshark/dsV2Gshark_examples/ISO-20_BPT_AC_DS5366_Josev.pcapng"
EV, CHARGER = "EVCC->SECC", "SECC->EVCC"


@pytest.fixture(scope="module")
def records():
    if not CAPTURE.exists():
        pytest.fail(f"{CAPTURE} missing: check out the shared vectors next to the repository, or set "
                    "EXI_SHARED_VECTORS to the vectors directory", pytrace=False)
    recs = [r for r in exi.capture.read(CAPTURE) if r.stream is not None and r.name and not r.error]
    assert recs[0].name == "supportedAppProtocolReq"
    return recs


def test_recorded_ev_requests_into_our_secc(records):
    sid = next(r.message.Header.SessionID for r in records if r.name == "SessionSetupRes")
    offered = next(r.message for r in records if r.name == "ScheduleExchangeRes").Scheduled_SEResControlMode
    ids = tuple(t.ScheduleTupleID for t in offered.ScheduleTuple)     # the recorded charger's ids
    secc = SECCSession(SECCConfig(protocols=("iso20",), iso20_plain_tcp=True, session_id_factory=lambda: sid,
                                  iso20=ISO20SECCSettings(schedule_tuple_ids=ids)),
                       SimulatedEVSE(auth_polls=0, isolation_polls=0), name="replay")
    secc.connection_made(records[0].time)
    answered = []
    for i, r in enumerate(records):
        if r.direction != EV:
            continue
        out = secc.receive(r.exi, r.time, r.payload_type)
        sent = [e for e in out if isinstance(e, Send)]
        assert sent, f"no answer to {r.name}: {secc.ended}"
        recorded = records[i + 1]
        assert sent[0].name == recorded.name
        code = str(getattr(sent[0].message.ResponseCode, "value", sent[0].message.ResponseCode))
        assert not code.startswith(("FAILED", "Failed")), (r.name, code, secc.ended)
        answered.append(sent[0].name)
    assert answered[-1] == "SessionStopRes" and secc.ended.ok
    assert answered.count("AC_ChargeLoopRes") == 11
    assert secc.protocol.service == 5 and secc.schema == "iso20_ac"


def test_recorded_charger_responses_into_our_evcc(records):
    """Our EVCC against the recorded responses: each of our requests gets the next
    recorded response of the same name."""
    responses = [r for r in records if r.direction == CHARGER]
    sel = next(r.message for r in records if r.name == "ServiceSelectionReq").SelectedEnergyTransferService
    detail = next(r.message for r in records if r.name == "ServiceDetailRes")
    sets = {ps.ParameterSetID: {p.Name: p.intValue for p in ps.Parameter}
            for ps in detail.ServiceParameterList.ParameterSet}
    control = "dynamic" if sets[sel.ParameterSetID]["ControlMode"] == 2 else "scheduled"
    evcc = EVCCSession(EVCCConfig(protocols=("iso20",), mode="ac_bpt", control=control, iso20_plain_tcp=True,
                                  max_charge_loops=11, loop_interval=0.0), name="replay")
    out = evcc.start(records[0].time)
    sent_names = []
    for res in responses:
        sends = [e for e in out if isinstance(e, Send)]
        while not sends and evcc.result is None and evcc.next_deadline() is not None:
            out = evcc.handle_timer(evcc.next_deadline())
            sends = [e for e in out if isinstance(e, Send)]
        assert sends, f"our EVCC sent nothing before {res.name}: {evcc.result}"
        sent_names.append(sends[0].name)
        assert sends[0].name[:-3] == res.name[:-3], (sends[0].name, res.name)
        out = evcc.receive(res.exi, res.time, res.payload_type)
    assert isinstance(evcc.result, SessionEnded) and evcc.result.ok, evcc.result
    assert sent_names[-1] == "SessionStopReq"


def test_summary_judges_the_iso20_charge_loop_sequence_timeout(records):
    """decode --summary: the recorded loop keeps V2G_SECC_Sequence_Timeout (0.5 s after a
    charge-loop response, Tables 216-218); a request delayed past it is reported."""
    from exi.capture.summary import summarize
    seq = "V2G_SECC_Sequence_Timeout"
    s = summarize(records)["sessions"][0]
    assert s["schema"].startswith("iso20") and not [x for x in s["late_responses"] if x["timer"] == seq]
    loop_reqs = [i for i, r in enumerate(records) if r.name == "AC_ChargeLoopReq"]
    i = loop_reqs[3]
    prev_res = records[i - 1]
    assert prev_res.name == "AC_ChargeLoopRes"
    late = list(records)
    late[i] = exi.capture.MessageRecord(
        prev_res.time + 0.7, records[i].frame, records[i].stream, records[i].direction, records[i].src,
        records[i].sport, records[i].dst, records[i].dport, records[i].transport, records[i].payload_type,
        records[i].schema, records[i].schema_guessed, records[i].name, records[i].content,
        exi=records[i].exi, message=records[i].message)
    s = summarize(late)["sessions"][0]
    hits = [x for x in s["late_responses"] if x["timer"] == seq]
    assert len(hits) == 1 and hits[0]["limit"] == 0.5 and hits[0]["message"] == "AC_ChargeLoopReq"
    assert abs(hits[0]["response_time"] - 0.7) < 1e-6
