"""exi15118: a schema-informed EXI codec for ISO 15118 and DIN SPEC 70121.

    >>> import exi
    >>> msg = exi.decode(bytes.fromhex("80400040"), "sap")
    >>> exi.to_dict(msg)
    {'supportedAppProtocolRes': {'ResponseCode': 'OK_SuccessfulNegotiation', 'SchemaID': 1}}
    >>> exi.encode(msg).hex()
    '80400040'
"""
from __future__ import annotations

from ._impl import IMPLEMENTATION  # noqa: F401  (must run before the engine is imported)
from ._api import (decode, decode_fragment, encode, encode_fragment, from_dict, from_xml,
                   schema, to_dict, to_xml)
from ._validate import validate
from .errors import DecodeError, EncodeError, EXIError, TrailingDataError, ValidationError
from .message import AnyElement, ElementValue, Message

__all__ = ["decode", "encode", "decode_fragment", "encode_fragment", "to_dict", "from_dict",
           "to_xml", "from_xml", "schema", "validate", "DecodeError", "EncodeError", "EXIError",
           "TrailingDataError", "ValidationError", "Message",
           "ElementValue", "AnyElement",
           "__version__"]
__version__ = "0.1.0"
