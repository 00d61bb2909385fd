"""XML signatures over EXI fragments: the ISO 15118-2 profile.

ISO 15118 signs EXI bytes, not canonical XML text, so XML signature libraries sign the
wrong bytes.  What is signed:

* each referenced element (found by its ``Id`` attribute, ``URI="#Id"``) is encoded on
  its own as an EXI fragment of the message set's grammar (``exi.encode_fragment``); its
  SHA-256 is the Reference's DigestValue;
* SignedInfo (CanonicalizationMethod and Transform ``http://www.w3.org/TR/canonical-exi/``,
  SignatureMethod ``…xmldsig-more#ecdsa-sha256``, DigestMethod ``…xmlenc#sha256``) is
  encoded as an EXI fragment of the standalone xmldsig schema (Annex J, the schema as its
  own entry point); ECDSA P-256 signs those bytes with SHA-256 and SignatureValue carries
  the raw r‖s, 32 bytes each.

Rules enforced when verifying (and never broken when signing):

* [V2G2-771] no SignedInfo/@Id, SignatureValue/@Id, Reference/@Type, HMACOutputLength,
  KeyInfo or Object;
* [V2G2-909] at most 4 References;
* every Reference has exactly the canonical-EXI Transform, the SHA-256 DigestMethod and
  points to exactly one element with that Id; the References cover exactly the elements
  the caller requires, no more, no fewer.

Verification never fails open: any unexpected error inside it becomes a
:class:`SignatureError` (``response_code = "FAILED_SignatureError"``).

The IDs are quoted from shared/research/iso20-pnc.md section 2.2, which took them from a
paraphrase of the 2022 DIS revision: "(unverified against ISO 15118-2:2014)".
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

import exi
from exi.message import Message
from exi.messages import xmldsig

from .errors import SignatureError

__all__ = [
    "CANONICAL_EXI", "ECDSA_SHA256", "SHA256", "MAX_REFERENCES", "SignedElement",
    "digest", "signed_info", "signed_info_bytes", "sign", "verify", "find_by_id",
    "verify_message", "sign_message", "raw_signature", "der_signature",
]

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
MAX_REFERENCES = 4          # [V2G2-909]
_N = 32                     # P-256: bytes of r and of s

PublicKey = ec.EllipticCurvePublicKey
PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SignedElement:
    """An element to sign or to check: the object, its element name (the field name it
    has in its parent, for example ``"AuthorizationReq"``) and the message set."""

    element: Message
    name: str
    schema: str = "iso2"

    @property
    def id(self) -> str:
        ident = getattr(self.element, "Id", None)
        if not ident:
            raise SignatureError(f"{self.name} has no Id attribute to reference")
        return ident


def digest(item: SignedElement) -> bytes:
    """SHA-256 of the element's EXI fragment (what a Reference's DigestValue holds)."""
    return hashlib.sha256(exi.encode_fragment(item.element, schema=item.schema,
                                              name=item.name)).digest()


def signed_info(references: Sequence[tuple[str, bytes]]) -> xmldsig.SignedInfo:
    """The -2 SignedInfo for (Id, SHA-256 digest) pairs, in that order."""
    if not 1 <= len(references) <= MAX_REFERENCES:
        raise SignatureError(f"{len(references)} references: ISO 15118-2 allows 1 to "
                             f"{MAX_REFERENCES} [V2G2-909]")
    return xmldsig.SignedInfo(
        CanonicalizationMethod=xmldsig.CanonicalizationMethodType(Algorithm=CANONICAL_EXI),
        SignatureMethod=xmldsig.SignatureMethodType(Algorithm=ECDSA_SHA256),
        Reference=[xmldsig.ReferenceType(
            URI="#" + ident,
            Transforms=xmldsig.TransformsType(
                Transform=[xmldsig.TransformType(Algorithm=CANONICAL_EXI)]),
            DigestMethod=xmldsig.DigestMethodType(Algorithm=SHA256),
            DigestValue=value) for ident, value in references])


def signed_info_bytes(info: Message) -> bytes:
    """EXI fragment of SignedInfo under the standalone xmldsig grammar: the signed bytes.

    ``info`` may come from any message set (iso2, xmldsig): it is re-expressed in the
    xmldsig classes first."""
    return exi.encode_fragment(_convert(info, xmldsig), schema="xmldsig", name="SignedInfo")


def raw_signature(der: bytes) -> bytes:
    """DER ECDSA-Sig-Value -> r‖s at the fixed width of P-256 (always 64 bytes)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(_N, "big") + s.to_bytes(_N, "big")


