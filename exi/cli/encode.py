"""`exi15118 encode`: XML or JSON (the dict form of exi.to_dict) to EXI hex.

    exi15118 encode --schema din message.json
    exi15118 encode --schema iso2 message.xml
    exi15118 decode --schema din HEX | exi15118 encode --schema din -
"""
from __future__ import annotations

import argparse
import json
import sys

import exi
from exi.registry import SCHEMAS


def register(sub) -> None:
    p = sub.add_parser("encode", help="encode XML or JSON to EXI hex",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="XML or JSON file, - for stdin")
    p.add_argument("--schema", required=True, choices=list(SCHEMAS))
    p.add_argument("--v2gtp", action="store_true", help="prefix the V2GTP header")
    p.add_argument("--no-validate", action="store_true",
                   help="do not check length/range facets (write what a non-validating encoder writes)")
    p.set_defaults(func=run)


def run(args) -> int:
    text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    stripped = text.lstrip()
    if stripped.startswith("<"):
        msg = exi.from_xml(stripped, args.schema)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            print(f"exi15118 encode: neither XML nor JSON: {e}", file=sys.stderr)
            return 2
        if isinstance(doc, dict) and set(doc) == {"schema", "message"}:
            doc = doc["message"]
        msg = exi.from_dict(doc, args.schema)
    data = exi.encode(msg, validate=not args.no_validate)
    if args.v2gtp:
        from exi.registry import payload_type_for_schema
        pt = payload_type_for_schema(args.schema)
        data = bytes((1, 0xFE)) + pt.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    print(data.hex())
    return 0
