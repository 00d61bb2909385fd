"""Transport layer of exi15118: V2GTP framing, SECC discovery (SDP), TLS profiles,
test PKI generation and thin asyncio drivers.

The protocol cores (``v2gtp.V2GTPFramer``, ``sdp.SDPClient``/``SDPServer``) are sans-I/O:
they take bytes and the current time and return bytes, frames and their next deadline.
``sdp`` and ``transport`` add small asyncio drivers on top; ``tls`` builds ``ssl``
contexts for the ISO 15118-2 and -20 profiles; ``pki`` writes test certificate chains.
"""
from exi.v2g.v2gtp import (  # noqa: F401
    Action, Frame, V2GTPError, V2GTPFramer, pack, parse_datagram, parse_header,
)

__all__ = ["Action", "Frame", "V2GTPError", "V2GTPFramer", "pack", "parse_datagram",
           "parse_header"]
