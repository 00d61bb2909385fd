"""Fixtures of the transport tests: markers, a network namespace pair, fresh test PKIs."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import NetnsPair, missing_prerequisites

# The folder that holds the `exi` and `tests` packages, for the subprocesses.
ROOT = Path(__file__).parents[2]


def pytest_configure(config):
    # Registered here (not in a shared tests/conftest.py) to stay out of other suites' way;
    # registering a marker twice is harmless.
    config.addinivalue_line("markers", "netns: needs root and iproute2 (network namespaces)")


def pytest_runtest_call(item):
    # A missing prerequisite FAILS the test (never skips) and says what to install.
    if item.get_closest_marker("netns") is not None:
        problem = missing_prerequisites()
        if problem:
            pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def netns_pair():
    """One veth pair for the session (DAD takes ~2 s); None when it cannot exist, in
    which case the netns-marked test fails in pytest_runtest_call above."""
    if missing_prerequisites():
        yield None
        return
    with NetnsPair() as pair:
        yield pair


class Peers:
    """Starts the programs of tests/v2g/_peers.py in the namespaces."""

    def __init__(self, pair: NetnsPair):
        self.pair = pair
        self.env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep
                        + os.environ.get("PYTHONPATH", ""))

    def _argv(self, cmd: str, side: str, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "tests.v2g._peers", cmd, "--iface",
                self.pair.iface[side], *args]

    def start(self, cmd: str, args: list[str], side: str = "secc") -> "Running":
        p = self.pair.popen(side, self._argv(cmd, side, args), cwd=str(ROOT), env=self.env)
        return Running(p)

    def run(self, cmd: str, args: list[str], side: str = "evcc", timeout: float = 60) -> dict:
        r = self.pair.run(side, self._argv(cmd, side, args), cwd=str(ROOT), env=self.env,
                          timeout=timeout)
        assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stderr}"
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert lines, f"{cmd} printed nothing:\n{r.stdout}\n{r.stderr}"
        return json.loads(lines[-1])


class Running:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def ready(self, timeout: float = 20) -> dict:
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            raise AssertionError(f"peer did not get ready: {self.proc.stderr.read()}")
        return json.loads(line)

    def stop(self, timeout: float = 20) -> dict:
        out, err = self.proc.communicate("", timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, f"peer printed no summary (rc {self.proc.returncode}):\n{err}"
        return json.loads(lines[-1])


@pytest.fixture
def peers(netns_pair):
    # Without a pair (no root / no ip) this still returns: the test then FAILS in
    # pytest_runtest_call with the reason, instead of erroring in setup.
    return Peers(netns_pair)


# ---------------------------------------------------------------------------------------
# PKIs, generated once per session


def _write(pki, path: Path) -> Path:
    from exi.v2g.pki import write_pki
    write_pki(pki, path)
    return path


@pytest.fixture(scope="session")
def pki_iso2(tmp_path_factory) -> Path:
    from exi.v2g.pki import create_pki
    return _write(create_pki("iso2"), tmp_path_factory.mktemp("pki_iso2"))


@pytest.fixture(scope="session")
def pki_iso20(tmp_path_factory) -> Path:
    from exi.v2g.pki import create_pki
    return _write(create_pki("iso20"), tmp_path_factory.mktemp("pki_iso20"))


@pytest.fixture(scope="session")
def pki_iso20_ed448(tmp_path_factory) -> Path:
    from exi.v2g.pki import create_pki
    return _write(create_pki("iso20", curve="ed448"), tmp_path_factory.mktemp("pki_ed448"))


@pytest.fixture(scope="session")
def pki_untrusted(tmp_path_factory) -> Path:
    """A second, independent -2 PKI: its SECC chain ends in a root nobody trusts."""
    from exi.v2g.pki import create_pki
    return _write(create_pki("iso2"), tmp_path_factory.mktemp("pki_untrusted"))


def extra_leaf(pki_dir: Path, out: Path, *, curve: str, expired: bool = False,
               not_yet_valid: bool = False, usage=("digital_signature", "key_agreement"),
               issuer: str = "cpoSubCA2") -> tuple[Path, Path]:
    """A leaf issued by one of the PKI's Sub-CA 2 (default: an SECC certificate) with a
    chosen curve / validity / keyUsage.  Returns (chain file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from exi.v2g.pki import _name, issue, new_key

    ca = x509.load_pem_x509_certificate((pki_dir / "certs" / f"{issuer}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (pki_dir / "private_keys" / f"{issuer}.key").read_bytes(), None)
    now = dt.datetime.now(dt.timezone.utc)
    if expired:
        nb, na = now - dt.timedelta(days=90), now - dt.timedelta(days=30)
    elif not_yet_valid:
        nb, na = now + dt.timedelta(days=30), now + dt.timedelta(days=90)
    else:
        nb, na = now - dt.timedelta(hours=1), now + dt.timedelta(days=30)
    key = new_key(curve)
    cert = issue(_name("DE*EXI*E15118*9", "CPO", "exi15118 test"), key, issuer=ca,
                 issuer_key=ca_key, kind="leaf", usage=set(usage),
                 not_before=nb, not_after=na)
    out.mkdir(parents=True, exist_ok=True)
    chain = out / "chain.pem"
    sub1 = (pki_dir / "certs" / f"{issuer[:-1]}1.pem").read_bytes()     # xxxSubCA1
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                      + ca.public_bytes(serialization.Encoding.PEM) + sub1)
    keyfile = out / "key.pem"
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return chain, keyfile
