"""A -2 PKI folder of ours laid out the way the ``iso15118`` package (Josev) reads one, so
that both stacks run Plug & Charge on one PKI (interop tests).

The package reads ``PKI_PATH/iso15118_2/certs/<name>Cert.der`` (and a few ``.pem``),
``PKI_PATH/iso15118_2/private_keys/<name>.key`` (PEM, encrypted) and the passwords from
``*Password.txt`` files next to them (its ``CertPath``, ``KeyPath``, ``KeyPasswordPath``;
file names only are used here, nothing of its code).  Our OEM provisioning leaf is its
``oemLeaf``; our SECC chain file is its ``cpoCertChain.pem``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["write_iso15118_package_layout", "ISO15118_PACKAGE_NAMES"]

# ours -> the package's base name (certificate "<base>Cert.der", key "<base>.key")
ISO15118_PACKAGE_NAMES = {
    "contractLeaf": "contractLeaf", "moSubCA2": "moSubCA2", "moSubCA1": "moSubCA1",
    "moRootCA": "moRootCA", "seccLeaf": "seccLeaf", "cpoSubCA2": "cpoSubCA2",
    "cpoSubCA1": "cpoSubCA1", "v2gRootCA": "v2gRootCA", "cpsLeaf": "cpsLeaf",
    "cpsSubCA2": "cpsSubCA2", "cpsSubCA1": "cpsSubCA1", "oemProvLeaf": "oemLeaf",
    "oemSubCA2": "oemSubCA2", "oemSubCA1": "oemSubCA1", "oemRootCA": "oemRootCA",
}
_PEM_TOO = {"seccLeaf", "v2gRootCA", "oemRootCA"}
_PASSWORD_FILES = {"seccLeaf": "seccLeafPassword.txt", "oemProvLeaf": "oemLeafPassword.txt",
                   "contractLeaf": "contractLeafPassword.txt", "cpsLeaf": "cpsLeafPassword.txt",
                   "moSubCA2": "moSubCA2LeafPassword.txt"}
_CHAINS = {"cpoCertChain.pem": "seccChain.pem", "oemCertChain.pem": "oemProvChain.pem"}


def write_iso15118_package_layout(folder: Union[str, Path], out: Union[str, Path], *,
                                  password: Optional[str] = None,
                                  out_password: str = "12345") -> Path:
    """Write ``out/iso15118_2/{certs,private_keys}`` from our PKI ``folder``; keys are
    re-encrypted with ``out_password`` (the package's test PKI uses 12345).  Returns the
    ``PKI_PATH`` to give the package."""
    folder, out = Path(folder), Path(out)
    certs, keys = out / "iso15118_2" / "certs", out / "iso15118_2" / "private_keys"
    certs.mkdir(parents=True, exist_ok=True)
    keys.mkdir(parents=True, exist_ok=True)
    enc = serialization.BestAvailableEncryption(out_password.encode())
    for ours, theirs in ISO15118_PACKAGE_NAMES.items():
        pem = folder / "certs" / f"{ours}.pem"
        if not pem.exists():
            continue
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        (certs / f"{theirs}Cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
        if ours in _PEM_TOO:
            (certs / f"{theirs}Cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = folder / "private_keys" / f"{ours}.key"
        if key_file.exists():
            key = serialization.load_pem_private_key(
                key_file.read_bytes(), password.encode() if password else None)
            target = keys / f"{theirs}.key"
            target.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.TraditionalOpenSSL, enc))
            target.chmod(0o600)
        if ours in _PASSWORD_FILES:
            (keys / _PASSWORD_FILES[ours]).write_text(out_password + "\n")
    for theirs, ours in _CHAINS.items():
        if (folder / "certs" / ours).exists():
            (certs / theirs).write_bytes((folder / "certs" / ours).read_bytes())
    return out
