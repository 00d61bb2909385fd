"""One error style for every `exi15118` subcommand.

A subcommand raises :class:`CLIError` (or lets an ``exi.DecodeError``/``EncodeError``,
an ``OSError`` or ``KeyboardInterrupt`` through); :func:`exi.cli.__main__.main` prints
one line ``exi15118 COMMAND: error: MESSAGE`` on stderr and returns the exit code.
Tracebacks only with ``--debug``.

Exit codes (also in README.md, "Command line"):
  0    done
  1    bad input (unreadable capture or one damaged before its end, not hex, undecodable
       EXI, an encode error), or a session that did not end normally
  2    usage: options that do not fit together or do not apply, a file or folder named
       on the command line that does not exist or cannot be used (e.g. a PKI folder), a
       missing tool (tshark)
  130  interrupted (Ctrl-C); the EVCC ends its session first and prints its result line
"""
from __future__ import annotations

import sys
from typing import TextIO

OK = 0
BAD_INPUT = 1
USAGE = 2
INTERRUPTED = 130


class CLIError(Exception):
    """A message for the user (no Python internals) and the exit code."""

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


def usage(message: str) -> CLIError:
    return CLIError(message, USAGE)


def prefix(command: str | None) -> str:
    return f"exi15118 {command}" if command else "exi15118"


def warn(command: str | None, message: str, stream: TextIO | None = None) -> None:
    (stream or sys.stderr).write(f"{prefix(command)}: warning: {message}\n")


def error(command: str | None, message: str, stream: TextIO | None = None) -> None:
    (stream or sys.stderr).write(f"{prefix(command)}: error: {message}\n")


def describe_os_error(e: OSError) -> str:
    """'FILE: No such file or directory' instead of '[Errno 2] ...'."""
    what = e.strerror or e.__class__.__name__
    return f"{e.filename}: {what}" if e.filename else what
