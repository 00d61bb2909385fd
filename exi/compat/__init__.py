"""Adapters that let other V2G stacks use this codec (see each module's doc string).

- :mod:`exi.compat.josev`: ``ExiCodec`` (alias ``Exi15118Codec``), the ``IEXICodec`` of the
  ``iso15118`` PyPI package (SwitchEV "Josev"), a drop-in for its Java EXIficient codec.
"""
from .josev import (CodecJSONError, Exi15118Codec, ExiCodec, UnknownNamespaceError)

__all__ = ["ExiCodec", "Exi15118Codec", "UnknownNamespaceError", "CodecJSONError"]
