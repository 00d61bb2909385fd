"""`exi15118 secc`/`evcc`: PKI checks at start-up, DIN never over TLS, Ctrl-C, SDP progress
(issue 14, items 5-8).  Network parts run in two namespaces (tests/netns.py)."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.netns import SECCProcess, netns_pair

from .conftest import ROOT, assert_clean

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    from exi.v2g.pki import create_pki, write_pki
    base = tmp_path_factory.mktemp("pkis")
    out = {}
    for name, profile, pw in (("iso2", "iso2", None), ("iso2b", "iso2", None), ("iso20", "iso20", None),
                              ("enc", "iso2", PASSWORD)):
        write_pki(create_pki(profile), base / name, password=pw)
        out[name] = base / name
    mixed = base / "untrusted"          # the SECC chain of one PKI, the V2G root of another
    shutil.copytree(out["iso2"], mixed)
    for rel in ("certs/v2gRootCA.pem", "certs/v2gRootCA.der"):
        shutil.copy(out["iso2b"] / rel, mixed / rel)
    out["untrusted"] = mixed
    return out


# --- item 5: the PKI folder is checked before anything starts -----------------------------

def test_pki_that_does_not_exist(cli):
    r = cli("secc", "-i", "lo", "--tls", "--pki", "/nonexistent")
    assert r.code == 2 and r.err == "exi15118 secc: error: --pki /nonexistent: no such folder\n"
    r = cli("evcc", "-i", "lo", "--protocol", "iso2", "--mode", "dc", "--tls", "--pki", "/nonexistent")
    assert r.code == 2 and r.err == "exi15118 evcc: error: --pki /nonexistent: no such folder\n"


def test_pki_of_the_wrong_profile(cli, pkis):
    r = cli("secc", "-i", "lo", "--tls", "--pki", pkis["iso20"])       # default protocols: din,iso2
    assert r.code == 2 and "is an ISO 15118-20 PKI: it cannot serve ISO 15118-2 TLS" in r.err
    assert "--profile iso2" in r.err and "('" not in r.err
    r = cli("secc", "-i", "lo", "--protocols", "iso20", "--tls", "--pki", pkis["iso2"])
    assert r.code == 2 and "cannot serve ISO 15118-20 TLS: it is an ISO 15118-2 PKI" in r.err
    # a -2 folder whose SECC key is of the -20 curve: the certificate check names the reason
    broken = pkis["iso2"].parent / "iso2-wrong-key"
    shutil.copytree(pkis["iso2"], broken)
    for rel in ("certs/seccChain.pem", "private_keys/seccLeaf.key"):
        shutil.copy(pkis["iso20"] / rel, broken / rel)
    r = cli("secc", "-i", "lo", "--tls", "--pki", broken)
    assert r.code == 2 and "cannot serve ISO 15118-2 TLS: SECC certificate" in r.err
    assert "ISO 15118-2 needs a secp256r1 key, got secp521r1 (an iso2 PKI" in r.err and "('" not in r.err


def test_pki_whose_chain_does_not_reach_its_root(cli, pkis):
    r = cli("secc", "-i", "lo", "--tls", "--pki", pkis["untrusted"])
    assert r.code == 2 and "the SECC chain is broken" in r.err
    assert "EVs trusting certs/v2gRootCA.pem would refuse every handshake" in r.err
    assert_clean(r.err)


def test_pki_files_missing(cli, tmp_path):
    r = cli("secc", "-i", "lo", "--tls", "--pki", tmp_path)
    assert r.code == 2 and "certs/seccChain.pem is missing" in r.err


def test_encrypted_key_needs_a_password_and_never_prompts(cli, pkis, monkeypatch):
    monkeypatch.delenv("EXI15118_PKI_PASSWORD", raising=False)
    r = cli("secc", "-i", "lo", "--tls", "--pki", pkis["enc"])
    assert r.code == 2 and "seccLeaf.key is encrypted: give --pki-password PW or set EXI15118_PKI_PASSWORD" in r.err
    r = cli("secc", "-i", "lo", "--tls", "--pki", pkis["enc"], "--pki-password", "wrong")
    assert r.code == 2 and "wrong password" in r.err


def test_din_has_no_tls(cli, pkis):
    r = cli("secc", "-i", "lo", "--tls", "--pki", pkis["iso2"], "--protocols", "din")
    assert r.code == 2 and "DIN SPEC 70121 has no TLS" in r.err
    r = cli("evcc", "-i", "lo", "--protocol", "din", "--mode", "dc", "--tls", "--pki", pkis["iso2"])
    assert r.code == 2 and "DIN SPEC 70121 has no TLS" in r.err


# --- in two namespaces --------------------------------------------------------------------

pair = pytest.fixture(scope="module")(netns_pair)


def _env(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def _read_until(stream, needle: str, timeout: float = 20) -> list[str]:
    lines, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([stream], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen in:\n{''.join(lines)[-3000:]}")


def _evcc(pair, *args, **kw):
    return pair.popen("evcc", [sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], *map(str, args)],
                      cwd=str(ROOT), **kw)


def test_sdp_progress_then_ctrl_c(pair):
    """No charger: one info line at once, each repeated request at debug; Ctrl-C ends it
    with the result line (exit 130).  Runs before any SECC exists in the pair."""
    ev = _evcc(pair, "--protocol", "iso2", "--mode", "ac", "--log-level", "DEBUG")
    lines = _read_until(ev.stderr, "request 3 of 50")
    assert any("SDP: looking for a charger on" in x and "up to 50 requests 0.25 s apart" in x for x in lines)
    ev.send_signal(signal.SIGINT)
    out, err = ev.communicate(timeout=20)
    assert ev.returncode == 130, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res["interrupted"] and not res["ok"]
    assert res["reason"] == "interrupted (Ctrl-C) before the session started (SDP, connection)"
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def secc(pair, pkis):
    """A TLS SECC on the encrypted PKI, its password from the environment."""
    s = SECCProcess(pair, ["--tls", "--pki", pkis["enc"], "--protocols", "iso2,din"],
                    env=_env(EXI15118_PKI_PASSWORD=PASSWORD))
    yield s
    s.kill()


def test_encrypted_pki_serves_tls(pair, pkis, secc):
    r = pair.run("evcc", [sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol", "iso2",
                          "--mode", "dc", "--loops", "2", "--loop-interval", "0.02", "--tls", "--pki",
                          str(pkis["enc"])], cwd=str(ROOT), timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["ok"] and "TLS TLSv1.2" in r.stderr


DIN_OVER_TLS = """
import asyncio, json, sys
from exi.v2g.session.drivers import evcc_tls_context, run_evcc
from exi.v2g.session.evcc import EVCCConfig
iface, host, port, pki = sys.argv[1:]
res = asyncio.run(run_evcc(iface, EVCCConfig(protocols=("din",), mode="dc"), ssl=evcc_tls_context(pki),
                           host=host, port=int(port)))
