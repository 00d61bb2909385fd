"""Plug & Charge security for ISO 15118-2, usable without a session.

* :mod:`.xmldsig`: XML signatures over EXI fragments (build and verify, -2 profile);
* :mod:`.keys`: contract private key transport (ECDH P-256, ConcatKDF, AES-128-CBC);
* :mod:`.certs`: certificate chain validation with the standard's response codes;
* :mod:`.installation`: CertificateInstallation/Update requests and responses;
* :mod:`.ocsp`: OCSP request data, responses, revocation checks and a loopback responder;
* :mod:`.stapling`: OCSP stapling (status_request) on stdlib ``ssl`` contexts;
* :mod:`.trusted_ca`: TLS trusted_ca_keys (send, choose the chain) on stdlib ``ssl`` contexts.

See README.md in this folder for the API and how the sessions use it.
"""
from .errors import CertificateError, KeyTransportError, SecurityError, SignatureError
from .xmldsig import SignedElement, sign, sign_message, verify, verify_message

__all__ = ["SecurityError", "SignatureError", "CertificateError", "KeyTransportError",
           "SignedElement", "sign", "verify", "sign_message", "verify_message"]
