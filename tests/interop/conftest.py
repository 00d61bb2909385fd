"""Fixtures for tests against the independent iso15118 peer.

The peer lives in its own venv (peer.ensure_peer_venv); if that cannot be built or started,
tests that use ``josev`` FAIL with what to install (the project never skips missing prerequisites).
"""
from __future__ import annotations

import pytest

from .peer import JosevCodec, PeerUnavailable


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "interop: needs the iso15118 peer venv (Java 17 on PATH; PyPI access on first run)")
    # Owned by the transport helper (tests/netns.py); registered here too so the peer-session
    # test runs under --strict-markers before that lands. Re-registering is harmless.
    config.addinivalue_line("markers", "netns: needs root + iproute2 (network namespaces)")


@pytest.fixture(scope="session")
def josev():
    """One bridge process (one JVM) per test session / xdist worker."""
    try:
        codec = JosevCodec()
    except PeerUnavailable as e:
        pytest.fail(f"the iso15118 peer is unavailable: {e}", pytrace=False)
    yield codec
    codec.close()
