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
    if path is None and not getattr(args, "live", None):
        err.write("error: no capture file given\n")
        return 2
    if path is not None and path != "-" and not os.path.exists(path):
        err.write(f"error: {path}: no such file\n")
        return 2
    keylog = getattr(args, "keylog", None)
    if keylog and not os.path.exists(keylog) and not getattr(args, "live", None):   # live: may come later
        err.write(f"error: key log {keylog}: no such file\n")
        return 2
    progress = render.Progress(err)
    reader = CaptureReader(keylog, progress=progress)
    live = getattr(args, "live", None)
    if live or path == "-":
        out = _LineFlush(out)               # each record leaves as soon as it is decoded
    if live:
        return _run_live(args, reader, fmt, out, err)
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
    except KeyboardInterrupt:               # Ctrl-C on a stream: stop quietly
        return 130
    if reader.stats["errors"] and reader.stats["errors"] == reader.stats["messages"] and reader.stats["messages"]:
        first = "EXI codec not available" if reader.decoder.calls == 0 else "no message decoded"
        err.write(f"warning: {first}: every message has an error\n")
    return 0


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
        err.write(f"exi15118 decode: {e}\n")
        return 2

    def stop(_signo, _frame):
        cap.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C interrupts
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    err.write(f"capturing on {args.live} (Ctrl-C to stop)\n")
    err.flush()
    try:
        def spool_path():
            if reader.keylog and not os.path.exists(reader.keylog):
                err.write(f"exi15118 decode: key log {reader.keylog} was not written during the capture\n")
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
        err.write(f"exi15118 decode: {e}\n")
        return 2
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


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exi.capture",
                                description="Decode V2G messages (SDP, V2GTP, EXI) in a pcap/pcapng capture.")
    add_arguments(p)
    return run(p.parse_args(argv))
