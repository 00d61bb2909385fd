"""Our -2 PKI in the iso15118 package's layout (exi.v2g.pnc.layouts): the package loads
every chain and key of it and its own chain check accepts each chain."""
import json
import os
import subprocess

import pytest

from exi.v2g.pki import create_pki, write_pki
from exi.v2g.pnc.layouts import write_iso15118_package_layout

from tests.interop.peer import PeerUnavailable, ensure_peer_venv, venv_python

pytestmark = pytest.mark.interop


def test_the_package_reads_and_accepts_our_pki(tmp_path):
    try:
        venv = ensure_peer_venv()
    except PeerUnavailable as e:
        pytest.fail(str(e))
    pki = create_pki("iso2", ocsp_url=None)
    write_pki(pki, tmp_path / "ours")
    pki_path = write_iso15118_package_layout(tmp_path / "ours", tmp_path / "theirs")
    script = __file__.replace("test_peer_layout.py", "peer_layout.py")
    env = dict(os.environ, PKI_PATH=str(pki_path) + "/")
    p = subprocess.run([str(venv_python(venv)), script], capture_output=True, text=True,
                       timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert {k: got[k] for k in ("contract", "secc", "cps", "oem")} == \
        {"contract": "ok", "secc": "ok", "cps": "ok", "oem": "ok"}
    for ours, theirs in [("contractLeaf", "contract"), ("oemProvLeaf", "oem"), ("seccLeaf", "secc"),
                         ("cpsLeaf", "cps"), ("moSubCA2", "moSubCA2")]:
        assert got[theirs + "_key"] == pki.keys[ours].public_key().public_numbers().x
    assert got["contract_cn"] == "DEEXIC151180001"
    assert got["tls"] == "SSLContext"
