"""``exi15118 evcc``: a vehicle (EVCC) running one whole charging session.

    exi15118 evcc --interface eth1 --protocol din|iso2|iso20 --mode ac|dc|ac_bpt|dc_bpt
        [--control scheduled|dynamic] [--tls --pki DIR] [--iso20-plain-tcp] [--trace FILE]
    exi15118 evcc --interface eth1 --protocol iso2 --mode ac --payment contract --pki DIR
        [--install|--update]                             # ISO 15118-2 Plug & Charge

Finds the charger by SDP (one line at info level, each repeated request at debug), runs
the session with a simulated battery (exi.v2g.session.controllers.SimulatedEV) and exits
0 after a normal SessionStop (Terminate or Pause), 1 otherwise.  The last stdout line is
a JSON result: {"event": "result", "ok": ..., "reason": ..., "paused": ..., "session_id":
..., "response_code": ..., "interrupted": ...}.

Ctrl-C ends the session as a car does: in the charge loop PowerDelivery(Stop),
WeldingDetection (DC) and SessionStop(Terminate); before the charge loop, or at a second
Ctrl-C, the connection is closed.  Then the result line, and exit code 130.
DIN SPEC 70121 has no TLS: with --tls only ISO 15118-2 is offered.

--payment contract (implies --tls) pays with the PKI folder's contract certificate
(certs/contractChain.pem, private_keys/contractLeaf.key); without one, or with --install,
it first installs one with the OEM provisioning certificate; --update (or a contract
ending within 14 days) updates it.  A new contract replaces the folder's contract files.
The result line then also carries "emaid" (the contract paid with).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from exi.cli import pki as pki_cli
from exi.cli.errors import INTERRUPTED, usage
from exi.cli.secc import LOG_FORMAT

STOP_GRACE = 10.0       # s: how long a Ctrl-C stop may take before the connection is closed


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
    p.add_argument("--iso20-plain-tcp", action="store_true",
                   help="TEST OPTION: offer ISO 15118-20 without TLS 1.3 (for test tools such as the "
                        "iso15118 package's simulators; the standard forbids it, [V2G20-1237])")
    p.add_argument("--tls", action="store_true", help="ask for TLS (ISO 15118-2 profile)")
    p.add_argument("--pki", type=Path, help="PKI folder (its V2G root is the trust anchor; in a folder "
                                            "of several profiles, that of the first TLS protocol offered)")
    pki_cli.add_password_option(p)
    p.add_argument("--payment", choices=("external", "contract"), default="external",
                   help="-2 payment: external (EIM, default) or contract (Plug & Charge; implies "
                        "--tls, needs --pki)")
    cert = p.add_mutually_exclusive_group()
    cert.add_argument("--install", action="store_true",
                      help="with --payment contract: install a new contract certificate first")
    cert.add_argument("--update", action="store_true",
                      help="with --payment contract: update the contract certificate first")
    p.add_argument("--require-ocsp", action="store_true",
                   help="with --payment contract: refuse a SECC that staples no OCSP status for "
                        "its certificate ([V2G2-873])")
    p.add_argument("--loops", type=int, default=10, help="charge loop requests before stopping (default 10)")
    p.add_argument("--loop-interval", type=float, default=0.1, help="seconds between loop requests (0.1)")
    p.add_argument("--pause", action="store_true", help="-2: end with SessionStop Pause")
    p.add_argument("--resume", metavar="SESSIONID", help="-2: resume a paused session (hex SessionID)")
    p.add_argument("--renegotiate-after", type=int, help="-2: renegotiate after N loop requests")
    p.add_argument("--precharge-tolerance", type=float, default=20.0,
                   help="V: PreCharge is done when the charger's voltage is this close to the battery's "
                        "(20, the IEC 61851-23 precharge tolerance)")
    p.add_argument("--tolerate-late", action="store_true",
                   help="go on when the charger breaks a timer (V2G_EVCC_Msg_Timeout, CableCheck, ...), "
                        "as many real cars do; every violation is logged and traced")
    p.add_argument("--soc", type=float, default=30.0, help="initial state of charge, %% (30)")
    p.add_argument("--host", help="skip SDP: SECC address (fe80::...)")
    p.add_argument("--port", type=int, help="skip SDP: SECC port")
    p.add_argument("--trace", type=Path, help="append every message as a JSON line to FILE")
    p.add_argument("--keylog", type=Path, help="TLS key log file (for Wireshark)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    p.set_defaults(func=run)
    return p


def _session_id(text: str) -> bytes:
    digits = text.strip()
    try:
        sid = bytes.fromhex(digits)
    except ValueError:
        sid = b""
    if not sid or len(sid) > 8 or len(digits) != 2 * len(sid):
        raise usage(f"--resume: a SessionID is 1 to 8 bytes in hex (e.g. 4758FDD348A5EB24), not {text!r}")
    return sid


def _tls_profile(protocols: tuple) -> str:
    """The TLS profile of the first protocol offered that runs over TLS."""
    return next((p for p in protocols if p in ("iso2", "iso20")), "iso2")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    protocols = tuple(x.strip() for x in args.protocol.split(",") if x.strip())
    if not protocols or any(x not in ("din", "iso2", "iso20") for x in protocols):
        raise usage(f"--protocol must be din, iso2, iso20 or a list of them, not {args.protocol!r}")
    if protocols == ("iso20",) and not args.tls and not args.iso20_plain_tcp:
        raise usage("ISO 15118-20 runs over TLS 1.3 only ([V2G20-1237]): add --tls --pki DIR "
                    "(a folder from `exi15118 pki create --profile iso20`), or the test option --iso20-plain-tcp")
    if args.mode.endswith("_bpt") and protocols != ("iso20",):
        raise usage("bidirectional modes exist in ISO 15118-20 only (--protocol iso20)")
    if "din" in protocols and args.mode == "ac":
        raise usage("DIN SPEC 70121 is DC only")
    certificate = "installation" if args.install else "update" if args.update else None
    if (certificate or args.require_ocsp) and args.payment != "contract":
        raise usage("--install/--update/--require-ocsp go with --payment contract")
    if args.payment == "contract":
        if "iso2" not in protocols:
            raise usage("--payment contract is ISO 15118-2 Plug & Charge: --protocol iso2")
        if args.pki is None:
            raise usage("--payment contract needs --pki DIR (create one with `exi15118 pki create --out DIR`)")
        args.tls = True
        from exi.v2g.pki import profile_folder
        pki_cli.check_pnc_evcc_pki(profile_folder(args.pki, "iso2"), certificate)
    args.certificate = certificate
    if args.tls:
        if args.pki is None:
            raise usage("--tls needs --pki DIR (create one with `exi15118 pki create --out DIR`)")
        if protocols == ("din",):
            raise usage("DIN SPEC 70121 has no TLS: use --tls with --protocol iso2")
        if "din" in protocols:
            logging.getLogger("exi.v2g.session").warning("DIN SPEC 70121 has no TLS: not offering it")
            protocols = tuple(x for x in protocols if x != "din")
        pki_cli.check_evcc_pki(args.pki, _tls_profile(protocols))
    resume = _session_id(args.resume) if args.resume else None
    result, interrupted = asyncio.run(_main(args, protocols, resume))
    line = {"event": "result", "ok": result.ok, "reason": result.reason, "paused": result.paused,
            "session_id": result.session_id.hex().upper() if result.session_id else None,
            "response_code": result.response_code, "interrupted": interrupted}
    if args.payment == "contract":
        line["emaid"] = args.wallet.contract.emaid if args.wallet.contract else None
    print(json.dumps(line), flush=True)
    if interrupted:
        return INTERRUPTED
    return 0 if result.ok else 1


def _pki_profile(args, protocols) -> str:
    from exi.v2g.pki import profile_folder
    from exi.v2g.session.drivers import pki_profile
    return pki_profile(profile_folder(args.pki, _tls_profile(protocols))) if args.tls else "iso2"


async def _main(args, protocols, resume):
    import signal

    from exi.v2g.session.controllers import SimulatedEV
    from exi.v2g.session.drivers import Tracer, evcc_tls_context, run_evcc
    from exi.v2g.session.evcc import EVCCConfig, EVCCSession
    from exi.v2g.session.events import SessionEnded
    config = EVCCConfig(protocols=protocols, mode=args.mode, max_charge_loops=args.loops,
                        loop_interval=args.loop_interval, stop="pause" if args.pause else "terminate",
                        resume_session_id=resume, renegotiate_after=args.renegotiate_after,
                        precharge_tolerance=args.precharge_tolerance, control=args.control,
                        iso20_plain_tcp=args.iso20_plain_tcp,
                        late_responses="tolerate" if args.tolerate_late else "enforce")
    ctx = evcc_tls_context(args.pki, args.keylog, _tls_profile(protocols)) if args.tls else None
    if args.payment == "contract":
        from exi.v2g.pnc import ContractWallet
        from exi.v2g.pnc import tls as pnc_tls
        from exi.v2g.pki import profile_folder
        folder = profile_folder(args.pki, "iso2")
        args.wallet = ContractWallet.from_folder(folder, password=pki_cli.password(args))
        config.payment, config.wallet, config.certificate = "contract", args.wallet, args.certificate
        ctx = pnc_tls.evcc_context(folder, keylog=args.keylog, require_staple=args.require_ocsp)
    tracer = Tracer(args.trace) if args.trace else None
    core = EVCCSession(config, SimulatedEV(soc_pct=args.soc), name="evcc")
    task = asyncio.ensure_future(run_evcc(args.interface, config, ssl=ctx, tracer=tracer,
                                          host=args.host, port=args.port, core=core,
                                          tls_profile=_pki_profile(args, protocols)))
    loop = asyncio.get_running_loop()
    log = logging.getLogger("exi.v2g.session.evcc")
    interrupts = []

    def on_interrupt():
        interrupts.append(loop.time())
        if len(interrupts) == 1 and core.request_stop("interrupted (Ctrl-C)"):
            log.info("Ctrl-C: stopping the session (PowerDelivery Stop, SessionStop); Ctrl-C again to quit")
            loop.call_later(STOP_GRACE, task.cancel)
        else:
            log.info("Ctrl-C: closing the connection")
            task.cancel()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_interrupt)
    try:
        result = await task
    except asyncio.CancelledError:
        where = "before the session started (SDP, connection)" if core.state.name == "IDLE" else \
            f"while waiting for {core.state.value}: connection closed"
        result = core.result or SessionEnded(False, f"interrupted (Ctrl-C) {where}", False,
                                             core.session_id if any(core.session_id) else None)
    finally:
        if tracer:
            tracer.close()
    return result, bool(interrupts)
