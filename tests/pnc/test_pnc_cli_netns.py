"""Plug & Charge over real TLS between two processes in network namespaces:
`exi15118 secc --pnc --pki DIR` and `exi15118 evcc --payment contract --pki DIR`, on one PKI
folder: installation (no contract in the folder), then an update of the stored contract
with the EVCC requiring the SECC's stapled OCSP status; the EVCC sends trusted_ca_keys."""
import json
import subprocess
import sys

import pytest

from exi.v2g.pki import create_pki, write_pki
from tests.netns import REPO, SECCProcess, netns_pair

pytestmark = pytest.mark.netns


pair = pytest.fixture(netns_pair)


def evcc(pair, folder, *extra):
    r = subprocess.run(pair.argv("evcc", [
        sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol", "iso2",
        "--mode", "ac", "--loops", "4", "--payment", "contract", "--pki", str(folder), *extra]),
        cwd=str(REPO), capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_install_pay_update_over_tls(pair, tmp_path):
    folder = tmp_path / "pki"
    write_pki(create_pki("iso2", ocsp_url=None), folder)
    (folder / "certs" / "contractChain.pem").unlink()        # nothing to pay with yet
    trace = tmp_path / "secc.jsonl"
    secc = SECCProcess(pair, ["--pnc", "--pki", folder, "--protocols", "iso2", "--receipt-required"],
                       trace=trace)
    try:
        rc, first, err = evcc(pair, folder)
        assert rc == 0 and first["ok"], (first, err[-3000:])
        # the stored contract is updated, then paid with
        rc, second, err = evcc(pair, folder, "--update", "--require-ocsp")    # the SECC staples
        assert rc == 0 and second["ok"] and second["emaid"] == first["emaid"], (second, err[-3000:])
    finally:
        stats = secc.stop()
    assert stats["late"] == 0
    assert "no OCSP staple" not in secc.stderr
    lines = [x for x in map(json.loads, trace.read_text().splitlines()) if "message" in x]
    requests = [x["message"] for x in lines if x["message"].endswith("Req")]
    assert requests.count("CertificateInstallationReq") == 1
    assert requests.count("CertificateUpdateReq") == 1
    assert requests.count("PaymentDetailsReq") == 2 and "MeteringReceiptReq" in requests
    signed = [x["message"] for x in lines
              if "Signature" in x["content"].get("V2G_Message", {}).get("Header", {})]
    assert {"AuthorizationReq", "MeteringReceiptReq", "CertificateInstallationReq",
            "CertificateInstallationRes", "CertificateUpdateReq", "CertificateUpdateRes",
            "ChargeParameterDiscoveryRes"} <= set(signed)
