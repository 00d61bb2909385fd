"""The backend seam of Plug & Charge (OCPP 2.0.1-shaped) and a local implementation."""
from .base import (RESPONSE_CODE, AuthorizeRequest, AuthorizeResponse, Backend,
                   Get15118EVCertificateRequest, Get15118EVCertificateResponse,
                   GetCertificateStatusRequest, GetCertificateStatusResponse, OCSPRequestData)
from .local import LocalBackend

__all__ = ["Backend", "LocalBackend", "AuthorizeRequest", "AuthorizeResponse",
           "Get15118EVCertificateRequest", "Get15118EVCertificateResponse",
           "GetCertificateStatusRequest", "GetCertificateStatusResponse", "OCSPRequestData",
           "RESPONSE_CODE"]
