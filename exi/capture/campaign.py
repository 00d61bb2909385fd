"""Whole test campaigns: many captures decoded in parallel into one output.

    exi15118 decode DIR --recursive --jobs 8 --format parquet --out dataset/
    exi15118 decode a.pcapng b.pcapng --format table

Each capture is decoded in a worker process (multiprocessing; a capture is the unit of
work, so its TCP streams and sessions stay together).  Text formats are written in the
order the files were given (directories sorted); the Parquet dataset gets one row per
record with the capture's path (see dataset.py).  A progress line goes to stderr when
it is a terminal.  A capture that cannot be read is reported and skipped; the exit
status is then 1.
"""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import sys
import time
from typing import Iterable, Optional, TextIO

from . import render
from .reader import CaptureReader, TsharkMissing

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dump")


def collect(inputs: Iterable[str], recursive: bool) -> list:
    """(path, name) pairs: files as given; directories' capture files (pcap/pcapng magic
    or a capture suffix), sorted, descending into subdirectories with `recursive`."""
    from ._pcap import is_capture
    out = []
    for item in inputs:
        if not os.path.isdir(item):
            out.append((item, item))
            continue
        walker = os.walk(item) if recursive else [(item, [], sorted(os.listdir(item)))]
        for root, dirs, names in walker:
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(root, name)
                if not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        ok = is_capture(f.read(4))
                except OSError:
                    ok = False
                if ok or name.lower().endswith(CAPTURE_SUFFIXES):
                    out.append((path, os.path.relpath(path, item)))
    return out


# --- the worker -------------------------------------------------------------------------

_options: dict = {}


def _init(options: dict) -> None:
    _options.clear()
    _options.update(options)


def decode_one(job) -> tuple:
    """(index, name, output, stats, error) for one capture; output is text, or a pyarrow
    Table for parquet."""
    index, path, name = job
    opts = _options
    reader = CaptureReader(opts.get("keylog"))
    keep = render.matcher(opts.get("filter"))
    fmt = opts["format"]
    try:
        records = render.filtered(reader.read(path), keep)
        if fmt == "parquet":
            from . import dataset
            output = dataset.table(dataset.rows(records, name))
        elif opts.get("summary"):
            from .summary import summarize
            buf = io.StringIO()
            render.write_summary(summarize(records), buf, as_json=opts.get("summary_json", False))
            output = buf.getvalue()
        elif fmt == "jsonl":
            buf = io.StringIO()
            for r in records:
                d = {"file": name}
                d.update(render.record_dict(r))
                buf.write(json.dumps(d, default=render._json_default, ensure_ascii=False))
                buf.write("\n")
            output = buf.getvalue()
        else:
            buf = io.StringIO()
            render.write(records, fmt, buf)
            output = buf.getvalue()
    except (OSError, TsharkMissing, ValueError) as e:
        return index, name, None, dict(reader.stats), str(e)
    except Exception as e:      # noqa: BLE001 - one bad capture must not stop a campaign
        return index, name, None, dict(reader.stats), f"not decodable ({type(e).__name__}: {e})"
    return index, name, output, dict(reader.stats), None


# --- the parent -------------------------------------------------------------------------

class Progress:
    """"12/340 captures  45,210 messages  8,100 msg/s" on stderr, only on a terminal."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.on = stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int, messages: int, final: bool = False) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.1:
            return
        self.last = now
        rate = messages / max(now - self.start, 1e-6)
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        self.stream.write(f"\r[{bar:<24}] {done}/{self.total} captures  {messages:,} messages  "
                          f"{rate:,.0f} msg/s ")
        self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write("\n")
            self.stream.flush()


def run(inputs: list, *, recursive: bool, jobs: Optional[int], fmt: Optional[str], out_dir: Optional[str],
        summary: bool = False, keylog: Optional[str] = None, filter: Optional[str] = None,
        out: TextIO = None, err: TextIO = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    summary_json = summary and fmt == "jsonl"
    fmt = fmt or "jsonl"
    files = collect(inputs, recursive)
    if not files:
        err.write(f"exi15118 decode: error: no capture files in {', '.join(inputs)}"
                  f"{'' if recursive else ' (use --recursive to descend into subdirectories)'}\n")
        return 1
    writer = None
    if fmt == "parquet":
        from . import dataset
        if not out_dir:
            err.write("exi15118 decode: error: --format parquet needs --out DIR (the dataset directory)\n")
            return 2
        try:
            writer = dataset.DatasetWriter(out_dir)
        except (dataset.MissingPyarrow, FileExistsError, OSError) as e:
            err.write(f"exi15118 decode: error: {e}\n")
            return 2
    options = {"format": fmt, "summary": summary, "summary_json": summary_json, "keylog": keylog,
               "filter": filter}
    jobs = max(1, jobs or os.cpu_count() or 1)
    work = [(i, path, name) for i, (path, name) in enumerate(files)]
    progress = Progress(len(work), err)
    totals = {"messages": 0, "homeplug": 0, "errors": 0, "frames": 0}
    failed = 0
    t0 = time.perf_counter()
    if jobs == 1 or len(work) == 1:
        _init(options)
        results = map(decode_one, work)
        pool = None
    else:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        pool = ctx.Pool(min(jobs, len(work)), initializer=_init, initargs=(options,))
        results = pool.imap(decode_one, work, chunksize=1)
    try:
        for done, (_index, name, output, stats, error) in enumerate(results, 1):
            for k in totals:
                totals[k] += stats.get(k, 0)
            if error is not None:
                failed += 1
                progress.update(done, totals["messages"])
                err.write(f"\rexi15118 decode: error: {name}: {error}\n")
                continue
            if writer is not None:
                writer.add(output)
            else:
                if fmt == "table" or summary:
                    out.write(f"== {name}\n")
                out.write(output)
            progress.update(done, totals["messages"])
        progress.update(len(work), totals["messages"], final=True)
    finally:
        if pool is not None:
            pool.terminate()
        progress.close()
    seconds = time.perf_counter() - t0
    if writer is not None:
        writer.close()
        err.write(f"{writer.rows} rows from {len(work) - failed} captures written to "
                  f"{', '.join(writer.files)} in {seconds:.1f} s\n")
    return 1 if failed else 0