def der_signature(raw: bytes) -> bytes:
    if len(raw) != 2 * _N:
        raise SignatureError(f"SignatureValue has {len(raw)} bytes; ECDSA P-256 needs 64 (r‖s)")
    return encode_dss_signature(int.from_bytes(raw[:_N], "big"), int.from_bytes(raw[_N:], "big"))


def sign(items: Sequence[SignedElement], key: PrivateKey, *, schema: str = "iso2") -> Message:
    """Sign the elements; return the header ``Signature`` in ``schema``'s classes."""
    _check_key(key.public_key())
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise SignatureError(f"two signed elements share an Id: {ids}")
    info = signed_info([(item.id, digest(item)) for item in items])
    value = raw_signature(key.sign(signed_info_bytes(info), ec.ECDSA(hashes.SHA256())))
    module = _module(schema)
    return module.SignatureType(SignedInfo=_convert(info, module),
                                SignatureValue=module.SignatureValueType(value=value))


def verify(signature: Optional[Message], items: Sequence[SignedElement],
           key: PublicKey) -> None:
    """Check ``signature`` (a header Signature of any message set) over exactly ``items``
    with ``key``.  Returns None or raises :class:`SignatureError`; never fails open."""
    try:
        _verify(signature, items, key)
    except SignatureError:
        raise
    except Exception as e:                      # a refusal, whatever went wrong
        raise SignatureError(f"signature check failed: {type(e).__name__}: {e}") from e


