"""The `exi15118` command line tool (also `python -m exi`).

Each subcommand is a module of this package with `register(subparsers)`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("decode", "encode", "pki", "secc", "evcc", "bench")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exi15118", description="ISO 15118 / DIN SPEC 70121 EXI codec and V2G stack")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    from exi import __version__
    p.add_argument("--version", action="version", version=f"exi15118 {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"exi.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"exi.cli.{name}":
                continue      # subcommand not part of this build
            raise
        mod.register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:        # noqa: BLE001 - a CLI reports, --debug shows the traceback
        if args.debug:
            raise
        print(f"exi15118: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
