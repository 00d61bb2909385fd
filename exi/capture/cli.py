"""`decode` of capture files: options and runner for the exi15118 CLI.

The lead's `exi15118 decode` calls add_arguments(parser) once and run(args) when its
input is a capture (see is_capture()).  Options the caller's parser already defines
(e.g. its own --format) are not added twice; run() maps json -> jsonl.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from . import render
from ._pcap import is_capture as _magic_ok
from .reader import CaptureReader, TsharkMissing

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dump")


def is_capture(path: str) -> bool:
    """True for FILE.pcap/.pcapng (or any file with pcap/pcapng magic), and for "-" when
    stdin starts with pcap magic (peeked, not consumed)."""
    if path == "-":
        buf = sys.stdin.buffer
        head = buf.peek(4)[:4] if hasattr(buf, "peek") else b""
        return _magic_ok(head)
    if path.lower().endswith(CAPTURE_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            return _magic_ok(f.read(4))
    except OSError:
        return False


def add_arguments(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    have = set(parser._option_string_actions)      # skip what the caller already defines

    def opt(flag, **kw):
        if flag not in have:
            parser.add_argument(flag, **kw)
    if positional:
        parser.add_argument("capture", help="pcap/pcapng file, or - for stdin")
    opt("--format", choices=render.FORMATS, default=None,
        help="jsonl (default), xml, or table (one line per message)")
    opt("--filter", metavar="NAME", default=None,
        help="keep only these messages: comma-separated names or globs, case-insensitive; "
             "CurrentDemand matches CurrentDemandReq and CurrentDemandRes")
    opt("--keylog", metavar="FILE", default=None,
        help="NSS key log (CLIENT_RANDOM / *_TRAFFIC_SECRET lines) to decrypt TLS; key-log lines "
             "sent in-band over UDP in the capture are used automatically")
    opt("--summary", action="store_true",
        help="per-session summary: protocol, EVCCID/EVSEID, message counts, response times "
             "against the standard's limits, errors and FAILED response codes")


def run(args: argparse.Namespace, out=None, err=None) -> int:
    """0: done (undecodable frames are reported in the output); 2: cannot run."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = getattr(args, "capture", None) or getattr(args, "input", None) or getattr(args, "file", None)
    fmt = getattr(args, "format", None)
    fmt = {"json": "jsonl", None: None}.get(fmt, fmt)
    if fmt is not None and fmt not in render.FORMATS:
        err.write(f"error: --format {fmt} is not available for captures (use {', '.join(render.FORMATS)})\n")
        return 2
    if path is None:
        err.write("error: no capture file given\n")
        return 2
    if path != "-" and not os.path.exists(path):
        err.write(f"error: {path}: no such file\n")
        return 2
    keylog = getattr(args, "keylog", None)
    if keylog and not os.path.exists(keylog):
        err.write(f"error: key log {keylog}: no such file\n")
        return 2
    progress = render.Progress(err)
    reader = CaptureReader(keylog, progress=progress)
    records = render.filtered(reader.read(path), render.matcher(getattr(args, "filter", None)))
    try:
        if getattr(args, "summary", False):
            from .summary import summarize
            summary = summarize(records)
            progress.close()
            render.write_summary(summary, out, as_json=(fmt == "jsonl"))
        else:
            render.write(records, fmt or "jsonl", out)
            progress.close()
    except TsharkMissing as e:
        progress.close()
        err.write(f"error: {e}\n")
        return 2
    except BrokenPipeError:
        return 0
    if reader.stats["errors"] and reader.stats["errors"] == reader.stats["messages"] and reader.stats["messages"]:
        first = "EXI codec not available" if reader.decoder.calls == 0 else "no message decoded"
        err.write(f"warning: {first}: every message has an error\n")
    return 0


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exi.capture",
                                description="Decode V2G messages (SDP, V2GTP, EXI) in a pcap/pcapng capture.")
    add_arguments(p)
    return run(p.parse_args(argv))
