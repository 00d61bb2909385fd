"""``exi15118 secc``: a charger (SECC) serving concurrent V2G sessions until stopped.

    exi15118 secc --interface eth1 [--protocols din,iso2] [--tls --pki DIR] [--trace FILE]
    exi15118 secc --interface eth1 --pnc --pki DIR      # + ISO 15118-2 Plug & Charge

Answers SDP on the interface, serves DIN SPEC 70121 DC and ISO 15118-2 AC/DC (EIM; Plug &
Charge with --pnc) sessions with a simulated power stage (exi.v2g.session.controllers.SimulatedEVSE).  Once
it listens it prints one JSON line on stdout:
    {"event": "ready", "interface": ..., "tcp_port": ..., "tls_port": ..., "protocols": [...]}
Ctrl-C (SIGINT) or SIGTERM stop it: open sessions are closed, then it prints
    {"event": "stopped", "requests": ..., "late": ..., "worst_ms": ...}
and exits 0.  DIN SPEC 70121 has no TLS: TLS connections are offered ISO 15118-2/-20 only.
With --tls the PKI folder is checked at start-up (see `exi15118 pki create`); an
encrypted key needs --pki-password or the EXI15118_PKI_PASSWORD environment variable.
A folder from `pki create --profile iso2,iso20` serves both on the one TLS port: an EV
whose ClientHello offers TLS 1.3 gets the -20 chain (TLS 1.3, vehicle certificate
required), any other the -2 chain (TLS 1.2).

--pnc (implies --tls) adds ISO 15118-2 Plug & Charge on the TLS server: Contract payment,
CertificateInstallation/Update, signed SalesTariffs and MeteringReceipts, with the PKI
folder's local backend (exi.v2g.backend.LocalBackend: certificate provisioning service,
mobility operator and OCSP responder of ocsp/responder.json) and the SECC leaf's OCSP
status stapled.  See the folder's README.md (of its iso2 part).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from exi.cli import pki as pki_cli
from exi.cli.errors import usage

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("secc", help="run a charger (SECC) serving V2G sessions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interface", "-i", required=True, help="network interface (needs an fe80:: address)")
    p.add_argument("--protocols", default="iso2,din",
                   help="supported protocols in preference order (din, iso2, iso20; default iso2,din)")
    p.add_argument("--iso20-loop-timeout", type=float, metavar="SECONDS",
                   help="TEST OPTION: V2G_SECC_Sequence_Timeout in the -20 charge loop instead of "
                        "the standard's 0.5 s (slow test peers)")
    p.add_argument("--iso20-plain-tcp", action="store_true",
                   help="TEST OPTION: select ISO 15118-20 on plain TCP too (for test tools such as the "
                        "iso15118 package's simulators; the standard forbids it, [V2G20-2356])")
    p.add_argument("--priority", choices=("ev", "secc"), default="ev",
                   help="who decides among common protocols (default: the EV's Priority)")
    p.add_argument("--tls", action="store_true",
                   help="also serve TLS (the profile(s) of the --pki folder: -2, -20, or both)")
    p.add_argument("--pki", type=Path, help="PKI folder from `exi15118 pki create` (with --tls); "
                                            "one from `--profile iso2,iso20` serves -2 and -20 TLS at once")
    pki_cli.add_password_option(p)
    p.add_argument("--tls-only", action="store_true", help="no plain TCP server")
    p.add_argument("--pnc", action="store_true",
                   help="ISO 15118-2 Plug & Charge over TLS with the PKI folder's local backend "
                        "(implies --tls; needs --pki)")
    p.add_argument("--port", type=int, help="fixed TCP port (default: random dynamic port)")
    p.add_argument("--receipt-required", action="store_true",
                   help="-2: ask for MeteringReceipts in the charge loop (see README deviations)")
    p.add_argument("--trace", type=Path, help="append every message as a JSON line to FILE")
    p.add_argument("--keylog", type=Path, help="TLS key log file (for Wireshark)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop (default asyncio; uvloop: pip install 'exi15118[fast]', "
                        "measured no faster here, see README capacity)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes serving the same ports (SO_REUSEPORT), e.g. one per core")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tls-port", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    protocols = tuple(x.strip() for x in args.protocols.split(",") if x.strip())
    bad = [x for x in protocols if x not in ("din", "iso2", "iso20")]
    if bad or not protocols:
        raise usage(f"--protocols: unsupported {', '.join(bad) or 'empty list'}: choose from din, iso2, iso20")
    if args.pnc:
        if args.pki is None:
            raise usage("--pnc needs --pki DIR (create one with `exi15118 pki create --out DIR`)")
        if "iso2" not in protocols:
            raise usage("--pnc is ISO 15118-2 Plug & Charge: add iso2 to --protocols")
        args.tls = True
    if args.tls_only and not args.tls:
        raise usage("--tls-only needs --tls")
    if args.tls and args.pki is None:
        raise usage("--tls needs --pki DIR (create one with `exi15118 pki create --out DIR`)")
    if args.pki is not None and not args.tls:
        raise usage("--pki is used with --tls only")
    if args.tls and "iso2" not in protocols and "iso20" not in protocols:
        raise usage("DIN SPEC 70121 has no TLS: --tls serves ISO 15118-2 or -20 (--protocols iso2,din or iso20)")
    if args.tls:
        pki_cli.check_secc_pki(args.pki, pki_cli.password(args), protocols)
        _warn_one_tls_profile(args.pki, protocols)
    if args.pnc:
        from exi.v2g.pki import profile_folder
        pki_cli.check_pnc_secc_pki(profile_folder(args.pki, "iso2"))
    return _event_loop(args.loop)(_main(args, protocols))


def _event_loop(choice: str):
    """asyncio's event loop, or uvloop's when asked for (benchmarks/bench_secc_capacity.py
    --loop compares them)."""
    if choice != "uvloop":
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        raise usage("--loop uvloop: uvloop is not installed (pip install uvloop, or "
                    "pip install 'exi15118[fast]')") from None
    return uvloop.run


def _warn_one_tls_profile(pki: Path, protocols: tuple) -> None:
    """-2 and -20 asked for, but the folder has the chains of one of them."""
    from exi.v2g.session.drivers import pki_profiles
    held = pki_profiles(pki)
    missing = [p for p in ("iso2", "iso20") if p in protocols and p not in held]
    if len(held) == 1 and missing:
        logging.getLogger("exi.v2g.session").warning(
            "--pki %s holds %s chains only: %s EVs cannot use TLS here (a folder from "
            "`exi15118 pki create --profile iso2,iso20` serves both)", pki, held[0], ", ".join(missing))


async def _main(args, protocols) -> int:
    from exi.v2g.session import workers
    from exi.v2g.session.drivers import (Tracer, pki_profile, pki_profiles, secc_tls_context,
                                         secc_tls_contexts, serve_secc)
    from exi.v2g.session.secc import SECCConfig
    config = SECCConfig(protocols=protocols, priority=args.priority,
                        receipt_required=args.receipt_required, iso20_plain_tcp=args.iso20_plain_tcp)
    if args.iso20_loop_timeout is not None:
        from exi.v2g.session.iso20 import ISO20SECCSettings
        config.iso20 = ISO20SECCSettings(loop_sequence_timeout=args.iso20_loop_timeout)
    stop = asyncio.Event()              # Ctrl-C/SIGTERM from here on: a clean stop, no traceback
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ctx = None
    if args.tls and len(pki_profiles(args.pki)) > 1:    # -2 and -20 chains: one per ClientHello
        ctx = secc_tls_contexts(args.pki, args.keylog, pki_cli.password(args), protocols)
    elif args.tls:
        ctx = secc_tls_context(args.pki, args.keylog, pki_cli.password(args))
    refresher = None
    if args.pnc:                                        # the -2 context staples, knows trusted_ca_keys
        pnc_ctx, refresher = await _pnc(args, config)
        ctx = {**ctx, "iso2": pnc_ctx} if isinstance(ctx, dict) else pnc_ctx
    tracer = Tracer(args.trace) if args.trace else None
    service = await serve_secc(args.interface, config, tls_context=ctx, tls_only=args.tls_only,
                               tracer=tracer, port=args.port, freeze_gc=True,
                               tls_profile=pki_profile(args.pki) if args.tls else "iso2",
                               **workers.serve_options(args))
    pool = workers.WorkerPool.start(args, sys.argv[1:], service.tcp_port, service.tls_port)
    print(json.dumps({"event": "ready", "interface": args.interface, "tcp_port": service.tcp_port,
                      "tls_port": service.tls_port, "protocols": list(protocols)}), flush=True)
    logging.getLogger("exi.v2g.session").info(
        "SECC ready on %s: tcp port %s, tls port %s, protocols %s", args.interface,
        service.tcp_port, service.tls_port, ",".join(protocols))
    log = logging.getLogger("exi.v2g.session")
    try:
        await stop.wait()
        open_sessions = sum(len(s.connections) for s in service.servers)
        log.info("SECC stopping%s", f": closing {open_sessions} open session(s)" if open_sessions else "")
    finally:
        if refresher is not None:
            refresher.cancel()
        await service.close()
        if tracer:
            tracer.close()
    st = service.stats
    result = {"event": "stopped", "requests": st.count, "late": st.late,
              "worst_ms": round(st.worst * 1000, 3)}
    for w in pool.stop() if pool else []:
        result.update(requests=result["requests"] + w["requests"], late=result["late"] + w["late"],
                      worst_ms=max(result["worst_ms"], w["worst_ms"]))
    print(json.dumps(result), flush=True)
    return 0


async def _pnc(args, config):
    """Plug & Charge: the local backend, the contract checks, the stapling TLS context;
    returns (context, the task that refreshes the staple)."""
    from exi.v2g.backend import LocalBackend
    from exi.v2g.pnc import SECCPnCConfig
    from exi.v2g.pnc import tls as pnc_tls
    log = logging.getLogger("exi.v2g.session")
    from exi.v2g.pki import profile_folder
    pw = pki_cli.password(args)
    folder = profile_folder(args.pki, "iso2")
    backend = LocalBackend.from_folder(folder, password=pw)
    config.pnc = SECCPnCConfig.from_folder(folder, password=pw, backend=backend)
    ctx, cache = pnc_tls.secc_context(folder, password=pw, keylog=args.keylog)

    async def refresh():
        while True:
            if await cache.refresh(backend):
                log.debug("OCSP staple of the SECC leaf refreshed")
            else:
                log.warning("no OCSP staple for the SECC leaf: %s", cache.error)
            await asyncio.sleep(pnc_tls.REFRESH_EVERY.total_seconds())
    task = asyncio.ensure_future(refresh())
    return ctx, task
