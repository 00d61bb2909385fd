"""ISO 15118-2 Plug & Charge with the iso15118 package, over TLS across a veth pair, on
one PKI (ours, laid out the way the package reads one: exi.v2g.pnc.layouts):

* its EVCC against our SECC (`exi15118 secc --pnc`): it installs a contract through our
  SECC and local backend, pays with it (PaymentDetails, signed AuthorizationReq checked
  by us) and signs the MeteringReceipts we ask for (checked by us);
* our EVCC (`exi15118 evcc --payment contract --install`) against its SECC: we install
  from its certificate service (its signature over the four parts, its encrypted key),
  pay, and it checks our signed AuthorizationReq.

AC here; DC and the other combinations: `python -m tests.interop.pnc_matrix` (README).
Peer quirks met: its SECC sends no SalesTariff and never asks for a receipt, and answers
late (its JVM codec: a first SessionSetupRes after more than 2 s on a loaded machine, so our
EVCC runs with --tolerate-late); its EVCC in DC ignores ReceiptRequired (our SECC asks for
receipts in AC only here)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from exi.v2g.pki import create_pki, write_pki
from exi.v2g.pnc.layouts import write_iso15118_package_layout
from tests.netns import REPO, SECCProcess, netns_pair

from . import josev_programs as jp

pytestmark = [pytest.mark.interop, pytest.mark.netns]


pair = pytest.fixture(netns_pair)


@pytest.fixture
def pki(tmp_path):
    ours = tmp_path / "pki"
    write_pki(create_pki("iso2", ocsp_url=None), ours)
    return ours, write_iso15118_package_layout(ours, tmp_path / "peer_pki")


def test_peer_evcc_installs_and_pays_at_our_secc(pair, pki, tmp_path):
    ours, layout = pki
    trace = tmp_path / "secc.jsonl"
    secc = SECCProcess(pair, ["--pnc", "--pki", ours, "--protocols", "iso2", "--receipt-required"],
                       trace=trace)
    evcc = jp.start_evcc(tmp_path / "evcc", pair.iface["evcc"], netns=pair.ns["evcc"],
                         config=jp.evcc_config(["ISO_15118_2"], energy_transfer_mode="AC_three_phase_core",
                                               energy_services=["AC"], use_tls=True,
                                               charge_loop_cycle=4, isCertInstallNeeded=True),
                         extra_env={"PKI_PATH": str(layout) + "/"})
    try:
        end = evcc.wait_for(jp.SESSION_MARKERS["session_end"], 120)
        assert evcc.evcc_config_loaded(), "the peer EVCC fell back to its default config"
        assert end.group("reason") == "Communication session terminated", \
            f"{end.group(0)}\npeer log: {evcc.log_path}"
    finally:
        evcc.stop()
        stats = secc.stop()
    assert "session ended (ok): SessionStop (Terminate)" in secc.stderr, secc.stderr[-3000:]
    lines = map(json.loads, trace.read_text().splitlines())
    names = [x["message"] for x in lines if "message" in x]      # event lines carry none
    for name in ("CertificateInstallationRes", "PaymentDetailsRes", "AuthorizationRes",
                 "MeteringReceiptRes", "SessionStopRes"):
        assert name in names, names
    assert stats["late"] == 0


def test_our_evcc_installs_and_pays_at_peer_secc(pair, pki, tmp_path):
    ours, layout = pki
    secc = jp.start_secc(tmp_path / "secc", pair.iface["secc"], netns=pair.ns["secc"],
                         protocols=["ISO_15118_2"], auth_modes=["PNC"], enforce_tls=True,
                         PKI_PATH=str(layout) + "/", ALLOW_CERT_INSTALL_SERVICE="True")
    try:
        secc.wait_for(jp.SESSION_MARKERS["secc_ready"], 90)
        trace = tmp_path / "evcc.jsonl"
        r = subprocess.run(pair.argv("evcc", [
            sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol", "iso2",
            "--mode", "ac", "--loops", "4", "--payment", "contract", "--install", "--pki", str(ours),
            "--tolerate-late", "--trace", str(trace)]), cwd=str(REPO), capture_output=True, text=True, timeout=180)
        result = json.loads(r.stdout.strip().splitlines()[-1])
        assert r.returncode == 0 and result["ok"], f"{result}\n{r.stderr[-3000:]}\npeer log: {secc.log_path}"
        end = secc.wait_for(jp.SESSION_MARKERS["session_end"], 15)
        assert end.group("reason") == "EV requested to terminate the communication session", end.group(0)
    finally:
        secc.stop()
    lines = map(json.loads, trace.read_text().splitlines())
    names = [x["message"] for x in lines if "message" in x]      # event lines carry none
    assert names.index("CertificateInstallationRes") < names.index("PaymentDetailsRes") < \
        names.index("AuthorizationRes")
    assert "PaymentDetailsReq received" in secc.log() and "AuthorizationReq received" in secc.log()
