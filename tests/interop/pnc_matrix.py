"""Every ISO 15118-2 Plug & Charge combination with the iso15118 package (longer than the
default test run allows; tests/interop/test_pnc_interop.py runs two of them):

    sudo EXI15118_PEER_VENV=... python -m tests.interop.pnc_matrix

its EVCC against our SECC and our EVCC against its SECC, AC and DC, each with and
without a certificate installation first; prints one JSON line per session and exits 1
if one failed.  Our EVCC tolerates a late peer SECC (its JVM codec misses the 0.25 s DC
CurrentDemand timeout, and its first SessionSetupRes the 2 s one, on a loaded machine); our SECC asks for receipts in AC
only (the peer EVCC ignores ReceiptRequired in DC)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exi.v2g.pki import create_pki, write_pki
from exi.v2g.pnc.layouts import write_iso15118_package_layout
from tests.netns import REPO, NetnsPair, SECCProcess, missing_prerequisites

from . import josev_programs as jp


def peer_evcc(pair, ours, layout, work, mode, install) -> dict:
    secc = SECCProcess(pair, ["--pnc", "--pki", ours, "--protocols", "iso2",
                              *(["--receipt-required"] if mode == "ac" else [])])
    evcc = jp.start_evcc(work / "evcc", pair.iface["evcc"], netns=pair.ns["evcc"],
                         config=jp.evcc_config(
                             ["ISO_15118_2"], energy_transfer_mode="AC_three_phase_core" if mode == "ac"
                             else "DC_extended", energy_services=[mode.upper()], use_tls=True,
                             isCertInstallNeeded=install),
                         extra_env={"PKI_PATH": str(layout) + "/"})
    try:
        end = evcc.wait_for(jp.SESSION_MARKERS["session_end"], 150).group("reason")
    except TimeoutError as e:
        end = str(e)
    finally:
        evcc.stop()
        secc.stop()
    ok = end == "Communication session terminated" and "session ended (ok)" in secc.stderr
    return {"ok": ok, "peer": end, "peer_log": str(evcc.log_path)}


def our_evcc(pair, ours, layout, work, mode, install) -> dict:
    secc = jp.start_secc(work / "secc", pair.iface["secc"], netns=pair.ns["secc"],
                         protocols=["ISO_15118_2"], auth_modes=["PNC"], enforce_tls=True,
                         PKI_PATH=str(layout) + "/", ALLOW_CERT_INSTALL_SERVICE="True")
    try:
        secc.wait_for(jp.SESSION_MARKERS["secc_ready"], 90)
        r = subprocess.run(pair.argv("evcc", [
            sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol", "iso2",
            "--mode", mode, "--loops", "4", "--payment", "contract", "--pki", str(ours),
            "--precharge-tolerance", "1000", *(["--install"] if install else []),
            "--tolerate-late"]),
            cwd=str(REPO), capture_output=True, text=True, timeout=180)
        lines = r.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"ok": False, "reason": r.stderr[-500:]}
    finally:
        secc.stop()
    return {"ok": bool(result.get("ok")), "ours": result.get("reason"), "peer_log": str(secc.log_path)}


def main() -> int:
    problem = missing_prerequisites()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    failures = 0
    with tempfile.TemporaryDirectory() as tmp, NetnsPair() as pair:
        for direction, run in (("peer EVCC -> our SECC", peer_evcc), ("our EVCC -> peer SECC", our_evcc)):
            for mode in ("ac", "dc"):
                for install in (False, True):
                    work = Path(tmp) / f"{run.__name__}-{mode}-{install}"
                    ours = work / "pki"
                    write_pki(create_pki("iso2", ocsp_url=None), ours)
                    layout = write_iso15118_package_layout(ours, work / "peer_pki")
                    t0 = time.monotonic()
                    out = run(pair, ours, layout, work, mode, install)
                    failures += not out["ok"]
                    print(json.dumps({"direction": direction, "mode": mode, "install": install,
                                      "seconds": round(time.monotonic() - t0, 1), **out}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
