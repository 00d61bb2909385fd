"""The peer venv set-up: idempotent, and says what to install when it cannot work."""
from __future__ import annotations

import time

import pytest

from . import peer


def test_missing_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))          # an empty dir: no java on PATH
    with pytest.raises(peer.PeerUnavailable, match="apt-get install openjdk-17-jre-headless"):
        peer.ensure_java()
    with pytest.raises(peer.PeerUnavailable, match="openjdk-17-jre-headless"):
        peer.ensure_peer_venv(tmp_path / "venv")         # checked before any pip work
    assert not (tmp_path / "venv").exists()


def test_venv_path_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EXI15118_PEER_VENV", str(tmp_path / "pv"))
    assert peer.peer_venv_path() == tmp_path / "pv"
    monkeypatch.delenv("EXI15118_PEER_VENV")
    assert peer.peer_venv_path() == peer.repo_root() / ".peer-venv"


@pytest.mark.interop
def test_ensure_peer_venv_is_idempotent():
    first = peer.ensure_peer_venv()
    t0 = time.perf_counter()
    assert peer.ensure_peer_venv() == first
    assert time.perf_counter() - t0 < 5, "a verified venv must be reused, not rebuilt"
    assert (first / ".exi15118-peer-ok").read_text() == " ".join(peer.PEER_REQUIREMENTS)


def test_no_pypi_says_what_is_needed(monkeypatch, tmp_path):
    # A closed port as the index: pip fails at once, as on a machine without PyPI access.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(peer.PeerUnavailable, match="network access to PyPI") as e:
        peer.ensure_peer_venv(tmp_path / "venv")
    assert "iso15118==0.31.2" in str(e.value)
    assert not (tmp_path / "venv" / ".exi15118-peer-ok").exists()   # not trusted next time


@pytest.mark.interop
def test_dead_bridge_is_reported_not_hung():
    import os
    import signal
    codec = peer.JosevCodec()
    try:
        os.killpg(codec._proc.pid, signal.SIGKILL)     # bridge and its JVM die mid-session
        codec._proc.wait(timeout=10)
        with pytest.raises(peer.PeerUnavailable, match="not running|exited"):
            codec.decode(b"\x80", "never-reaches-the-codec")
    finally:
        codec.close()
    assert codec.stderr_path.exists(), "a failed bridge keeps its stderr log for diagnosis"
    codec.stderr_path.unlink()