def _verify(signature, items, key) -> None:
    _check_key(key)
    if signature is None:
        raise SignatureError("the message carries no Signature")
    info = signature.SignedInfo
    if info is None or signature.SignatureValue is None:
        raise SignatureError("Signature without SignedInfo or SignatureValue")
    # [V2G2-771] fields the profile forbids
    if signature.KeyInfo is not None or signature.Object:
        raise SignatureError("Signature carries KeyInfo or Object [V2G2-771]")
    if info.Id is not None or signature.SignatureValue.Id is not None:
        raise SignatureError("SignedInfo/@Id or SignatureValue/@Id present [V2G2-771]")
    if _algorithm(info.CanonicalizationMethod) != CANONICAL_EXI or info.CanonicalizationMethod.content:
        raise SignatureError(f"CanonicalizationMethod {_algorithm(info.CanonicalizationMethod)!r} "
                             f"is not {CANONICAL_EXI}")
    method = info.SignatureMethod
    if _algorithm(method) != ECDSA_SHA256 or method.content:   # HMACOutputLength or any other child
        raise SignatureError(f"SignatureMethod {_algorithm(method)!r} is not {ECDSA_SHA256} "
                             "(without HMACOutputLength) [V2G2-771]")
    refs = info.Reference or []
    if not 1 <= len(refs) <= MAX_REFERENCES:
        raise SignatureError(f"{len(refs)} References: ISO 15118-2 allows 1 to "
                             f"{MAX_REFERENCES} [V2G2-909]")
    if not items:
        raise SignatureError("nothing to check the signature against")
    by_id = {}
    for item in items:
        if item.id in by_id:
            raise SignatureError(f"two signed elements share the Id {item.id!r}")
        by_id[item.id] = item
    seen = set()
    for ref in refs:
        uri = ref.URI or ""
        if ref.Type is not None or ref.Id is not None:
            raise SignatureError(f"Reference {uri!r} carries Type or Id [V2G2-771]")
        if not uri.startswith("#") or uri[1:] not in by_id:
            raise SignatureError(f"Reference {uri!r} points to no signed element "
                                 f"(expected {sorted('#' + i for i in by_id)})")
        if uri in seen:
            raise SignatureError(f"Reference {uri!r} appears twice")
        seen.add(uri)
        transforms = ref.Transforms.Transform if ref.Transforms is not None else None
        if (not transforms or len(transforms) != 1 or _algorithm(transforms[0]) != CANONICAL_EXI
                or transforms[0].content):   # XPath or any other child
            raise SignatureError(f"Reference {uri}: the only Transform must be {CANONICAL_EXI}")
        if _algorithm(ref.DigestMethod) != SHA256 or ref.DigestMethod.content:
            raise SignatureError(f"Reference {uri}: DigestMethod must be {SHA256}")
        value = ref.DigestValue or b""
        if len(value) != 32 or not hmac.compare_digest(value, digest(by_id[uri[1:]])):
            raise SignatureError(f"Reference {uri}: digest does not match the element "
                                 f"{by_id[uri[1:]].name}")
    missing = sorted(set("#" + i for i in by_id) - seen)
    if missing:
        raise SignatureError(f"the signature does not cover {missing}")
    der = der_signature(signature.SignatureValue.value or b"")
    try:
        key.verify(der, signed_info_bytes(info), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError("SignatureValue does not verify with the signer's key") from None


def _algorithm(method) -> Optional[str]:
    return getattr(method, "Algorithm", None) if method is not None else None


def _check_key(key) -> None:
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise SignatureError(f"ISO 15118-2 signatures use ECDSA on secp256r1, not "
                             f"{getattr(getattr(key, 'curve', None), 'name', type(key).__name__)}")


# --- finding signed elements in a message ---------------------------------------------------

def _walk(obj: Message, name: str) -> Iterator[tuple[Message, str]]:
    yield obj, name
    for field in obj._fields:
        value = getattr(obj, field, None)
        for v in (value if isinstance(value, list) else (value,)):
            if isinstance(v, Message):
                yield from _walk(v, field)


def find_by_id(root: Message, ident: str, *, schema: str = "iso2") -> SignedElement:
    """The one element below ``root`` whose Id is ``ident`` (the header's Signature is not
    searched).  Two elements with the same Id are refused: a reference must be unique."""
    found = [(el, nm) for el, nm in _walk(root, type(root).__name__)
             if getattr(el, "Id", None) == ident and nm != "Signature"]
    if len(found) != 1:
        raise SignatureError(f"{len(found)} elements with Id {ident!r}; a signed element "
                             "must be unique")
    return SignedElement(found[0][0], found[0][1], schema)


def sign_message(message: Message, names: Iterable[str], key: PrivateKey, *,
                 schema: str = "iso2") -> Message:
    """Sign the named elements of a V2G_Message's Body and put the Signature into its
    Header (created if absent).  The elements must carry their Ids already; a name given
    n times means n elements of that name (three SalesTariffs: ``["SalesTariff"] * 3``).
    Returns the message."""
    wanted = list(names)
    items = [SignedElement(el, nm, schema) for el, nm in _walk(message.Body, "Body")
             if nm in wanted]
    if sorted(i.name for i in items) != sorted(wanted):
        raise SignatureError(f"elements {wanted} not all found once in the Body")
    sig = sign(items, key, schema=schema)
    module = _module(schema)
    if message.Header is None:
        message.Header = module.MessageHeaderType()
    message.Header.Signature = sig
    return message


def verify_message(message: Message, names: Iterable[str], key: PublicKey, *,
                   schema: str = "iso2") -> None:
    """Verify that a V2G_Message's header Signature covers exactly the named Body
    elements (each present once, each with an Id) and verifies with ``key``."""
    try:
        wanted = list(names)
        items = [SignedElement(el, nm, schema) for el, nm in _walk(message.Body, "Body")
                 if nm in wanted]
        if sorted(i.name for i in items) != sorted(wanted):
            raise SignatureError(f"elements {wanted} not all found once in the Body")
        header = message.Header
        _verify(header.Signature if header is not None else None, items, key)
    except SignatureError:
        raise
    except Exception as e:
        raise SignatureError(f"signature check failed: {type(e).__name__}: {e}") from e


# --- the same xmldsig structure in another message set's classes ----------------------------

def _module(schema: str):
    import importlib
    return importlib.import_module(f"exi.messages.{schema}")


def _convert(obj, module):
    """Copy an xmldsig object tree into ``module``'s classes of the same names."""
    if isinstance(obj, list):
        return [_convert(v, module) for v in obj]
    if not isinstance(obj, Message):
        return obj
    cls = getattr(module, type(obj).__name__, None)
    if cls is None:
        cls = getattr(module, type(obj).__name__ + "Type")
    if type(obj) is cls:
        return obj
    return cls(**{f: _convert(getattr(obj, f), module) for f in obj._fields})
