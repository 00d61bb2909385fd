"""benchmarks/calibrated.py --peer: a C codec behind prep()/loop() timed in alternation with
ours.  The peer here is a stand-in written for this test (it "decodes" by copying the
stream and "encodes" by copying it back), compiled with the C compiler that builds the
extensions; the test checks the interface and the table, not anyone's speed."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from ._support import REPO

STAND_IN = r"""
#include <string.h>
#include <time.h>
static unsigned char doc[65536], out[65536];
static size_t doc_len;
static volatile unsigned sink;
int prep(int schema, const unsigned char *data, size_t len) {
    if (schema == 3 || len > sizeof doc) return -1;         /* no -20 here */
    memcpy(doc, data, len); doc_len = len;
    return schema == 0;                                      /* SAP: "re-encodes differently" */
}
static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double loop(int op, size_t n) {
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        memcpy(op ? out : doc, op ? doc : out, doc_len);
        sink += out[0];
    }
    return now() - t0;
}
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler (Debian: gcc) is needed, as for building the extensions"
    d = tmp_path_factory.mktemp("peer")
    (d / "peer.c").write_text(STAND_IN)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(d / "libpeer.so"), str(d / "peer.c")],
                   check=True, capture_output=True)
    return d / "libpeer.so"


def test_peer_is_timed_beside_ours_with_ratios_and_notes(stand_in):
    run = subprocess.run(
        [sys.executable, "benchmarks/calibrated.py", "--rounds", "2", "--target", "0.004", "--markdown",
         "--only", "SessionSetupReq", "--peer", f"Copy={stand_in}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| message | bytes | encode ns | decode ns | Copy enc / dec ns | × Copy enc / dec |")
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ") for ln in lines[1:]}
    assert set(rows) == {"DIN SessionSetupReq", "ISO2 SessionSetupReq"}
    for cells in rows.values():
        ours = [float(x.replace(",", "")) for x in cells[2:4]]
        theirs = [float(x.replace(",", "")) for x in cells[4].split(" / ")]
        ratios = [float(x) for x in cells[5].rstrip(" |").split(" / ")]
        assert all(v > 0 for v in ours + theirs)
        for o, t, r in zip(ours, theirs, ratios):      # the ns cells are rounded to 1 ns
            assert abs(o / t - r) <= r * (0.5 / t + 0.5 / o) + 0.01


def test_streams_a_peer_cannot_do_or_reencodes_differently_are_marked(stand_in):
    run = subprocess.run(
        [sys.executable, "benchmarks/calibrated.py", "--rounds", "1", "--target", "0.002",
         "--peer", f"Copy={stand_in}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "ISO20 DC_ChargeLoopReq: Copy: cannot do this stream" in out
    assert "SAP supportedAppProtocolReq (3 protocols): Copy: its re-encoding differs from the stream" in out
    sap = next(ln for ln in out.splitlines() if ln.startswith("SAP "))
    assert sap.rstrip().endswith("*")
    dc = next(ln for ln in out.splitlines() if ln.startswith("ISO20 DC_ChargeLoopReq"))
    assert "– / –" in dc


def test_without_peers_the_ratios_are_to_the_issue_figures():
    run = subprocess.run(
        [sys.executable, "benchmarks/calibrated.py", "--rounds", "1", "--target", "0.002", "--only",
         "ISO2 SessionSetupReq"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    row = next(ln for ln in run.stdout.splitlines() if ln.startswith("ISO2 SessionSetupReq"))
    cells = row.split()
    enc, dec = float(cells[3].replace(",", "")), float(cells[4].replace(",", ""))
    r_enc, r_dec = float(cells[5]), float(cells[7])          # "x / y" against 54 / 60 ns
    assert abs(r_enc - enc / 54) < 0.02 and abs(r_dec - dec / 60) < 0.02
    assert cells[-3:] == ["–", "/", "–"]                     # no libcbv2g figure for it
