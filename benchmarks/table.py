"""Print the README's benchmark table from pytest-benchmark JSON files.

    python -m pytest benchmarks/bench_codec.py --benchmark-json=/tmp/compiled.json
    EXI_NO_EXTENSIONS=1 python -m pytest benchmarks/bench_codec.py --benchmark-json=/tmp/pure.json
    python benchmarks/table.py /tmp/compiled.json /tmp/pure.json
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(paths) -> int:
    rows = defaultdict(dict)
    order = []
    for path in paths:
        for b in json.load(open(path))["benchmarks"]:
            group, name = b["group"], b["name"]
            if group not in rows:
                order.append(group)
            rows[group][name] = b["stats"]["median"] * 1e6
    cols = ["exi15118 decode [compiled]", "exi15118 encode [compiled]",
            "exi15118 decode [python]", "exi15118 encode [python]",
            "json.loads (same content)", "json.dumps (same content)"]
    heads = ["decode", "encode", "decode (pure Python)", "encode (pure Python)",
             "json.loads", "json.dumps"]
    print("| message (median µs) | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(cols))
    for g in order:
        cells = [f"{rows[g][c]:.2f}" if c in rows[g] else "–" for c in cols]
        print(f"| {g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
