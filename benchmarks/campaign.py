"""Throughput of whole-campaign decoding: `exi15118 decode DIR --recursive --jobs N`.

    python benchmarks/campaign.py [DIR] [--jobs 2] [--repeat 3]

Decodes every capture under DIR (default: the shared capture vectors) to a Parquet
dataset and to JSON lines (written to /dev/null), in-process through
exi.capture.campaign.run, and prints captures/s and messages/s (the best of --repeat
runs).  Not part of the test run.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

from exi.capture import campaign

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "vectors", "captures")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dir", nargs="?", default=os.environ.get("EXI_SHARED_VECTORS", DEFAULT))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    if os.path.basename(a.dir) != "captures" and os.path.isdir(os.path.join(a.dir, "captures")):
        a.dir = os.path.join(a.dir, "captures")
    files = campaign.collect([a.dir], True)
    for fmt in ("parquet", "jsonl"):
        best = None
        for _ in range(a.repeat):
            tmp = tempfile.mkdtemp()
            with open(os.devnull, "w") as null:
                t0 = time.perf_counter()
                campaign.run([a.dir], recursive=True, jobs=a.jobs, fmt=fmt,
                             out_dir=os.path.join(tmp, "ds") if fmt == "parquet" else None,
                             out=null, err=null)
                dt = time.perf_counter() - t0
            shutil.rmtree(tmp)
            best = dt if best is None else min(best, dt)
        print(f"{fmt:8} {len(files)} captures in {best:.2f} s: {len(files) / best:.1f} captures/s, "
              f"{_messages(files) / best:,.0f} records/s (--jobs {a.jobs})")


_count = None


def _messages(files) -> int:
    global _count
    if _count is None:
        import exi.capture
        _count = sum(1 for path, _n in files for _r in exi.capture.read(path))
    return _count


if __name__ == "__main__":
    sys.exit(main())
