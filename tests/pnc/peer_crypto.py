"""Runs inside the iso15118 package's virtualenv (tests/pnc/test_peer_crypto.py starts it):
its own -2 security functions on the inputs of a JSON file; prints the results as JSON.
No JVM: only the functions that do not need its EXI codec (signatures are checked against
RISE-V2G's instead, tests/pnc/test_xmldsig.py)."""
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from iso15118.shared.settings import SettingKey, load_shared_settings, shared_settings

load_shared_settings()
shared_settings[SettingKey.MESSAGE_LOG_JSON] = False
from iso15118.shared import security as sec  # noqa: E402
d = json.loads(Path(sys.argv[1]).read_text())
oem_key = load_pem_private_key(d["oem_key"].encode(), None)
contract_key = load_pem_private_key(d["contract_key"].encode(), None)
dh, enc = sec.encrypt_priv_key(bytes.fromhex(d["oem_cert"]), contract_key)
plain = sec.decrypt_priv_key(bytes.fromhex(d["our_encrypted"]), oem_key,
                             sec.to_ec_pub_key(bytes.fromhex(d["our_dh"])))
print(json.dumps({
    "dh": bytes(dh).hex(), "encrypted": bytes(enc).hex(), "decrypted": bytes(plain).hex(),
    "hash_data": sec.derive_certificate_hash_data(bytes.fromhex(d["contract_cert"]),
                                                  bytes.fromhex(d["subca2_cert"]))}))
