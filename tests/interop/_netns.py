"""Private stop-gap: two network namespaces joined by a veth pair (PEERS.md recipe).

The peer's SECC/EVCC need an interface with an IPv6 link-local address (``lo`` has none).
tests/netns.py (transport helper) will own the reusable fixture; this one only serves the
interop harness until then. Names are unique per call and always deleted on exit.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator

__all__ = ["VethPair", "NetnsUnavailable", "veth_pair", "require_netns"]


class NetnsUnavailable(RuntimeError):
    """Cannot create namespaces here; the message says what is missing."""


@dataclass(frozen=True)
class VethPair:
    ns_a: str      # e.g. the SECC side
    if_a: str
    ns_b: str      # e.g. the EVCC side
    if_b: str

    def prefix(self, side: str) -> list[str]:
        """Command prefix that runs a program inside namespace ``a`` or ``b``."""
        return ["ip", "netns", "exec", self.ns_a if side == "a" else self.ns_b]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def require_netns() -> None:
    if shutil.which("ip") is None:
        raise NetnsUnavailable("`ip` not found: apt-get install iproute2")
    if os.geteuid() != 0:
        raise NetnsUnavailable("creating network namespaces needs root (CAP_NET_ADMIN)")


def _link_local(ns: str, iface: str) -> str | None:
    out = _ip("netns", "exec", ns, "ip", "-6", "addr", "show", "dev", iface).stdout
    for line in out.splitlines():
        m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", line)
        if m and "tentative" not in line:       # DAD finished: the address is usable
            return m.group(1)
    return None


@contextlib.contextmanager
def veth_pair(tag: str = "ji", up_timeout: float = 15.0) -> Iterator[VethPair]:
    require_netns()
    u = f"{tag}{os.getpid() % 10000:04d}{secrets.token_hex(2)}"  # unique; <= 15 chars with suffix
    pair = VethPair(f"{u}_a", f"{u}a", f"{u}_b", f"{u}b")
    created: list[str] = []
    try:
        for ns in (pair.ns_a, pair.ns_b):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("link", "add", pair.if_a, "type", "veth", "peer", "name", pair.if_b)
        for ns, iface in ((pair.ns_a, pair.if_a), (pair.ns_b, pair.if_b)):
            _ip("link", "set", iface, "netns", ns)
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            # Skip duplicate address detection: saves ~2 s and no other host can collide.
            _ip("netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.accept_dad=0", check=False)
            _ip("netns", "exec", ns, "ip", "link", "set", iface, "up")
        deadline = time.monotonic() + up_timeout
        while not (_link_local(pair.ns_a, pair.if_a) and _link_local(pair.ns_b, pair.if_b)):
            if time.monotonic() > deadline:
                raise NetnsUnavailable(f"no usable fe80:: address on {pair} after {up_timeout:.0f} s")
            time.sleep(0.1)
        yield pair
    finally:
        # Deleting a namespace destroys its veth end, and with it the peer end.
        for ns in created:
            _ip("netns", "delete", ns, check=False)


def link_local(pair: VethPair, side: str) -> str:
    ns, iface = (pair.ns_a, pair.if_a) if side == "a" else (pair.ns_b, pair.if_b)
    addr = _link_local(ns, iface)
    if addr is None:
        raise NetnsUnavailable(f"{iface} in {ns} has no link-local address")
    return addr
