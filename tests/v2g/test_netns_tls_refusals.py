"""TLS refusals on both sides, -2 and -20 profiles, each with a clear log line (issue 15
item 6; issue 14 item 5: the SECC logs each failed handshake with its reason).

Untrusted, expired, not-yet-valid, wrong-curve and wrong-key-usage chains:
* on the SECC (all profiles): the EVCC refuses the chain, the SECC logs why (the EVCC's
  alert, or the EVCC leaving right after the handshake when our profile check refused);
* on the vehicle (-20 only: -2 is unilateral, the SECC asks for no certificate
  [V2G2-067]..[V2G2-068] (2nd-hand, see exi/v2g/tls.py)): the SECC refuses and logs why.

One SECC process serves every case on its own port, one EVCC process tries them all.
"""
from __future__ import annotations

import json
import os
import select
import sys

import pytest

from .conftest import ROOT, extra_leaf

pytestmark = pytest.mark.netns

KINDS = ("untrusted", "expired", "not_yet_valid", "wrong_curve", "wrong_key_usage")
CURVE = {"iso2": "p256", "iso20": "p521"}
WRONG_CURVE = {"iso2": "p384", "iso20": "p256"}


def _leaf(pki, tmp, kind, profile, issuer):
    """(chain, key) of a bad certificate of ``kind``."""
    if kind == "untrusted":
        return None
    return extra_leaf(pki, tmp / f"{profile}-{issuer}-{kind}",
                      curve=WRONG_CURVE[profile] if kind == "wrong_curve" else CURVE[profile],
                      expired=kind == "expired", not_yet_valid=kind == "not_yet_valid",
                      usage=("key_agreement",) if kind == "wrong_key_usage"
                      else ("digital_signature", "key_agreement"),
                      issuer=issuer)


def build_cases(pki2, pki20, other2, other20, tmp):
    cases = []
    for profile, pki, other in (("iso2", pki2, other2), ("iso20", pki20, other20)):
        good = {"profile": profile,
                "secc_cert": str(pki / "certs/seccChain.pem"),
                "secc_key": str(pki / "private_keys/seccLeaf.key"),
                "evcc_trust": str(pki / "certs/v2gRootCA.pem")}
        if profile == "iso20":
            good.update(secc_trust=[str(pki / "certs/oemRootCA.pem"), str(pki / "certs/v2gRootCA.pem")],
                        evcc_cert=str(pki / "certs/vehicleChain.pem"),
                        evcc_key=str(pki / "private_keys/vehicleLeaf.key"))
        cases.append({**good, "name": f"{profile}-good"})
        for kind in KINDS:
            leaf = _leaf(pki, tmp, kind, profile, "cpoSubCA2")
            chain, key = leaf or (other / "certs/seccChain.pem", other / "private_keys/seccLeaf.key")
            cases.append({**good, "name": f"{profile}-secc-{kind}", "secc_cert": str(chain),
                          "secc_key": str(key)})
            if profile == "iso20":
                leaf = _leaf(pki, tmp, kind, profile, "oemSubCA2")
                chain, key = leaf or (other / "certs/vehicleChain.pem",
                                      other / "private_keys/vehicleLeaf.key")
                cases.append({**good, "name": f"{profile}-vehicle-{kind}", "evcc_cert": str(chain),
                              "evcc_key": str(key)})
    return cases


@pytest.fixture(scope="module")
def pki_iso20_other(tmp_path_factory):
    from exi.v2g.pki import create_pki, write_pki
    d = tmp_path_factory.mktemp("pki_iso20_other")
    write_pki(create_pki("iso20"), d)
    return d