print(json.dumps({"ok": res.ok, "code": res.response_code, "reason": res.reason}))
"""


def test_secc_does_not_offer_din_over_tls(pair, pkis, secc):
    """[V2G-DC-618] (2nd-hand): DIN SPEC 70121 has no TLS; an EV offering only DIN on the
    TLS port gets Failed_NoNegotiation."""
    r = pair.run("evcc", [sys.executable, "-c", DIN_OVER_TLS, pair.iface["evcc"], pair.link_local("secc"),
                          str(secc.ready["tls_port"]), str(pkis["enc"])], cwd=str(ROOT), timeout=60)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert not res["ok"] and res["code"] == "Failed_NoNegotiation", r.stderr[-2000:]


def test_evcc_ctrl_c_in_the_charge_loop_stops_like_a_car(pair, secc, tmp_path):
    trace = tmp_path / "evcc.jsonl"
    ev = _evcc(pair, "--protocol", "iso2", "--mode", "dc", "--loops", "100000", "--loop-interval", "0.05",
               "--host", pair.link_local("secc"), "--port", secc.ready["tcp_port"], "--trace", trace,
               "--log-level", "DEBUG")                     # per-message lines are at DEBUG
    _read_until(ev.stderr, "-> CurrentDemandReq", timeout=30)
    ev.send_signal(signal.SIGINT)
    out, err = ev.communicate(timeout=30)
    assert ev.returncode == 130, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res == {"event": "result", "ok": True, "reason": "SessionStop (Terminate) after: interrupted (Ctrl-C)",
                   "paused": False, "session_id": res["session_id"], "response_code": None, "interrupted": True}
    names = [json.loads(x)["message"] for x in trace.read_text().splitlines()]
    last_loop = len(names) - 1 - names[::-1].index("CurrentDemandRes")
    ending = [n for n in names[last_loop + 1:] if n.endswith("Req")]
    assert ending[0] == "PowerDeliveryReq" and ending[-1] == "SessionStopReq", ending
    assert set(ending[1:-1]) == {"WeldingDetectionReq"} and names[-1] == "SessionStopRes"
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert {x["direction"] for x in lines} == {"EVCC->SECC", "SECC->EVCC"}     # as in capture output
    assert lines[0]["elapsed"] == 0.0 and lines[-1]["elapsed"] > 0
    assert "Traceback" not in err


def test_secc_ctrl_c_ends_its_sessions_without_traceback(pair, secc):
    ev = _evcc(pair, "--protocol", "iso2", "--mode", "dc", "--loops", "100000", "--loop-interval", "0.05",
               "--host", pair.link_local("secc"), "--port", secc.ready["tcp_port"], "--log-level", "DEBUG")
    _read_until(ev.stderr, "-> CurrentDemandReq", timeout=30)
    code, out, err = secc.interrupt()
    assert code == 0 and "Traceback" not in err, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"
    assert "SECC stopping: closing 1 open session(s)" in err
    ev_out, ev_err = ev.communicate(timeout=30)
    assert ev.returncode == 1 and not json.loads(ev_out.strip().splitlines()[-1])["ok"]
