"""Cost of importing every message set (issue target: at most 0.5 s and 60 MB).

    python -m pytest benchmarks/bench_import.py -s

Each round is a fresh interpreter that imports exi and loads all nine schemas; it reports
the wall time of that and the growth of its resident memory (interpreter start-up
excluded from both; Linux /proc).
"""
import json
import statistics
import subprocess
import sys

SCHEMAS = ("sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp", "xmldsig")
CHILD = f"""
import json, os, time
def rss():      # resident now (the peak, ru_maxrss, can be inherited from the parent's fork)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rss0 = rss()
t0 = time.perf_counter()
import exi
for sid in {SCHEMAS!r}:
    exi.schema(sid)
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "mb": (rss() - rss0) / 2**20, "impl": exi._impl.IMPLEMENTATION}}))
"""


def _once():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bench_import_every_message_set(benchmark):
    runs = []
    benchmark.pedantic(lambda: runs.append(_once()), rounds=5, iterations=1)
    seconds = statistics.median(r["seconds"] for r in runs)
    mb = statistics.median(r["mb"] for r in runs)
    benchmark.extra_info.update(seconds=seconds, resident_mb=mb)
    print(f"\nimporting all {len(SCHEMAS)} message sets [{runs[0]['impl']}]: "
          f"{seconds:.3f} s, +{mb:.1f} MB resident (median of {len(runs)} fresh interpreters)")
    assert len(runs) == 5
