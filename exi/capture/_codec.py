"""The one place where capture decoding meets the EXI codec.

decode(payload, schema) -> (message_name, content_dict, message_object).  Results are cached per
(schema, payload): a capture repeats identical EXI payloads constantly (the charge
loop), and a decoded dict is pure data.  Cached dicts are shared between records, so
callers must treat `content` as read-only; Decoder(cache=False) turns this off.
"""
from __future__ import annotations

from typing import Callable, Optional


class CodecUnavailable(RuntimeError):
    pass


def _load() -> tuple[Callable, Callable, type]:
    try:
        import exi
        return exi.decode, exi.to_dict, exi.DecodeError
    except (ImportError, AttributeError) as e:
        raise CodecUnavailable(f"EXI codec not available (exi.decode/exi.to_dict): {e}") from None


def message_name(d: dict) -> Optional[str]:
    """Element inside Body for DIN/-2, the root element otherwise."""
    if not d:
        return None
    root = next(iter(d))
    if root == "V2G_Message":
        body = (d[root] or {}).get("Body") or {}
        return next(iter(body), None) or "V2G_Message"
    return root


class Decoder:
    CACHE_LIMIT = 200_000

    def __init__(self, cache: bool = True, impl: Optional[Callable] = None):
        self.cache = {} if cache else None
        self.hits = 0
        self.calls = 0
        self._impl = impl          # tests may inject a fake (payload, schema) -> dict
        self._loaded = None

    def _fns(self):
        if self._loaded is None:
            if self._impl is not None:
                self._loaded = (self._impl, None, Exception)
            else:
                self._loaded = _load()
        return self._loaded

    def decode(self, payload: bytes, schema: str) -> tuple[Optional[str], dict, object]:
        """Raise ValueError (the codec's DecodeError) or CodecUnavailable."""
        self.calls += 1
        cache = self.cache
        if cache is not None:
            key = (schema, payload)
            hit = cache.get(key)
            if hit is not None:
                self.hits += 1
                if isinstance(hit, BaseException):
                    raise hit
                return hit
        dec, to_dict, _err = self._fns()
        try:
            if to_dict is None:
                msg = d = dec(payload, schema)
            else:
                msg = dec(payload, schema)
                d = to_dict(msg)
            res = (message_name(d), d, msg)
        except CodecUnavailable:
            raise
        except Exception as e:  # the codec's contract is DecodeError, but never let a codec bug stop a capture
            if not isinstance(e, ValueError):
                e = ValueError(f"codec raised {type(e).__name__}: {e}")
            res = e
        if cache is not None:
            if len(cache) >= self.CACHE_LIMIT:
                cache.clear()
            cache[key] = res
        if isinstance(res, BaseException):
            raise res
        return res
