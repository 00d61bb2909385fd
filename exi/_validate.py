"""exi.validate: check a message against its schema's facets with the encoder's own checks."""
from __future__ import annotations

from ._api import encode
from .errors import EncodeError, ValidationError
from .message import Message


def validate(message: Message) -> None:
    """Raise ValidationError (path and reason) unless `message` satisfies every facet of its
    schema: ranges, lengths, enumerations, element counts and required elements.

    The decoder keeps values beyond the facets (an 8-byte field arriving with 60,000 bytes
    still decodes); code acting on received messages calls this first.  It costs one
    encoding of the message (a few microseconds for a V2G message)."""
    try:
        encode(message, validate=True)
    except EncodeError as e:
        raise ValidationError(e.reason, e.path, -1) from None
