"""Run `exi15118` in-process (fast) with its own stdin, stdout and stderr."""
from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "din_dc_session.pcap"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """cli(*argv, stdin=b"...") -> Result (exit code, stdout, stderr)."""
    from exi.cli.__main__ import main

    def run(*argv, stdin: bytes = b"") -> Result:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin))))
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:          # argparse usage errors
            code = e.code
        got = capsys.readouterr()
        return Result(code, got.out, got.err)
    return run


def assert_clean(err: str) -> None:
    """One error style, no Python internals."""
    assert "Traceback" not in err and "Errno" not in err and "fromhex" not in err, err
    for line in err.splitlines():
        assert line.startswith(("exi15118", "usage:", " ")) or not line.strip(), line


@pytest.fixture
def example() -> str:
    return os.fspath(EXAMPLE)
