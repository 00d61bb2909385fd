"""Shared fixtures for the capture tests.  Missing prerequisites fail, never skip."""
import json
import os
import shutil

import pytest

from exi.capture import synth

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("EXI_SHARED_VECTORS", os.path.join(os.path.dirname(REPO), "shared", "vectors"))


@pytest.fixture(scope="session")
def samples():
    with open(os.path.join(DATA, "exi_samples.json")) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def codec():
    try:
        import exi
        exi.decode, exi.to_dict, exi.to_xml
    except Exception as e:      # noqa: BLE001 - any import problem means the codec is not usable
        pytest.fail(f"the EXI codec (exi.decode/exi.to_dict/exi.to_xml) is not importable: {e}")
    return exi


@pytest.fixture(scope="session")
def tshark():
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is needed for TLS decryption: DEBIAN_FRONTEND=noninteractive apt-get install -y tshark")
    return path


@pytest.fixture(scope="session")
def shared_captures():
    path = os.path.join(SHARED, "captures")
    if not os.path.isdir(path):
        pytest.fail(f"shared capture vectors not found at {path} (check out /work/shared next to the "
                    "repository, or set EXI_SHARED_VECTORS to the vectors directory)")
    return path


def session_frames(entries, client=synth.EVCC6, cport=50000, server=synth.SECC6, sport=15118,
                   t0=1_700_000_000.0, handshake=True, fin=True, dt=0.01):
    """One TCP conversation sending the sample entries in order (Req from the EVCC)."""
    c = synth.TcpConversation(client, cport, server, sport, t0=t0)
    if handshake:
        c.handshake()
    for e in entries:
        c.send(e["message"].endswith("Req"), synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"])), dt=dt)
    if fin:
        c.fin()
    return c


class StandIn:
    """A stand-in for exi.decode/to_dict that knows only the fixture payloads, so the
    reassembly and schema-decision layers are tested without the codec."""

    def __init__(self, samples):
        self.known = {}
        for entries in samples["sessions"].values():
            for e in entries:
                self.known[(e["schema"], bytes.fromhex(e["exi_hex"]))] = e
        e = samples["failed_sap_res"]
        self.known[(e["schema"], bytes.fromhex(e["exi_hex"]))] = e

    def __call__(self, data, schema):
        e = self.known.get((schema, bytes(data)))
        if e is None:
            raise ValueError(f"stand-in: payload not known for schema {schema}")
        if schema == "sap":
            return {e["message"]: e["sap_fields"]}
        if schema in ("din", "iso2"):
            return {"V2G_Message": {"Header": {"SessionID": "01"}, "Body": {e["message"]: {}}}}
        return {e["message"]: {"Header": {"SessionID": "01"}}}
