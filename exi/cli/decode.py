"""`exi15118 decode`: EXI hex strings (or a pcap/pcapng capture) to XML or JSON.

    exi15118 decode --schema din 809a0211d63f74d2297ac9119400
    echo 80400040 | exi15118 decode --schema sap -
    exi15118 decode --schema auto --format xml HEX
    exi15118 decode capture.pcapng --format table --summary
    exi15118 decode captures/ --recursive --jobs 2 --format parquet --out dataset/
    exi15118 decode --live eth1 --format table

What an argument is decides how it is read: an existing file must be a pcap/pcapng
capture (by its magic number, whatever its name), a directory or several captures make a
campaign (exi.capture.campaign), `-` is stdin (a capture or hex lines), anything else must
be hex.
"""
from __future__ import annotations

import argparse
import json
import os
import string
import sys

import exi
from exi.capture import cli as capture_cli
from exi.cli.errors import BAD_INPUT, CLIError, usage
from exi.registry import SCHEMAS

AUTO_ORDER = ("sap", "din", "iso2", "iso20_cm", "iso20_dc", "iso20_ac", "iso20_wpt", "iso20_acdp")
HEXDIGITS = frozenset(string.hexdigits)

# Options that only make sense for one kind of input: dest -> flag as the user typed it.
# A new capture option goes into capture_cli.add_arguments and its dest into CAPTURE_ONLY;
# a new kind of input (a folder, a live interface) is decided in classify().
CAPTURE_ONLY = {"summary": "--summary", "filter": "--filter", "keylog": "--keylog",
                "recursive": "--recursive", "jobs": "--jobs", "out": "--out", "live": "--live"}
HEX_ONLY = {"schema": "--schema", "fragment": "--fragment"}
HEX_FORMATS = ("json", "jsonl", "xml")


def register(sub) -> None:
    p = sub.add_parser("decode", help="decode EXI hex strings or a capture file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="HEX|FILE|DIR",
                   help="EXI streams in hex (a V2GTP header is skipped), - for stdin (hex lines "
                        "or a capture), pcap/pcapng capture files, or a directory of them")
    p.add_argument("--schema", default=None, choices=list(SCHEMAS) + ["auto"],
                   help="hex input: grammar to decode with (auto: the message set that decodes it as "
                        "a whole message; the choice is reported on stderr)")
    p.add_argument("--format", default=None, choices=("json", "xml", "jsonl", "table", "parquet"),
                   help="json (default; one record per line for captures), xml, jsonl "
                        "(compact), table (captures), parquet (captures, with --out DIR: a dataset)")
    p.add_argument("--fragment", action="store_true",
                   help="hex input: decode as an EXI fragment (signed elements)")
    capture_cli.add_arguments(p, positional=False)
    p.set_defaults(func=run)


# --- what the arguments are ------------------------------------------------------------

def _hex_problem(text: str) -> str | None:
    """None for hex (whitespace allowed), else what is wrong with it."""
    digits = "".join(text.split())
    if not digits:
        return "empty"
    for i, c in enumerate(digits):
        if c not in HEXDIGITS:
            return f"not hex: {_shorten(text)} (character {c!r} at position {i})"
    if len(digits) % 2:
        return f"not hex: {_shorten(text)} (odd number of digits: {len(digits)})"
    return None


