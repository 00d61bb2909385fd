"""Exceptions of the codec.  Both are ValueErrors so that callers that only care about
"bad data" can catch one thing; both say where the problem is."""
from __future__ import annotations


class EXIError(ValueError):
    """Base class of every error the codec raises on bad data."""

    def __init__(self, message: str, path: str = "", bit_offset: int = -1):
        self.reason = message
        self.path = path
        self.bit_offset = bit_offset
        where = path or "/"
        if bit_offset >= 0:
            text = f"{where}: {message} at bit {bit_offset}"
        else:
            text = f"{where}: {message}"
        super().__init__(text)


class DecodeError(EXIError):
    """The input is not a valid EXI stream for the schema (truncated, corrupt, wrong grammar)."""


class EncodeError(EXIError):
    """The message cannot be encoded: a value out of range, a missing required element, ..."""


class ValidationError(EXIError):
    """A message (typically a decoded one) breaks its schema's facets: a value out of range, a
    string or array too long, a required element missing.  Decoding accepts such values
    (real-world streams carry them); exi.validate() says whether a message may be trusted."""


class TrailingDataError(DecodeError):
    """Bytes are left after the end of the EXI document.  `message` is the document that
    was decoded, `end` the number of bytes it took: a caller that accepts the padding
    some encoders add (exi.decode(..., padding=True) for zero bytes) can still use it."""

    def __init__(self, message: str, path: str = "", bit_offset: int = -1, *, document=None, end: int = 0):
        super().__init__(message, path, bit_offset)
        self.message = document
        self.end = end
