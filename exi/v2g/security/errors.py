"""Errors of the Plug & Charge security layer.

Each carries the ISO 15118-2 ResponseCode a SECC or EVCC answers with, so a session can
turn a refusal into its FAILED_* response without a mapping table of its own.
"""
from __future__ import annotations

__all__ = ["SecurityError", "SignatureError", "CertificateError", "KeyTransportError"]


class SecurityError(ValueError):
    """A signature, certificate or key was refused.  ``response_code``: the -2 code."""

    response_code = "FAILED"

    def __init__(self, message: str, response_code: str | None = None) -> None:
        super().__init__(message)
        if response_code is not None:
            self.response_code = response_code


class SignatureError(SecurityError):
    """An XML signature over EXI fragments does not verify or breaks the -2 profile."""

    response_code = "FAILED_SignatureError"


class CertificateError(SecurityError):
    """A certificate chain is refused; ``response_code`` says why (FAILED_CertChainError,
    FAILED_CertificateExpired, FAILED_CertificateRevoked, ...)."""

    response_code = "FAILED_CertChainError"


class KeyTransportError(SecurityError):
    """The encrypted contract private key cannot be decrypted or does not belong to the
    contract certificate."""

    response_code = "FAILED"
