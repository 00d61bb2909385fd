"""-2 Plug & Charge crypto against the iso15118 package's own implementation (its
security.py): contract key transport both ways, OCSP hash data."""
import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from exi.v2g.pki import create_pki
from exi.v2g.security import keys, ocsp

from tests.interop.peer import PeerUnavailable, ensure_peer_venv, venv_python

pytestmark = pytest.mark.interop


def _pem(key) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    try:
        venv = ensure_peer_venv()
    except PeerUnavailable as e:
        pytest.fail(str(e))
    pki = create_pki("iso2", ocsp_url="http://127.0.0.1:9/ocsp")
    dh, enc = keys.encrypt_contract_key(pki.keys["contractLeaf"], pki.certs["oemProvLeaf"])
    der = {n: pki.certs[n].public_bytes(Encoding.DER).hex() for n in pki.certs}
    inputs = {"oem_key": _pem(pki.keys["oemProvLeaf"]), "contract_key": _pem(pki.keys["contractLeaf"]),
              "oem_cert": der["oemProvLeaf"], "our_encrypted": enc.hex(), "our_dh": dh.hex(),
              "contract_cert": der["contractLeaf"],
              "subca2_cert": der["moSubCA2"]}
    path = tmp_path_factory.mktemp("peer") / "in.json"
    path.write_text(json.dumps(inputs))
    script = __file__.replace("test_peer_crypto.py", "peer_crypto.py")
    p = subprocess.run([str(venv_python(venv)), script, str(path)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return pki, json.loads(p.stdout.strip().splitlines()[-1])


def test_contract_key_transport_both_ways(peer):
    pki, out = peer
    contract = pki.keys["contractLeaf"]
    # theirs encrypted, ours decrypts
    mine = keys.decrypt_contract_key(bytes.fromhex(out["encrypted"]), bytes.fromhex(out["dh"]),
                                     pki.keys["oemProvLeaf"])
    assert mine.private_numbers() == contract.private_numbers()
    keys.check_key_matches(mine, pki.certs["contractLeaf"])
    # ours encrypted, theirs decrypted
    assert int(out["decrypted"], 16) == contract.private_numbers().private_value


def test_ocsp_hash_data_agrees(peer):
    pki, out = peer
    theirs = out["hash_data"]
    ours = ocsp.request_data(pki.certs["contractLeaf"], pki.certs["moSubCA2"])

    def unb64(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    # same hashes; they write them base64url and the serial in decimal, we write hex
    assert theirs["hash_algorithm"] == ours.hash_algorithm
    assert unb64(theirs["issuer_name_hash"]).hex() == ours.issuer_name_hash
    assert unb64(theirs["issuer_key_hash"]).hex() == ours.issuer_key_hash
    assert int(theirs["serial_number"]) == int(ours.serial_number, 16)
    assert theirs["responder_url"] == ours.responder_url == "http://127.0.0.1:9/ocsp"
