"""``exi15118 pki``: test certificate chains for ISO 15118-2 / -20.

    exi15118 pki create --out DIR [--profile iso2|iso20] [--curve p521|ed448] [--password PW]
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
    c.set_defaults(func=run)
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
        pki = create_pki(args.profile, curve=args.curve)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = write_pki(pki, out, password=args.password)
    print(f"{args.profile} PKI ({pki.curve}): {len(pki.certs)} certificates, "
          f"{len(files)} files in {out} (see {out / 'README.md'})")
    return 0
