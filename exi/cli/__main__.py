"""The `exi15118` command line tool (also `python -m exi`).

Each subcommand is a module of this package with `register(subparsers)`; errors and exit
codes: exi.cli.errors.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from exi.cli import errors

SUBCOMMANDS = ("decode", "encode", "pki", "secc", "evcc", "bench")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exi15118", description="ISO 15118 / DIN SPEC 70121 EXI codec and V2G stack",
                                epilog="Exit codes: 0 done, 1 bad input or failed session, 2 usage, "
                                       "130 interrupted. Tracebacks only with --debug.")
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
    for cmd in sub.choices.values():      # --debug also after the subcommand
        if "--debug" not in cmd._option_string_actions:
            cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "command", None)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        return errors.INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as e:        # noqa: BLE001 - a CLI reports, --debug shows the traceback
        if args.debug:
            raise
        code, message = _describe(e)
        errors.error(command, message)
        return code


def _describe(e: Exception) -> tuple[int, str]:
    if isinstance(e, errors.CLIError):
        return e.code, str(e)
    if isinstance(e, OSError):
        return errors.BAD_INPUT, errors.describe_os_error(e)
    if isinstance(e, ValueError):             # exi.DecodeError, EncodeError, SDP/TLS checks
        return errors.BAD_INPUT, str(e)
    return errors.BAD_INPUT, (f"unexpected {e.__class__.__name__}: {e} "
                              "(a bug: please report it with the output of --debug)")


if __name__ == "__main__":
    sys.exit(main())
