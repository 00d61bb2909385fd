"""Writes vectors_subset.jsonl from the shared vector collection (see README.md)."""
import collections
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "vectors"
PRIO = ["EVerest/libcbv2g", "EVerest/libiso15118", "EVerest/logfiles"]
KEEP = ("source", "message", "exi_hex", "note", "exificient_xml", "reference_reencodes")


def repo(d):
    return d["source"].split(":")[0]


def main():
    out = []
    for f in ("sap", "din", "iso2", "iso20"):
        groups = collections.defaultdict(list)
        with open(SHARED / f"exi_{f}.jsonl", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                groups[d["message"]].append(d)
        for items in groups.values():
            items.sort(key=lambda d: PRIO.index(repo(d)) if repo(d) in PRIO else len(PRIO))
            bad = [d for d in items if d.get("reference_reencodes") is not True][:3]
            by_repo = collections.OrderedDict()
            for d in items:
                if d.get("reference_reencodes") is True:
                    by_repo.setdefault(repo(d), []).append(d)
            everest = [d for r in PRIO for d in by_repo.get(r, [])]
            picked = everest[:10]
            others = [v for r, v in by_repo.items() if r not in PRIO]
            i = 0
            while len(picked) < 15 and any(i < len(v) for v in others):
                for v in others:
                    if i < len(v) and len(picked) < 15:
                        picked.append(v[i])
                i += 1
            if len(picked) < 15:
                picked += everest[10:10 + 15 - len(picked)]
            frags = [d for d in items if "#frag" in (d["note"] or "") and d not in picked and d not in bad]
            for d in picked + bad + frags:
                out.append({"file": f, **{k: d.get(k) for k in KEEP}})
    with open(HERE / "vectors_subset.jsonl", "w", encoding="utf-8") as fh:
        for d in out:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{len(out)} vectors")


if __name__ == "__main__":
    main()
