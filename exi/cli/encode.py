"""`exi15118 encode`: XML or JSON (the dict form of exi.to_dict) to EXI hex.

    exi15118 encode --schema din message.json
    exi15118 encode --schema iso2 message.xml
    exi15118 decode --schema din HEX | exi15118 encode --schema din -

XML with a DOCTYPE (entity declarations) is refused: V2G messages have none.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import exi
from exi.cli.errors import CLIError, usage
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


def _read_text(name: str) -> str:
    where = "stdin" if name == "-" else name
    if name != "-":
        if os.path.isdir(name):
            raise usage(f"{name} is a directory: give an XML or JSON file")
        if not os.path.exists(name):
            raise usage(f"{name}: no such file")
    data = sys.stdin.buffer.read() if name == "-" else open(name, "rb").read()
    if not data.strip():
        raise CLIError(f"{where} is empty (expected XML or JSON)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CLIError(f"{where} is not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}): "
                       "expected XML or JSON") from None


def _message(text: str, schema: str, where: str):
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        return exi.from_xml(stripped, schema)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"{where} is neither XML nor JSON (JSON: {e.msg} at line {e.lineno} "
                       f"column {e.colno})") from None
    if isinstance(doc, dict) and set(doc) == {"schema", "message"}:      # `decode --schema auto`
        doc = doc["message"]
    if not isinstance(doc, dict) or len(doc) != 1:
        got = (f"an object with {len(doc)} keys" if isinstance(doc, dict)
               else {list: "a list", type(None): "null", str: "a string", bool: "a boolean"}.get(
                   type(doc), "a number"))
        raise CLIError(f"{where}: expected a JSON object with one key, the root element "
                       f"(e.g. {{\"V2G_Message\": {{...}}}}), got {got}")
    return exi.from_dict(doc, schema)


def run(args) -> int:
    where = "stdin" if args.file == "-" else args.file
    msg = _message(_read_text(args.file), args.schema, where)
    data = exi.encode(msg, validate=not args.no_validate)
    if args.v2gtp:
        from exi.registry import payload_type_for_schema
        pt = payload_type_for_schema(args.schema)
        data = bytes((1, 0xFE)) + pt.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    print(data.hex())
    return 0
