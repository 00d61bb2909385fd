"""``exi15118 pki``: test certificate chains for ISO 15118-2 / -20.

    exi15118 pki create --out DIR [--profile iso2|iso20] [--curve p521|ed448] [--password PW]
                        [--ocsp-url URL]
    exi15118 pki ocsp --pki DIR [--host 127.0.0.1] [--port 8015] [--password PW]  # OCSP responder
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("pki", help="create test PKIs (V2G, CPO, CPS, OEM, MO chains)",
                              description=__doc__.replace("``", "`"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="pki_command", metavar="COMMAND")
    sub.required = True
    c = sub.add_parser("create", help="write all chains of a profile into a folder")
    c.add_argument("--out", required=True, type=Path, help="output folder (created)")
    c.add_argument("--profile", choices=("iso2", "iso20"), default="iso2",
                   help="iso2: ECDSA P-256/SHA-256 (default); iso20: P-521/SHA-512 or Ed448")
    c.add_argument("--curve", choices=("p256", "p521", "ed448"),
                   help="key type (default: p256 for iso2, p521 for iso20)")
    c.add_argument("--password", help="encrypt the private keys with this password")
    c.add_argument("--force", action="store_true", help="overwrite a non-empty folder")
    c.add_argument("--ocsp-url", default=None,
                   help="OCSP responder named in the certificates' AIA "
                        "(default http://127.0.0.1:8015/ocsp)")
    c.set_defaults(func=run)
    o = sub.add_parser("ocsp", help="serve OCSP for a PKI folder (HTTP, loopback by default)")
    o.add_argument("--pki", required=True, type=Path, help="folder written by `pki create`")
    o.add_argument("--host", default="127.0.0.1")
    o.add_argument("--port", type=int, default=8015)
    o.add_argument("--password", help="the password the PKI's keys were written with")
    o.set_defaults(func=run_ocsp)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from exi.v2g.pki import create_pki, write_pki
    except ImportError as e:            # cryptography missing
        print(f"exi15118 pki needs the 'cryptography' package: pip install cryptography ({e})",
              file=sys.stderr)
        return 2
    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"{out} is not empty; use --force to overwrite", file=sys.stderr)
        return 1
    try:
        extra = {"ocsp_url": args.ocsp_url} if getattr(args, "ocsp_url", None) else {}
        pki = create_pki(args.profile, curve=args.curve, **extra)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = write_pki(pki, out, password=args.password)
    print(f"{args.profile} PKI ({pki.curve}): {len(pki.certs)} certificates, "
          f"{len(files)} files in {out} (see {out / 'README.md'})")
    return 0


def run_ocsp(args: argparse.Namespace) -> int:
    import asyncio

    from exi.v2g.security.ocsp import OCSPResponder, serve
    try:
        responder = OCSPResponder.from_folder(args.pki, password=args.password)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: cannot load {args.pki}/ocsp/responder.json: {e}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with serve(responder, args.host, args.port) as url:
            print(f"OCSP responder for {len(responder.issuers)} CAs at {url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
