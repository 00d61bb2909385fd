"""A drop-in EXI codec for the ``iso15118`` PyPI package (SwitchEV "Josev").

That package talks to its codec through one small interface,
``iso15118.shared.iexi_codec.IEXICodec``::

    encode(self, message: str, namespace: str) -> bytes    # JSON text in, EXI out
    decode(self, stream: bytes, namespace: str) -> str     # EXI in, JSON text out
    get_version(self) -> str

and ships one implementation, ``ExificientEXICodec`` (EXIficient in a JVM through py4j).
:class:`ExiCodec` implements the same three methods on this project's codec, with no JVM
and without importing the package (duck typing: ``IEXICodec`` is an ABC whose methods are
only called, never type-checked).

Plugging it in (iso15118 0.31.2; the hook is ``iso15118.shared.exi_codec.EXI``, a
singleton whose ``to_exi``/``from_exi`` every state machine and the signature code call)::

    from exi.compat import ExiCodec
    # SECC / EVCC handlers take the codec as an argument and install it themselves
    # (CommunicationSessionHandler.__init__ calls EXI().set_exi_codec(codec)):
    SECCHandler(exi_codec=ExiCodec(), evse_controller=..., config=config)
    EVCCHandler(evcc_config=..., iface=..., exi_codec=ExiCodec(), ev_controller=...)
    # anything else that uses EXI() (tests, tools, the signature helpers):
    from iso15118.shared.exi_codec import EXI
    EXI().set_exi_codec(ExiCodec())

``python -m iso15118.secc.main`` / ``evcc.main`` hard-code ``ExificientEXICodec()``: copy
their few-line ``main()`` with ``ExiCodec()`` instead.

Namespace -> message set (``exi.registry``): DIN ``urn:din:70121:2012:MsgDef``, -2
``urn:iso:15118:2:2013:MsgDef``, SAP ``urn:iso:15118:2:2010:AppProtocol``, -20
``urn:iso:std:iso:15118:-20:CommonMessages`` / ``:AC`` / ``:DC`` / ``:WPT`` / ``:ACDP``,
xmldsig ``http://www.w3.org/2000/09/xmldsig#``.

Fragments, as the package's Java codec (``AbstractEXICodec.UseFragmentMode``) decides:

- xmldsig namespace: always an EXI fragment, encode and decode (``{"SignedInfo": ...}``,
  whose digest the package signs).
- -2 namespace: the root key ``V2G_Message`` is a document; any other root key is encoded
  as a one-element fragment (the package uses ``AuthorizationReq``,
  ``CertificateInstallationReq``, ``MeteringReceiptReq``, ``SalesTariff``,
  ``ContractSignatureCertChain``, ``ContractSignatureEncryptedPrivateKey``, ``DHpublickey``,
  ``eMAID`` to compute signature digests). The Java codec does this only for those eight
  (and ``SignedInfo``); for other root keys it writes a schema-less *document* that nothing
  reads back, so there we deliberately write the correct fragment instead.
- -20 CommonMessages: ``OEMProvisioningCertificateChain`` and ``PnC_AReqAuthorizationMode``
  are fragments, every other root key (the message name) is a document.
- DIN, SAP, -20 AC/DC/WPT/ACDP: documents only.
- Decoding is document mode except for xmldsig, exactly like the Java codec (the package
  never decodes a fragment: it re-encodes what it received to check a digest).

JSON: what ``exi.to_dict`` gives (the package's conventions), written as the Java codec
writes it: compact (``{"a":1}``), keys in schema order, non-ASCII characters as themselves
except those beyond the BMP (``\uD83D\uDE00``): decoding gives the very same text.

The Java codec's quirks, decided one by one (measured with iso15118 0.31.2 / EXIficient 1.55;
``tests/interop/test_codec_interop.py`` pins each, so a change in the peer fails a test):

- SAP responses always carry ``SchemaID`` (0 when absent): NOT reproduced. The package's
  ``SupportedAppProtocolRes.schema_id`` is optional and its EVCC compares it with the
  SchemaIDs it offered (numbered from 1): absent and 0 both mean "no match". Writing a
  SchemaID 0 into a failed negotiation would put a value on the wire that the standard
  says must be absent.
- Absent optional integers the Java codec's JAXB classes hold as primitives come back
  (and go out) as 0: NOT reproduced by default: absent stays absent. ``peer_zeros=True``
  reproduces them on encode (see :data:`PEER_ZERO_FIELDS`), for digest compatibility
  with a Java-codec party that signs elements carrying them.
- An unknown JSON key is dropped silently by the Java codec; here it is an error
  (``EncodeError``, naming the key and path) unless ``unknown_keys="drop"``.
- Facets (ranges, lengths) are checked on encode (``validate=True``) like the package's own
  pydantic models do; ``validate=False`` writes out-of-facet values the way EXIficient does.
- Astral-plane characters are written as ``\uD83D\uDE00`` escapes: reproduced (text-equal
  output costs nothing and keeps logs/diffs identical).

Peer limitations the adapter does NOT share (it simply works there): DIN messages holding a
base64Binary value or an ``Id`` attribute, and any DIN header ``Signature`` (the Java codec
fails: missing javax.mail classes / IDREF resolution); -20 WPT and ACDP messages (no JAXB
bindings in the Java codec); elements of an abstract type without xsi:type.

The ``eMAID`` fragment (-2 declares ``eMAID`` with two types) takes the relaxed Element
Fragment grammar of EXI 8.5.3, as the peer does: the package uses it to verify the contract
certificate signature of a CertificateInstallation/UpdateRes (Plug & Charge).

-20: the Java codec's JAR carries pre-publication -20 XSDs, but its compiled grammar and
JAXB classes for CommonMessages, AC and DC follow the published schemas this codec uses:
bytes and JSON agree (docs/iso20-draft-differences.md).
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

import exi
from exi.errors import DecodeError, EncodeError
from exi.registry import SCHEMAS

__all__ = ["ExiCodec", "Exi15118Codec", "UnknownNamespaceError", "CodecJSONError",
           "NAMESPACES", "PEER_ZERO_FIELDS", "FRAGMENT_ROOTS"]

# namespace -> schema id, from the one registry table (no repeated constants)
NAMESPACES: dict[str, str] = {info.namespace: sid for sid, info in SCHEMAS.items()}

# root keys the Java codec encodes as fragments, per schema id (None: every root key)
FRAGMENT_ROOTS: dict[str, Optional[frozenset]] = {
    "iso2": frozenset({"ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey",
                       "DHpublickey", "eMAID", "SalesTariff", "CertificateInstallationReq",
                       "AuthorizationReq", "MeteringReceiptReq", "SignedInfo"}),
    "iso20_cm": frozenset({"OEMProvisioningCertificateChain", "PnC_AReqAuthorizationMode"}),
    "xmldsig": None,
}
_DOCUMENT_ROOTS = {"din": "V2G_Message", "iso2": "V2G_Message"}

# (schema id, type name, field) -> value the Java codec writes (and decodes) when the field
# is absent: its JAXB classes hold these optional elements as primitives. Measured with
# iso15118 0.31.2 by tests/interop/test_codec_interop.py (which fails if this list is
# incomplete or stale). SAScheduleTupleID is outside its range (1..255) as 0: EXIficient
# writes it as an untyped string, which this codec refuses to write (and to read).
PEER_ZERO_FIELDS: dict[tuple[str, str, str], Any] = {
    ("sap", "supportedAppProtocolRes", "SchemaID"): 0,
    ("iso2", "SalesTariffType", "NumEPriceLevels"): 0,
    ("iso2", "SalesTariffEntryType", "EPriceLevel"): 0,
    ("iso2", "MeteringReceiptReqType", "SAScheduleTupleID"): 0,
}


class UnknownNamespaceError(ValueError):
    """The namespace names no message set this codec knows."""


class CodecJSONError(ValueError):
    """The JSON text is not valid JSON or not a one-key object."""


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _surrogates(m) -> str:
    c = ord(m.group()) - 0x10000
    return "\\u%04X\\u%04X" % (0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF))


def _dumps(d: dict) -> str:
    """JSON text as the Java codec writes it: compact, non-ASCII as itself, except
    characters beyond the BMP, which it writes as escaped UTF-16 surrogate pairs."""
    text = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    return _ASTRAL.sub(_surrogates, text) if text.isascii() is False else text


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("exi15118")
        except PackageNotFoundError:
            pass
    except ImportError:   # pragma: no cover
        pass
    return exi.__version__


class ExiCodec:
    """``IEXICodec`` of the iso15118 package, implemented with :mod:`exi`.

    Thread-safe (no state beyond its options). Errors are ``ValueError`` subclasses:
    :class:`UnknownNamespaceError`, :class:`CodecJSONError`, ``exi.EncodeError`` and
    ``exi.DecodeError`` (with the element path and bit offset); the package wraps whatever
    the codec raises into its ``EXIEncodingError``/``EXIDecodingError``.
    """

    def __init__(self, *, validate: bool = True, unknown_keys: str = "error",
                 peer_zeros: bool = False):
        if unknown_keys not in ("error", "drop"):
            raise ValueError("unknown_keys must be 'error' or 'drop'")
        self.validate = validate
        self.unknown_keys = unknown_keys
        self.peer_zeros = peer_zeros

    # -- IEXICodec -------------------------------------------------------------------
    def encode(self, message: str, namespace: str) -> bytes:
        """JSON text (``{root: content}``) -> EXI bytes in the namespace's grammar."""
        sid = self.schema_for(namespace)
        d = self._parse(message)
        (root, content), = d.items()
        if self.unknown_keys == "drop" or (self.peer_zeros and PEER_ZERO_FIELDS):
            d = {root: self._adjust(sid, root, content)}
        obj = exi.from_dict(d, sid)
        if self._is_fragment(sid, root):
            return exi.encode_fragment(obj, schema=sid, name=root, validate=self.validate)
        if sid in _DOCUMENT_ROOTS and root != _DOCUMENT_ROOTS[sid]:
            raise EncodeError(f"{root!r} is not a document root in {namespace} "
                              f"(expected {_DOCUMENT_ROOTS[sid]!r})", "/" + root)
        return exi.encode(obj, validate=self.validate)

    def decode(self, stream: Union[bytes, bytearray, memoryview], namespace: str) -> str:
        """EXI bytes -> JSON text; xmldsig streams are fragments, all others documents."""
        sid = self.schema_for(namespace)
        if not isinstance(stream, (bytes, bytearray, memoryview)):
            raise TypeError(f"stream must be bytes-like, not {type(stream).__name__}")
        if sid == "xmldsig":
            elements = exi.decode_fragment(stream, sid)
            if len(elements) != 1:
                raise DecodeError(f"fragment holds {len(elements)} elements; the JSON form "
                                  "holds exactly one")
            d = exi.to_dict(elements[0])
        else:
            # as encode() does: V2G_Message only for DIN/-2, any global element otherwise
            d = exi.to_dict(exi.decode(stream, sid, any_root=sid not in _DOCUMENT_ROOTS))
        return _dumps(d)

    def get_version(self) -> str:
        return f"exi15118 {_version()}"

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def schema_for(namespace: str) -> str:
        """Schema id for a namespace the package passes; UnknownNamespaceError if none."""
        sid = NAMESPACES.get(namespace) if isinstance(namespace, str) else None
        if sid is None:
            raise UnknownNamespaceError(
                f"unknown namespace {namespace!r}; known: {', '.join(NAMESPACES)}")
        return sid

    @staticmethod
    def _parse(message) -> dict:
        if isinstance(message, (bytes, bytearray)):
            try:
                message = bytes(message).decode("utf-8")
            except UnicodeDecodeError as e:
                raise CodecJSONError(f"message is not UTF-8 JSON text: {e}") from None
        if not isinstance(message, str):
            raise CodecJSONError(f"message must be JSON text, not {type(message).__name__}")
        try:
            d = json.loads(message)
        except ValueError as e:
            raise CodecJSONError(f"message is not valid JSON: {e}") from None
        if not isinstance(d, dict) or len(d) != 1:
            raise CodecJSONError("message must be a JSON object with exactly one key, the "
                                 "root element name (e.g. {\"V2G_Message\": {...}})")
        return d

    @staticmethod
    def _is_fragment(sid: str, root: str) -> bool:
        if sid not in FRAGMENT_ROOTS:
            return False
        roots = FRAGMENT_ROOTS[sid]
        if roots is None:
            return True
        if sid == "iso2":
            return root != "V2G_Message"
        return root in roots

    def _adjust(self, sid: str, root: str, content):
        """Drop unknown keys / add the Java codec's zeros, walking the message classes."""
        s = exi.schema(sid)
        cls = None
        for q, _, c in s.doc_elements + s.fragment_elements:
            if s.qnames[q][1] == root and c is not None:
                cls = c
                break
        if cls is None:
            return content          # from_dict reports the bad root
        return self._adjust_obj(sid, cls, content)

    def _adjust_obj(self, sid: str, cls, content):
        if not isinstance(content, dict):
            return content
        rows = cls._field_rows
        grammars = cls._field_grammars
        known = {r[0] for r in rows}
        out = {}
        for k, v in content.items():
            if k in known or self.unknown_keys == "error":
                out[k] = v
        if self.peer_zeros:
            for (s2, tname, field), zero in PEER_ZERO_FIELDS.items():
                if s2 == sid and tname in {c.__name__ for c in cls.__mro__} and out.get(field) is None:
                    out[field] = zero
        for (name, kind, is_list, q, ref), g in zip(rows, grammars):
            v = out.get(name)
            if v is None or g is None or g.simple or g.cls is None:
                continue
            if isinstance(v, list):
                out[name] = [self._adjust_obj(sid, g.cls, x) for x in v]
            else:
                out[name] = self._adjust_obj(sid, g.cls, v)
        # keep schema order (the Java codec does not care, but diffs read better)
        order = {r[0]: i for i, r in enumerate(rows)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


Exi15118Codec = ExiCodec
