"""``exi15118 evcc``: a vehicle (EVCC) running one whole charging session.

    exi15118 evcc --interface eth1 --protocol din|iso2|iso20 --mode ac|dc|ac_bpt|dc_bpt
        [--control scheduled|dynamic] [--tls --pki DIR] [--iso20-plain-tcp] [--trace FILE]

Finds the charger by SDP, runs the session with a simulated battery
(exi.v2g.session.controllers.SimulatedEV) and exits 0 after a normal SessionStop
(Terminate or Pause), 1 otherwise.  The last stdout line is a JSON summary.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from exi.cli.secc import LOG_FORMAT


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evcc", help="run a vehicle (EVCC) through one charging session",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interface", "-i", required=True, help="network interface (needs an fe80:: address)")
    p.add_argument("--protocol", required=True,
                   help="protocol(s) to offer, in priority order: din, iso2, iso20 or e.g. iso20,iso2,din")
    p.add_argument("--mode", choices=("ac", "dc", "ac_bpt", "dc_bpt"), required=True,
                   help="energy transfer service (ac_bpt/dc_bpt: ISO 15118-20 only)")
    p.add_argument("--control", choices=("scheduled", "dynamic"), default="scheduled",
                   help="ISO 15118-20 control mode (default scheduled)")
    p.add_argument("--late-responses", choices=("enforce", "tolerate"), default="enforce",
                   help="a charger that breaks a timer: end the session (enforce, the standard) or "
                        "log it and wait on (tolerate)")
    p.add_argument("--iso20-plain-tcp", action="store_true",
                   help="TEST OPTION: offer ISO 15118-20 without TLS 1.3 (for test tools such as the "
                        "iso15118 package's simulators; the standard forbids it, [V2G20-1237])")
    p.add_argument("--tls", action="store_true", help="ask for TLS (ISO 15118-2 profile)")
    p.add_argument("--pki", type=Path, help="PKI folder (its V2G root is the trust anchor)")
    p.add_argument("--loops", type=int, default=10, help="charge loop requests before stopping (default 10)")
    p.add_argument("--loop-interval", type=float, default=0.1, help="seconds between loop requests (0.1)")
    p.add_argument("--pause", action="store_true", help="-2: end with SessionStop Pause")
    p.add_argument("--resume", metavar="SESSIONID", help="-2: resume a paused session (hex SessionID)")
    p.add_argument("--renegotiate-after", type=int, help="-2: renegotiate after N loop requests")
    p.add_argument("--precharge-tolerance", type=float, default=20.0,
                   help="V: PreCharge is done when the charger's voltage is this close to the battery's (20)")
    p.add_argument("--soc", type=float, default=30.0, help="initial state of charge, %% (30)")
    p.add_argument("--host", help="skip SDP: SECC address (fe80::...)")
    p.add_argument("--port", type=int, help="skip SDP: SECC port")
    p.add_argument("--trace", type=Path, help="append every message as a JSON line to FILE")
    p.add_argument("--keylog", type=Path, help="TLS key log file (for Wireshark)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    protocols = tuple(x.strip() for x in args.protocol.split(",") if x.strip())
    if not protocols or any(x not in ("din", "iso2", "iso20") for x in protocols):
        print(f"exi15118 evcc: --protocol must be din, iso2, iso20 or a list of them, not {args.protocol!r}",
              file=sys.stderr)
        return 2
    if protocols == ("iso20",) and not args.tls and not args.iso20_plain_tcp:
        print("exi15118 evcc: ISO 15118-20 runs over TLS 1.3 only ([V2G20-1237]): add --tls --pki DIR "
              "(a folder from `exi15118 pki create --profile iso20`), or the test option --iso20-plain-tcp",
              file=sys.stderr)
        return 2
    if args.mode.endswith("_bpt") and protocols != ("iso20",):
        print("exi15118 evcc: bidirectional modes exist in ISO 15118-20 only (--protocol iso20)", file=sys.stderr)
        return 2
    if "din" in protocols and args.mode == "ac":
        print("exi15118 evcc: DIN SPEC 70121 is DC only", file=sys.stderr)
        return 2
    if args.tls and args.pki is None:
        print("exi15118 evcc: --tls needs --pki DIR (create one with `exi15118 pki create --out DIR`)",
              file=sys.stderr)
        return 2
    result = asyncio.run(_main(args, protocols))
    print(json.dumps({"event": "result", "ok": result.ok, "reason": result.reason,
                      "paused": result.paused,
                      "session_id": result.session_id.hex().upper() if result.session_id else None,
                      "response_code": result.response_code}), flush=True)
    return 0 if result.ok else 1


async def _main(args, protocols):
    from exi.v2g.session.controllers import SimulatedEV
    from exi.v2g.session.drivers import Tracer, evcc_tls_context, pki_profile, run_evcc
    from exi.v2g.session.evcc import EVCCConfig
    config = EVCCConfig(protocols=protocols, mode=args.mode, max_charge_loops=args.loops,
                        loop_interval=args.loop_interval, stop="pause" if args.pause else "terminate",
                        resume_session_id=bytes.fromhex(args.resume) if args.resume else None,
                        renegotiate_after=args.renegotiate_after,
                        precharge_tolerance=args.precharge_tolerance, control=args.control,
                        iso20_plain_tcp=args.iso20_plain_tcp, late_responses=args.late_responses)
    ctx = evcc_tls_context(args.pki, args.keylog) if args.tls else None
    tracer = Tracer(args.trace) if args.trace else None
    try:
        return await run_evcc(args.interface, config, ev=SimulatedEV(soc_pct=args.soc), ssl=ctx,
                              tracer=tracer, host=args.host, port=args.port,
                              tls_profile=pki_profile(args.pki) if args.tls else "iso2")
    finally:
        if tracer:
            tracer.close()
