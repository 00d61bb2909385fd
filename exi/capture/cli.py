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

    def opt(flag, *more, **kw):
        if flag not in have:
            parser.add_argument(flag, *[m for m in more if m not in have], **kw)
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
             "against the standard's limits, errors and FAILED response codes; SLAC matching "
             "(attenuation, -3 timers, NMK handover)")
    opt("--live", metavar="IF", default=None,
        help="decode the traffic of network interface IF as it arrives, until Ctrl-C (Linux, root: "
             "a raw socket, no libpcap)")
    opt("--recursive", "-r", action="store_true",
        help="with a directory: decode the captures of its subdirectories too")
    opt("--jobs", "-j", type=int, metavar="N", default=None,
        help="captures decoded in parallel with several inputs or a directory (default: all cores)")
    opt("--out", metavar="DIR", default=None,
        help="with --format parquet: the dataset directory to write (part-NNNNN.parquet files)")


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
    live = getattr(args, "live", None)
    if path is None and not live:
        return _fail(err, "no capture file given", 2)
    if path is not None and path != "-" and not os.path.exists(path):
        return _fail(err, f"{path}: no such file", 2)
    if path is not None and path != "-":
        problem = unreadable(path)
        if problem:
            return _fail(err, problem, 1)
    keylog = getattr(args, "keylog", None)
    if keylog and not os.path.exists(keylog) and not live:      # live: it may be written later
        return _fail(err, f"key log {keylog}: no such file", 2)
    name = "stdin" if path == "-" else path
    t0 = None if path in ("-", None) else _first_frame_time(path)
    summary_wanted = getattr(args, "summary", False)
    progress = render.Progress(err)
    reader = CaptureReader(keylog, progress=progress)
    if live or path == "-":
        out = _LineFlush(out)               # each record leaves as soon as it is decoded
    if live:
        return _run_live(args, reader, fmt, out, err)
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
    except KeyboardInterrupt:               # Ctrl-C on a stream: stop quietly
        return 130
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
    if not st["messages"]:
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


class _LineFlush:
    """Flushes the output at the end of every line (stdout to a pipe is block-buffered)."""

    def __init__(self, out):
        self.out = out

    def write(self, s: str) -> int:
        n = self.out.write(s)
        if s.endswith("\n"):
            self.out.flush()
        return n

    def flush(self) -> None:
        self.out.flush()


def _run_live(args, reader, fmt, out, err) -> int:
    """--live IF: records of the interface's traffic until Ctrl-C (or SIGTERM), then the
    end of the capture as for a file: partial messages, TLS decryption, --summary."""
    import signal

    from .live import Live, LiveCaptureError
    try:
        cap = Live(args.live).__enter__()
    except LiveCaptureError as e:
        return _fail(err, str(e), 2)

    def stop(_signo, _frame):
        cap.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C interrupts
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    err.write(f"capturing on {args.live} (Ctrl-C to stop)\n")
    err.flush()
    try:
        def spool_path():
            if reader.keylog and not os.path.exists(reader.keylog):
                _warn(err, f"key log {reader.keylog} was not written during the capture")
                reader.keylog = None
            return cap.close_spool()
        records = render.filtered(reader.read_frames(cap.frames(), path=spool_path),
                                  render.matcher(getattr(args, "filter", None)))
        if getattr(args, "summary", False):
            from .summary import summarize
            render.write_summary(summarize(records), out, as_json=(fmt == "jsonl"))
        else:
            render.write(records, fmt or "jsonl", out)
    except TsharkMissing as e:
        return _fail(err, str(e), 2)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        cap.__exit__(None, None, None)
    err.write(f"{reader.stats['frames']} frames captured on {args.live}\n")
    return 0


def _damage_text(r) -> str:
    text = r.error or ""
    return text.split(": ", 1)[1] if text.startswith("capture file damaged") and ": " in text else text


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exi.capture",
                                description="Decode V2G messages (SDP, V2GTP, EXI) in a pcap/pcapng capture.")
    add_arguments(p)
    return run(p.parse_args(argv))
