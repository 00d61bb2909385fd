"""`exi15118 secc --loop`: asyncio by default, uvloop only when asked for and installed."""
import asyncio
import sys

import pytest

from exi.cli import secc
from exi.cli.errors import CLIError


def test_default_loop_is_asyncio():
    args = secc.register(__import__("argparse").ArgumentParser().add_subparsers()).parse_args(["-i", "eth1"])
    assert args.loop == "asyncio"
    assert secc._event_loop(args.loop) is asyncio.run


def test_uvloop_missing_is_a_usage_error_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)        # import uvloop -> ImportError
    with pytest.raises(CLIError, match=r"exi15118\[fast\]"):
        secc._event_loop("uvloop")
