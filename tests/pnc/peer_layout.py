"""Runs inside the iso15118 package's virtualenv (tests/pnc/test_peer_layout.py starts
it with PKI_PATH set to our PKI in its layout): loads every chain and key the package's
-2 Plug & Charge reads, runs its own chain check on each, prints the results as JSON."""
import json

from iso15118.shared.settings import SettingKey, load_shared_settings, shared_settings

load_shared_settings()
shared_settings[SettingKey.MESSAGE_LOG_JSON] = False
from iso15118.shared import security as sec  # noqa: E402
from iso15118.shared.messages.enums import Protocol  # noqa: E402

C, K, P = sec.CertPath, sec.KeyPath, sec.KeyPasswordPath
out = {}
for name, leaf, sub2, sub1, root in [
        ("contract", C.CONTRACT_LEAF_DER, C.MO_SUB_CA2_DER, C.MO_SUB_CA1_DER, C.MO_ROOT_DER),
        ("secc", C.SECC_LEAF_DER, C.CPO_SUB_CA2_DER, C.CPO_SUB_CA1_DER, C.V2G_ROOT_DER),
        ("cps", C.CPS_LEAF_DER, C.CPS_SUB_CA2_DER, C.CPS_SUB_CA1_DER, C.V2G_ROOT_DER),
        ("oem", C.OEM_LEAF_DER, C.OEM_SUB_CA2_DER, C.OEM_SUB_CA1_DER, C.OEM_ROOT_DER)]:
    chain = sec.load_cert_chain(Protocol.ISO_15118_2, leaf, sub2, sub1)
    try:
        sec.verify_certs(chain.certificate, chain.sub_certificates.certificates,
                         sec.load_cert(root))
        out[name] = "ok"
    except Exception as e:
        out[name] = f"{type(e).__name__}: {e}"
for name, key, pw in [("contract", K.CONTRACT_LEAF_PEM, P.CONTRACT_LEAF_KEY_PASSWORD),
                      ("oem", K.OEM_LEAF_PEM, P.OEM_LEAF_KEY_PASSWORD),
                      ("secc", K.SECC_LEAF_PEM, P.SECC_LEAF_KEY_PASSWORD),
                      ("cps", K.CPS_LEAF_PEM, P.CPS_LEAF_KEY_PASSWORD),
                      ("moSubCA2", K.MO_SUB_CA2_PEM, P.MO_SUB_CA2_PASSWORD)]:
    k = sec.load_priv_key(key, sec.KeyEncoding.PEM, pw)
    out[name + "_key"] = k.public_key().public_numbers().x
out["contract_cn"] = sec.get_cert_cn(sec.load_cert(C.CONTRACT_LEAF_DER))
out["tls"] = type(sec.get_ssl_context(True)).__name__
print(json.dumps(out))
