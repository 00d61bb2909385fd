"""Regenerate every generated file: `python -m codegen [--out DIR] [--only ID ...]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exi.registry import SCHEMAS  # noqa: E402

from .emit import generate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "exi",
                    help="package directory to write _tables/ and messages/ into (default: exi/)")
    ap.add_argument("--only", nargs="*", help="schema ids to generate (default: all)")
    args = ap.parse_args(argv)
    ids = args.only or list(SCHEMAS)
    (args.out / "_tables").mkdir(parents=True, exist_ok=True)
    (args.out / "messages").mkdir(parents=True, exist_ok=True)
    for sid in ids:
        info = SCHEMAS[sid]
        xsd = ROOT / "schemas" / info.directory / info.entry
        tables, messages = generate(sid, info.title, xsd)
        (args.out / "_tables" / f"{sid}.json").write_text(tables, encoding="utf-8")
        (args.out / "messages" / f"{sid}.py").write_text(messages, encoding="utf-8")
        print(f"{sid}: {xsd.relative_to(ROOT)} -> _tables/{sid}.json, messages/{sid}.py", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