def _shorten(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def _check_file(path: str) -> None:
    """A file named on the command line must be a capture; say what it is otherwise."""
    problem = capture_cli.unreadable(path)
    if problem is None:
        return
    if os.path.isdir(path):
        raise usage(problem)
    with open(path, "rb") as f:
        head = f.read(16)
    if head and _hex_problem(head.decode("latin-1")) is None:
        problem += "; to decode hex lines from a file: exi15118 decode --schema SCHEMA - < FILE"
    raise CLIError(problem)


def classify(inputs: list[str]) -> str:
    """"capture" (one file, or a capture on stdin) or "hex"; raises CLIError saying what
    is wrong otherwise."""
    files, hexes, problems = [], [], []
    for item in inputs:
        if item == "-":
            continue
        if os.path.exists(item):
            files.append(item)
            continue
        problem = _hex_problem(item)
        if problem is None:
            hexes.append(item)
        elif os.sep in item or os.path.splitext(item)[1].lower() in capture_cli.CAPTURE_SUFFIXES:
            raise usage(f"{item}: no such file")
        else:
            problems.append(f"{problem}, and no file of that name")
    if problems:
        raise CLIError(problems[0])
    if "-" in inputs:
        if len(inputs) > 1:
            raise usage("- (stdin) cannot be combined with other inputs")
        head = capture_cli.peek_stdin(16)
        if not head:
            raise CLIError("no input on stdin (expected hex lines or a pcap/pcapng capture)")
        return "capture" if capture_cli.is_capture_magic(head) else "hex"
    if files and hexes:
        raise usage(f"give either hex or a capture file, not both ({files[0]} is a file, "
                    f"{_shorten(hexes[0])} is hex)")
    if len(files) > 1:
        raise usage(f"one capture file at a time (got {len(files)}: {', '.join(files[:3])}"
                    f"{', ...' if len(files) > 3 else ''})")
    if files:
        _check_file(files[0])
        return "capture"
    return "hex"


def _refuse(args, options: dict, kind: str) -> None:
    for dest, flag in options.items():
        if getattr(args, dest, None) not in (None, False):
            raise usage(f"{flag} does not apply to {kind}")


# --- run ----------------------------------------------------------------------------

def run(args) -> int:
    if args.live:
        if args.inputs:
            raise usage("--live reads an interface; give no input files with it")
        if args.format == "parquet" or args.out:
            raise usage("--live prints jsonl, table or xml; for a Parquet dataset record with "
                        "tshark -w FILE and decode the file")
        _refuse(args, HEX_ONLY, "live input")
        args.capture = None
        return capture_cli.run(args)
    if not args.inputs:
        raise usage("nothing to decode: give hex, - (stdin), capture files or a directory")
    if _campaign(args):
        _refuse(args, HEX_ONLY, "captures (their SupportedAppProtocol exchange gives the schema)")
        from exi.capture import campaign
        return campaign.run(args.inputs, recursive=args.recursive, jobs=args.jobs,
                            fmt={"json": "jsonl"}.get(args.format, args.format),
                            out_dir=args.out, summary=args.summary, keylog=args.keylog, filter=args.filter)
    kind = classify(args.inputs)
    if kind == "capture":
        _refuse(args, HEX_ONLY, "a capture (its SupportedAppProtocol exchange gives the schema)")
        args.capture = args.inputs[0]
        return capture_cli.run(args)
    _refuse(args, CAPTURE_ONLY, "hex input (only to captures)")
    if args.format not in (None, *HEX_FORMATS):
        raise usage(f"--format {args.format} does not apply to hex input (use json, jsonl or xml)")
    if args.schema is None:
        raise usage("--schema is required for hex input (or --schema auto)")
    status = 0
    for where, text in _hex_inputs(args.inputs):
        problem = _hex_problem(text)
        if problem is not None:
            _report(f"{where}{problem}")
            status = BAD_INPUT
            continue
        try:
            schema, result = _decode(_payload(text), args.schema, args.fragment)
        except exi.DecodeError as e:
            if getattr(args, "debug", False):
                raise
            _report(f"{where}{e}")
            status = BAD_INPUT
            continue
        _print(result, schema, args)
    return status


def _campaign(args) -> bool:
    """A directory, several captures, or a Parquet dataset: decoded by exi.capture.campaign."""
    if any(os.path.isdir(i) for i in args.inputs):
        return True
    if args.format == "parquet" or args.out:
        return True
    return len(args.inputs) > 1 and all(i != "-" and os.path.isfile(i) and capture_cli.is_capture(i)
                                        for i in args.inputs)


def _report(message: str) -> None:
    print(f"exi15118 decode: error: {message}", file=sys.stderr, flush=True)


def _hex_inputs(inputs):
    """(where, text): `where` prefixes messages when there is more than one input."""
    for item in inputs:
        if item != "-":
            yield ("" if len(inputs) == 1 else f"{_shorten(item, 16)}: "), item
            continue
        for n, line in enumerate(sys.stdin, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                yield f"stdin line {n}: ", line


def _payload(text: str) -> bytes:
    data = bytes.fromhex("".join(text.split()))
    # a whole V2GTP frame: version 0x01, inverse 0xFE, 8-byte header
    if len(data) >= 8 and data[0] == 0x01 and data[1] == 0xFE:
        data = data[8:]
    return data


def _print(result, schema, args) -> None:
    if args.format == "xml":
        for m in result:
            print(exi.to_xml(m, pretty=True).rstrip())
        return
    out = [exi.to_dict(m) for m in result]
    doc = out[0] if not args.fragment else out
    if args.schema == "auto":
        doc = {"schema": schema, "message": doc}
    print(json.dumps(doc, indent=None if args.format == "jsonl" else 2, ensure_ascii=False), flush=True)


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
