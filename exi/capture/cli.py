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
PROG = "exi15118 decode"


def is_capture_magic(head: bytes) -> bool:
    return _magic_ok(head)


def peek_stdin(n: int = 4) -> bytes:
    """The first bytes of stdin without consuming them (b"" when stdin is empty)."""
    buf = sys.stdin.buffer
    return buf.peek(n)[:n] if hasattr(buf, "peek") else b""


def is_capture(path: str) -> bool:
    """True for a file with pcap/pcapng magic, and for "-" when stdin starts with it
    (peeked, not consumed)."""
    if path == "-":
        return _magic_ok(peek_stdin(4))
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


def _fail(err, message: str, code: int) -> int:
    err.write(f"{PROG}: error: {message}\n")
    return code


def _warn(err, message: str) -> None:
    err.write(f"{PROG}: warning: {message}\n")


def unreadable(path: str) -> Optional[str]:
    """Why `path` cannot be read as a capture at all, or None."""
    if os.path.isdir(path):
        return f"{path} is a directory: give a pcap/pcapng file"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return f"{path}: {e.strerror}"
    if not head:
        return f"{path}: empty file, not a pcap/pcapng capture"
    if not _magic_ok(head):
        return f"{path}: not a pcap/pcapng capture (it starts with {head.hex(' ')})"
    return None


def _first_frame_time(path: str) -> Optional[float]:
    """Time of the capture's first frame: "elapsed" counts from it."""
    from ._pcap import FrameError, iter_frames
    with open(path, "rb") as f:
        for item in iter_frames(f):
            return None if item.__class__ is FrameError else item[1]
    return None


def _set_aside_damage(records, damage: list):
    """Damage of the file itself goes to stderr (after the output), not into the records."""
    for r in records:
        if r.stream is None and not r.transport:
            damage.append(r)
        else:
            yield r


def _counted(records, counter: list):
    for r in records:
        counter[0] += 1
        yield r


def run(args: argparse.Namespace, out=None, err=None) -> int:
    """0: done (a capture cut off inside its last record is decoded up to there, with a
    warning); 1: the capture cannot be read, or is damaged before its end (decoded as far
    as possible, stderr says where); 2: cannot run (usage, missing file or tool).
    Undecodable messages are reported in the output itself."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = getattr(args, "capture", None) or getattr(args, "input", None) or getattr(args, "file", None)
    fmt = getattr(args, "format", None)
    fmt = {"json": "jsonl", None: None}.get(fmt, fmt)
    if fmt is not None and fmt not in render.FORMATS:
        return _fail(err, f"--format {fmt} is not available for captures (use {', '.join(render.FORMATS)})", 2)
    if path is None:
        return _fail(err, "no capture file given", 2)
    if path != "-" and not os.path.exists(path):
        return _fail(err, f"{path}: no such file", 2)
    if path != "-":
        problem = unreadable(path)
        if problem:
            return _fail(err, problem, 1)
    keylog = getattr(args, "keylog", None)
    if keylog and not os.path.exists(keylog):
        return _fail(err, f"key log {keylog}: no such file", 2)
    name = "stdin" if path == "-" else path
    t0 = None if path == "-" else _first_frame_time(path)
    summary_wanted = getattr(args, "summary", False)
    progress = render.Progress(err)
    reader = CaptureReader(keylog, progress=progress)
    damage: list = []
    shown = [0]
    records = _set_aside_damage(reader.read(path), damage)
    records = _counted(render.filtered(records, render.matcher(getattr(args, "filter", None))), shown)
    try:
        if summary_wanted:
            from .summary import summarize
            if fmt == "table":                  # the table, then the summary below it
                records = render.table_rows(records, out, t0)
            summary = summarize(records)
            progress.close()
            if fmt == "table":
                out.write("\n")
            render.write_summary(summary, out, as_json=(fmt == "jsonl"))
        else:
            render.write(records, fmt or "jsonl", out, t0)
            progress.close()
    except TsharkMissing as e:
        progress.close()
        return _fail(err, str(e), 2)
    except BrokenPipeError:
        return 0
    out.flush()
    return _report(reader, damage, shown[0], name, path, args, err)


def _report(reader, damage: list, shown: int, name: str, path: str, args, err) -> int:
    """What the output alone does not say: damage, nothing found, nothing decoded."""
    st = reader.stats
    if damage and not st["frames"]:
        return _fail(err, f"{name}: cannot read it: {_damage_text(damage[0])}", 1)
    status = 0
    for d in damage:
        if st["frames"] <= d.frame and "truncated" in (d.error or ""):
            # the usual end of a capture stopped while writing: nothing after it is lost
            _warn(err, f"{name}: cut off at byte {d.offset} (frame {d.frame}): {_damage_text(d)}; "
                       "everything before it is decoded")
            continue
        status = 1
        after = "decoding went on at the next good record" if st["frames"] > d.frame else "decoding stopped there"
        _warn(err, f"{name}: damaged at byte {d.offset} (near frame {d.frame}): {_damage_text(d)}; {after}")
    if not st["messages"] and not shown:
        if path != "-":
            from .inventory import describe
            held = describe(path)
        else:
            held = f"{st['frames']} frames"
        _warn(err, f"{name}: no V2G messages: {held}")
    elif not shown and getattr(args, "filter", None):
        _warn(err, f"no message matches --filter {args.filter} ({st['messages']} messages in {name})")
    if st["errors"] and st["errors"] == st["messages"] and st["messages"]:
        first = "EXI codec not available" if reader.decoder.calls == 0 else "no message decoded"
        _warn(err, f"{first}: every message has an error")
    return status


def _damage_text(r) -> str:
    text = r.error or ""
    return text.split(": ", 1)[1] if text.startswith("capture file damaged") and ": " in text else text


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exi.capture",
                                description="Decode V2G messages (SDP, V2GTP, EXI) in a pcap/pcapng capture.")
    add_arguments(p)
    return run(p.parse_args(argv))
