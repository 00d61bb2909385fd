"""Many ISO 15118-20 vehicles in one process: every session of the -20 test matrix through
the asyncio driver API (``run_evcc``: SDP, TLS 1.3 with the vehicle certificate, the EVCC
core), against one running SECC, one JSON line per session on stdout.

    python -m tests.session._iso20_evs INTERFACE PKI_DIR

One process instead of one ``exi15118 evcc`` per session: start-up (imports, grammars)
is paid once.  The independent sessions run at the same time (one SECC serving them all);
the resumed session follows its paused one.  Each line: name, ok, reason, paused,
session_id, tls, schema, the requests sent and what the trace says about them
(SessionSetupRes codes, PowerDelivery ChargeProgress, SessionStop ChargingSession),
the energy the simulated battery took.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

from exi.v2g.session.controllers import SimulatedEV
from exi.v2g.session.drivers import Tracer, evcc_tls_context, run_evcc
from exi.v2g.session.evcc import EVCCConfig, EVCCSession
from exi.v2g.session.iso20 import ISO20EVCCSettings

SERVICES = ("ac", "dc", "ac_bpt", "dc_bpt")
CONTROLS = ("scheduled", "dynamic")


def _config(mode: str, control: str, **kw) -> EVCCConfig:
    kw.setdefault("max_charge_loops", 3)
    return EVCCConfig(protocols=("iso20",), mode=mode, control=control, loop_interval=0.05, **kw)


# name -> EVCC configuration.  Standby, schedule and service renegotiation are started by
# the EV (ISO20EVCCSettings); AC where the point is the sequence, not DC's PreCharge.
SESSIONS = {
    **{f"{m}/{c}": _config(m, c) for m in SERVICES for c in CONTROLS},
    "standby": _config("dc", "dynamic", max_charge_loops=6,
                       iso20=ISO20EVCCSettings(standby_after=2, standby_loops=2)),
    "schedule_renegotiation": _config("ac", "scheduled", max_charge_loops=5,
                                      iso20=ISO20EVCCSettings(schedule_renegotiation_after=2)),
    "service_renegotiation": _config("ac_bpt", "dynamic", max_charge_loops=2,
                                     iso20=ISO20EVCCSettings(service_renegotiation=True)),
}


def _summary(name: str, core: EVCCSession, ev: SimulatedEV, result, trace: str) -> dict:
    lines = [json.loads(x) for x in trace.splitlines() if x]
    msgs = [(x["direction"], x["message"], x["content"].get(x["message"], {})) for x in lines if "message" in x]
    return {
        "name": name, "ok": result.ok, "reason": result.reason, "paused": result.paused,
        "session_id": result.session_id.hex().upper() if result.session_id else None,
        "tls": core.tls_version, "schema": core.schema,
        "requests": [m for d, m, _ in msgs if d == "EVCC->SECC"],
        "setup_codes": [c.get("ResponseCode") for _, m, c in msgs if m == "SessionSetupRes"],
        "header_session_ids": sorted({c.get("Header", {}).get("SessionID") for _, m, c in msgs
                                      if m.endswith("Res") and m != "supportedAppProtocolRes"}),
        "progress": [c.get("ChargeProgress") for _, m, c in msgs if m == "PowerDeliveryReq"],
        "power_delivery_codes": [c.get("ResponseCode") for _, m, c in msgs if m == "PowerDeliveryRes"],
        "stops": [c.get("ChargingSession") for _, m, c in msgs if m == "SessionStopReq"],
        "energy_wh": round(ev.energy_wh, 3),
    }


async def _session(name: str, config: EVCCConfig, interface: str, ctx) -> dict:
    ev = SimulatedEV()
    core = EVCCSession(config, ev, name=name)
    buf = io.StringIO()
    tracer = Tracer(buf)
    result = await run_evcc(interface, config, ssl=ctx, tracer=tracer, core=core, tls_profile="iso20")
    out = _summary(name, core, ev, result, buf.getvalue())
    print(json.dumps(out), flush=True)
    return out


async def _pause_and_resume(interface: str, ctx) -> None:
    first = await _session("pause", _config("ac", "dynamic", stop="pause"), interface, ctx)
    if first["ok"] and first["session_id"]:
        await _session("resume", _config("ac", "dynamic", resume_session_id=bytes.fromhex(first["session_id"])),
                       interface, ctx)


async def main(interface: str, pki: str) -> None:
    ctx = evcc_tls_context(pki, profile="iso20")
    await asyncio.gather(_pause_and_resume(interface, ctx),
                         *(_session(n, c, interface, ctx) for n, c in SESSIONS.items()))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
