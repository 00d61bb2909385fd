"""Contract private key transport of ISO 15118-2 CertificateInstallation/Update.

The certificate provisioning service (CPS) makes an ephemeral P-256 key, agrees a secret
Z with ECDH against the vehicle's static key (the OEM provisioning key for installation
[V2G2-820], the current contract key for update [V2G2-821]), derives the session key and
encrypts the new contract key's 32-byte scalar:

* [V2G2-819] DHpublickey: the ephemeral public key, uncompressed (65 bytes, 0x04 first);
* [V2G2-818] K = ConcatKDF(SHA-256, Z, 128 bits, OtherInfo = AlgorithmID 0x01 ‖ PartyUInfo
  0x55 ("U") ‖ PartyVInfo 0x56 ("V")) = SHA-256(00000001 ‖ Z ‖ 01 55 56)[:16];
* [V2G2-815]..[V2G2-817] ContractSignatureEncryptedPrivateKey = IV (16 random bytes) ‖
  AES-128-CBC(K, IV, scalar) without padding: 48 bytes;
* [V2G2-823] the receiver checks that the scalar is a valid private key (0 < d < n) and
  that d·G is the contract certificate's public key.

CBC has no integrity: the receiver verifies the response's signature (which covers the
encrypted key and DHpublickey) before decrypting.  RISE-V2G and the iso15118 package use
the same KDF (shared/research/tls-pki.md section 4); IDs as quoted there "(unverified
against ISO 15118-2:2014)".
"""
from __future__ import annotations

import os
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import KeyTransportError

__all__ = ["OTHER_INFO", "session_key", "encrypt_contract_key", "decrypt_contract_key",
           "key_matches_certificate", "check_key_matches"]

OTHER_INFO = b"\x01\x55\x56"        # [V2G2-818] AlgorithmID, PartyUInfo "U", PartyVInfo "V"
_CURVE = ec.SECP256R1()
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # n of P-256


def session_key(shared_secret: bytes) -> bytes:
    """[V2G2-818] the 128-bit AES key from the ECDH shared secret Z."""
    return ConcatKDFHash(algorithm=hashes.SHA256(), length=16, otherinfo=OTHER_INFO).derive(
        shared_secret)


def _p256_public(key) -> ec.EllipticCurvePublicKey:
    if isinstance(key, x509.Certificate):
        key = key.public_key()
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise KeyTransportError("ISO 15118-2 key transport uses secp256r1 keys")
    return key


def encrypt_contract_key(contract_key: ec.EllipticCurvePrivateKey,
                         recipient: Union[ec.EllipticCurvePublicKey, x509.Certificate],
                         *, iv: bytes | None = None,
                         ephemeral: ec.EllipticCurvePrivateKey | None = None) -> tuple[bytes, bytes]:
    """Encrypt ``contract_key`` for the vehicle whose static public key (or certificate) is
    ``recipient``.  Returns (DHpublickey 65 bytes, ContractSignatureEncryptedPrivateKey 48
    bytes).  ``iv``/``ephemeral`` are for test vectors only."""
    recipient = _p256_public(recipient)
    _p256_public(contract_key.public_key())
    ephemeral = ephemeral or ec.generate_private_key(_CURVE)
    key = session_key(ephemeral.exchange(ec.ECDH(), recipient))
    iv = os.urandom(16) if iv is None else iv
    if len(iv) != 16:
        raise KeyTransportError("the IV has 16 bytes")
    scalar = contract_key.private_numbers().private_value.to_bytes(32, "big")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(scalar) + enc.finalize()
    dh_public = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return dh_public, iv + ciphertext


def decrypt_contract_key(encrypted: bytes, dh_public: bytes,
                         static_key: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    """Decrypt ContractSignatureEncryptedPrivateKey with the vehicle's static key (OEM
    provisioning key or old contract key) and the CPS's DHpublickey."""
    if len(encrypted) != 48:
        raise KeyTransportError(f"ContractSignatureEncryptedPrivateKey has {len(encrypted)} "
                                "bytes, not 48 (IV 16 + AES-128-CBC of 32) [V2G2-817]")
    if len(dh_public) != 65 or dh_public[0] != 0x04:
        raise KeyTransportError("DHpublickey must be an uncompressed P-256 point "
                                "(65 bytes, 0x04 first) [V2G2-819]")
    _p256_public(static_key.public_key())
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, dh_public)
    except ValueError:
        raise KeyTransportError("DHpublickey is not a point of secp256r1") from None
    key = session_key(static_key.exchange(ec.ECDH(), peer))
    dec = Cipher(algorithms.AES(key), modes.CBC(encrypted[:16])).decryptor()
    scalar = int.from_bytes(dec.update(encrypted[16:]) + dec.finalize(), "big")
    if not 0 < scalar < _ORDER:                      # [V2G2-823]
        raise KeyTransportError("the decrypted contract key is not a valid P-256 scalar "
                                "[V2G2-823]")
    return ec.derive_private_key(scalar, _CURVE)


def key_matches_certificate(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    """True when ``cert`` holds the public key of ``key``."""
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    fmt = (Encoding.X962, PublicFormat.UncompressedPoint)
    try:
        return key.public_key().public_bytes(*fmt) == public.public_bytes(*fmt)
    except Exception:
        return False


def check_key_matches(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    """[V2G2-823] refuse a decrypted contract key that is not the certificate's."""
    if not key_matches_certificate(key, cert):
        raise KeyTransportError("the decrypted contract key does not belong to the contract "
                                "certificate [V2G2-823]")
