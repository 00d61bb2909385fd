"""Two network namespaces joined by a veth pair: a private IPv6 link for tests.

V2G traffic needs an interface with an IPv6 link-local address (``lo`` has none), and
tests must not touch the machine's real interfaces.  ``NetnsPair`` creates::

    [ns SECC] veth ---- veth [ns EVCC]

with names unique per process and pair, waits until duplicate address detection has
finished on both ends (so each has a usable fe80:: address), runs commands inside either
namespace and removes everything afterwards, also when the test failed.  Nothing leaves
the pair: the namespaces have no route to anything else.

    with NetnsPair() as pair:
        proc = pair.popen("secc", [sys.executable, "-m", "tests.v2g._peers", ...])
        out = pair.run("evcc", [...])

Needs root and iproute2 (``ip``); :func:`missing_prerequisites` says what is missing.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Optional, Sequence

__all__ = ["NetnsPair", "SECCProcess", "netns_pair", "missing_prerequisites", "REQUIREMENTS"]

REQUIREMENTS = ("network namespace tests need root and iproute2: "
                "run `apt-get install -y iproute2` and run the tests as root")
_counter = itertools.count(1)
_SIDES = ("secc", "evcc")


def missing_prerequisites() -> Optional[str]:
    """None when namespaces can be made, else a message saying what to install/do."""
    if shutil.which("ip") is None:
        return "`ip` (iproute2) not found -- " + REQUIREMENTS
    if os.geteuid() != 0:
        return "not running as root -- " + REQUIREMENTS
    return None


class NetnsPair:
    """Namespaces ``ns["secc"]``, ``ns["evcc"]`` with interfaces ``iface[...]``."""

    def __init__(self, *, dad_timeout: float = 15.0):
        n = next(_counter)
        pid = os.getpid()
        base = f"exi15118-{pid}-{n}"
        self.ns = {"secc": f"{base}-secc", "evcc": f"{base}-evcc"}
        # Interface names: at most 15 characters.
        tag = f"{pid % 100000}{n % 100}"
        self.iface = {"secc": f"vs{tag}"[:15], "evcc": f"ve{tag}"[:15]}
        self.dad_timeout = dad_timeout
        self._procs: list[subprocess.Popen] = []
        self._created: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "NetnsPair":
        self.setup()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def setup(self) -> None:
        problem = missing_prerequisites()
        if problem:
            raise RuntimeError(problem)
        try:
            for side in _SIDES:
                self._ip("netns", "add", self.ns[side])
                self._created.append(self.ns[side])
            self._ip("link", "add", self.iface["secc"], "type", "veth",
                     "peer", "name", self.iface["evcc"])
            for side in _SIDES:
                self._ip("link", "set", self.iface[side], "netns", self.ns[side])
                self._ip("link", "set", "lo", "up", ns=self.ns[side])
                self._ip("link", "set", self.iface[side], "up", ns=self.ns[side])
            self.wait_dad()
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self._procs.clear()
        # Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in self._created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._created.clear()

    # -- helpers -----------------------------------------------------------------------
    def _ip(self, *args: str, ns: Optional[str] = None) -> str:
        cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
        return r.stdout

    def link_local(self, side: str) -> Optional[str]:
        """The interface's fe80:: address once DAD is done (None before)."""
        out = self._ip("-6", "-o", "addr", "show", "dev", self.iface[side], "scope", "link",
                       ns=self.ns[side])
        for line in out.splitlines():
            m = re.search(r"inet6 (fe80::[0-9a-f:]+)/\d+", line)
            if m and "tentative" not in line and "dadfailed" not in line:
                return m.group(1)
        return None

    def wait_dad(self) -> None:
        deadline = time.monotonic() + self.dad_timeout
        while time.monotonic() < deadline:
            if all(self.link_local(side) for side in _SIDES):
                return
            time.sleep(0.1)
        raise RuntimeError(f"no IPv6 link-local address after {self.dad_timeout} s "
                           "(duplicate address detection did not finish)")

    def argv(self, side: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[side], *argv]

    def run(self, side: str, argv: Sequence[str], *, timeout: float = 60,
            **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(side, argv), timeout=timeout, **kw)

    def popen(self, side: str, argv: Sequence[str], **kw) -> subprocess.Popen:
        """Start a process in the namespace; it is killed at teardown if still running."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("text", True)
        p = subprocess.Popen(self.argv(side, argv), **kw)
        self._procs.append(p)
        return p


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SECCProcess:
    """``exi15118 secc`` running in the pair's SECC namespace, started once its ready line
    (JSON with the ports it listens on) is printed; ``ready`` holds that line."""

    def __init__(self, pair: "NetnsPair", args: Sequence[str], *, trace=None, env=None,
                 start_timeout: float = 30):
        argv = [sys.executable, "-m", "exi", "secc", "-i", pair.iface["secc"]]
        if trace is not None:
            argv += ["--trace", str(trace)]
        self.trace = trace
        self.proc = pair.popen("secc", [*argv, *map(str, args)], cwd=REPO, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            raise AssertionError(f"SECC did not start: {self.proc.stderr.read()}")
        self.ready = json.loads(line)

    def stop(self) -> dict:
        """SIGTERM; the SECC must exit 0 and print its summary line, which is returned."""
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err[-3000:]
        self.stderr = err
        return json.loads(out.strip().splitlines()[-1])

    def interrupt(self):
        """Ctrl-C; returns (exit code, stdout, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def netns_pair():
    """Fixture body for a test file: ``pair = pytest.fixture(scope="module")(netns_pair)``.
    Fails (never skips) with what to install when namespaces cannot be made."""
    import pytest
    problem = missing_prerequisites()
    if problem:
        pytest.fail(problem, pytrace=False)
    with NetnsPair() as p:
        yield p