def test_tls_refusals_both_sides(netns_pair, pki_iso2, pki_iso20, pki_untrusted,
                                 pki_iso20_other, tmp_path):
    pair = netns_pair
    cases = build_cases(pki_iso2, pki_iso20, pki_untrusted, pki_iso20_other, tmp_path)
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    secc = pair.popen("secc", [sys.executable, "-m", "tests.v2g._tls_matrix", "secc",
                               "--iface", pair.iface["secc"], "--cases", str(spec)],
                      cwd=str(ROOT), env=env)
    ready, _, _ = select.select([secc.stdout], [], [], 60)
    assert ready, secc.stderr.read()
    ports = secc.stdout.readline()
    r = pair.run("evcc", [sys.executable, "-m", "tests.v2g._tls_matrix", "evcc",
                          "--iface", pair.iface["evcc"], "--host", pair.link_local("secc"),
                          "--cases", str(spec), "--ports", ports], cwd=str(ROOT), env=env,
                 timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    evcc = json.loads(r.stdout.strip().splitlines()[-1])
    out, err = secc.communicate("", timeout=30)
    logs = json.loads(out.strip().splitlines()[-1])
    by_name = {c["name"]: c for c in cases}
    for name in by_name:
        line = " | ".join(logs[name])
        if name.endswith("-good"):
            assert evcc[name] == {"ok": True} and logs[name] == [], (name, evcc[name], line)
            continue
        profile, side, kind = name.split("-", 2)
        assert not evcc[name]["ok"], name
        # exactly one readable line at the SECC, naming the peer
        assert len(logs[name]) == 1 and "]:" in line, (name, line)
        if side == "secc":
            assert EVCC_REFUSES[profile, kind] in evcc[name]["message"], (name, evcc[name])
            assert SECC_SEES_REFUSAL[profile, kind] in line, (name, line)
        else:
            assert SECC_REFUSES[kind] in line, (name, line)


# What the EVCC says when the SECC's chain is bad ...
EVCC_REFUSES = {
    **{(p, "untrusted"): "unable to get local issuer certificate" for p in ("iso2", "iso20")},
    **{(p, "expired"): "certificate has expired" for p in ("iso2", "iso20")},
    **{(p, "not_yet_valid"): "certificate is not yet valid" for p in ("iso2", "iso20")},
    # -2: the SECC cannot even offer ECDHE-ECDSA with that key (OpenSSL), the EVCC sees
    # the handshake end; -20: our profile check after the handshake
    ("iso2", "wrong_curve"): "", ("iso2", "wrong_key_usage"): "",
    ("iso20", "wrong_curve"): "ISO 15118-20 needs a secp521r1 or Ed448 key, got secp256r1",
    ("iso20", "wrong_key_usage"): "keyUsage lacks digitalSignature",
}
# ... and what the SECC logs about it,
_DROPPED = "TLS handshake failed: peer closed the connection during the handshake, without an alert"
_LEFT = "silent connection: peer closed the connection right after the TLS handshake"
SECC_SEES_REFUSAL = {
    **{(p, k): _DROPPED for p in ("iso2", "iso20") for k in ("untrusted", "expired", "not_yet_valid")},
    ("iso2", "wrong_curve"): "TLS handshake failed: no shared cipher (our certificate cannot serve",
    ("iso2", "wrong_key_usage"): "TLS handshake failed: no shared cipher (our certificate cannot serve",
    ("iso20", "wrong_curve"): _LEFT, ("iso20", "wrong_key_usage"): _LEFT,
}
# and what the SECC logs when it refuses the vehicle's chain (-20).
SECC_REFUSES = {
    "untrusted": "TLS handshake failed: peer certificate refused: unable to get local issuer certificate",
    "expired": "TLS handshake failed: peer certificate refused: certificate has expired",
    "not_yet_valid": "TLS handshake failed: peer certificate refused: certificate is not yet valid",
    "wrong_curve": "TLS policy: DC=CPO,C=DE,O=exi15118 test,CN=DE*EXI*E15118*9: ISO 15118-20 needs a "
                   "secp521r1 or Ed448 key, got secp256r1",
    "wrong_key_usage": "TLS policy: DC=CPO,C=DE,O=exi15118 test,CN=DE*EXI*E15118*9: keyUsage lacks "
                       "digitalSignature",
}
