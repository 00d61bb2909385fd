"""`exi15118 decode`: EXI hex strings (or a pcap/pcapng capture) to XML or JSON.

    exi15118 decode --schema din 809a0211d63f74d2297ac9119400
    echo 80400040 | exi15118 decode --schema sap -
    exi15118 decode --schema auto --format xml HEX
    exi15118 decode capture.pcapng --format table
"""
from __future__ import annotations

import argparse
import json
import sys

import exi
from exi.capture import cli as capture_cli
from exi.registry import SCHEMAS

AUTO_ORDER = ("sap", "din", "iso2", "iso20_cm", "iso20_dc", "iso20_ac", "iso20_wpt", "iso20_acdp")


def register(sub) -> None:
    p = sub.add_parser("decode", help="decode EXI hex strings or a capture file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="HEX|FILE",
                   help="EXI streams in hex (a V2GTP header is skipped), - for hex lines on stdin, "
                        "or one pcap/pcapng capture")
    p.add_argument("--schema", default=None, choices=list(SCHEMAS) + ["auto"],
                   help="grammar to decode hex with (auto: the message set that decodes it as a whole "
                        "message; the choice is reported on stderr)")
    p.add_argument("--format", default=None, choices=("json", "xml", "jsonl", "table"),
                   help="json (default for hex), xml; jsonl/table for captures")
    p.add_argument("--fragment", action="store_true", help="decode as an EXI fragment (signed elements)")
    capture_cli.add_arguments(p, positional=False)
    p.set_defaults(func=run)


def _hex_inputs(inputs):
    for item in inputs:
        if item == "-":
            for line in sys.stdin:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line
        else:
            yield item


def _payload(text: str) -> bytes:
    data = bytes.fromhex("".join(text.split()))
    # a whole V2GTP frame: version 0x01, inverse 0xFE, 8-byte header
    if len(data) >= 8 and data[0] == 0x01 and data[1] == 0xFE:
        data = data[8:]
    return data


def run(args) -> int:
    single = len(args.inputs) == 1 and args.inputs[0] != "-"
    if (single or (args.inputs == ["-"] and args.schema is None)) and capture_cli.is_capture(args.inputs[0]):
        args.capture = args.inputs[0]
        return capture_cli.run(args)
    if args.schema is None:
        print("exi15118 decode: --schema is required for hex input (or --schema auto)", file=sys.stderr)
        return 2
    status = 0
    for text in _hex_inputs(args.inputs):
        try:
            data = _payload(text)
        except ValueError:
            print(f"exi15118 decode: not hex: {text[:40]!r}", file=sys.stderr)
            status = 1
            continue
        try:
            schema, result = _decode(data, args.schema, args.fragment)
        except exi.DecodeError as e:
            print(f"exi15118 decode: {e}", file=sys.stderr)
            status = 1
            continue
        if args.format == "xml":
            for m in result:
                print(exi.to_xml(m, pretty=True).rstrip())
        else:
            out = [exi.to_dict(m) for m in result]
            doc = out[0] if not args.fragment else out
            if args.schema == "auto":
                doc = {"schema": schema, "message": doc}
            print(json.dumps(doc, indent=None if args.format == "jsonl" else 2, ensure_ascii=False))
    return status


def _decode(data: bytes, schema: str, fragment: bool):
    if schema != "auto":
        if fragment:
            return schema, exi.decode_fragment(data, schema)
        return schema, [exi.decode(data, schema)]
    return _auto(data, fragment)


def _auto(data: bytes, fragment: bool):
    """The message set that decodes the whole stream as a message (as a fragment with
    --fragment); says on stderr which one, and when several or none do."""
    fits, errors = [], []
    for sid in AUTO_ORDER + (("xmldsig",) if fragment else ()):
        try:
            fits.append((sid, exi.decode_fragment(data, sid) if fragment else [exi.decode(data, sid)]))
        except exi.DecodeError as e:
            errors.append(f"{sid}: {e}")
    if not fits:
        raise exi.DecodeError("no message set decodes it as a message:\n  " + "\n  ".join(errors))
    sid, result = fits[0]
    others = ", ".join(s for s, _ in fits[1:])
    print(f"exi15118 decode: schema {sid}" + (f" (also fits: {others})" if others else ""),
          file=sys.stderr)
    return sid, result
