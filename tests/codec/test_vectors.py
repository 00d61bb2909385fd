"""The codec against real-world EXI streams (EXIficient-checked reference vectors).

- every vector whose bytes EXIficient re-encodes identically (`reference_reencodes`):
  decode, re-encode with validate=False to the same bytes, and to_xml equal as a tree
  to EXIficient's decode;
- every other vector: decode or raise exi.DecodeError, nothing else;
- validate=True: the same bytes, or an EncodeError that names the violated facet.

The vendored subset (data/vectors_subset.jsonl) always runs; the full shared collection
runs too when <repo>/../shared/vectors exists (one test per file, failures summarised).
"""
from __future__ import annotations

import re

import pytest

import exi

from ._support import SHARED_FILES, SHARED_VECTORS, load_shared, load_subset, parse_xml, xml_diff

SUBSET = load_subset()
REENCODING = [v for v in SUBSET if v.reencodes]
OTHERS = [v for v in SUBSET if not v.reencodes]
FACET_MESSAGE = re.compile(r"\b(length|range)\b")
# subset id -> the EncodeError of validate=True: real-world values outside the XSD facets
# (test encoders writing short GenChallenge/eMAID/EVSEID/DHPublicKey values)
KNOWN_FACET_VIOLATIONS = {
    "AuthorizationReq tux-evse/iso15118-encoders-rs:test/iso2-test.rs#L380":
        "/V2G_Message/Body/AuthorizationReq/GenChallenge: length 4 outside [16, 16]",
    "CertificateInstallationRes tux-evse/iso15118-encoders-rs:test/iso2-test.rs#L601":
        "/V2G_Message/Body/CertificateInstallationRes/eMAID: string length 23 outside [14, 15]",
    "CertificateUpdateReq tux-evse/iso15118-encoders-rs:test/iso2-test.rs#L704":
        "/V2G_Message/Body/CertificateUpdateReq/eMAID: string length 9 outside [14, 15]",
    "CertificateUpdateRes tux-evse/iso15118-encoders-rs:test/iso2-test.rs#L770":
        "/V2G_Message/Body/CertificateUpdateRes/eMAID: string length 23 outside [14, 15]",
    "PaymentDetailsRes tux-evse/iso15118-encoders-rs:test/iso2-test.rs#L1550":
        "/V2G_Message/Body/PaymentDetailsRes/GenChallenge: length 7 outside [16, 16]",
    "CurrentDemandRes OpenChargingCloud/WWCP_ISO15118:WWCP_ISO15118_EXI_Tests/Vectors/Iso15118_2.vectors.json":
        "/V2G_Message/Body/CurrentDemandRes/EVSEID: string length 5 outside [7, 37]",
    "ChargingStatusRes OpenChargingCloud/WWCP_ISO15118:WWCP_ISO15118_EXI_Tests/Vectors/Iso15118_2.vectors.json":
        "/V2G_Message/Body/ChargingStatusRes/EVSEID: string length 5 outside [7, 37]",
    "CertificateInstallationRes OpenChargingCloud/WWCP_ISO15118:"
    "WWCP_ISO15118_EXI_Tests/Vectors/Iso15118_20.CommonMessages.vectors.json":
        "/CertificateInstallationRes/SignedInstallationData/DHPublicKey: length 2 outside [133, 133]",
}


def check_reencodes(v) -> None:
    msgs = v.decode()
    out = v.encode(msgs, validate=False)
    assert out.hex() == v.data.hex(), f"{v}: re-encoding differs"
    assert len(msgs) == 1, f"{v}: {len(msgs)} elements, EXIficient decoded one"
    diff = xml_diff(parse_xml(exi.to_xml(msgs[0])), parse_xml(v.xml))
    assert not diff, f"{v}: to_xml differs from EXIficient's decode: {diff}"
    return msgs


def check_decodes_or_decode_error(v) -> None:
    try:
        msgs = v.decode()
    except exi.DecodeError:
        return
    # what decoded must also convert, and encode or be refused with EncodeError
    for m in msgs:
        exi.to_dict(m)
        try:
            exi.to_xml(m)
        except exi.EncodeError:
            pass        # e.g. a U+0000 that XML 1.0 cannot carry: refused, naming the path
    try:
        v.encode(msgs, validate=False)
    except exi.EncodeError:
        pass


def check_validated(v, msgs):
    """validate=True: same bytes or an EncodeError naming a facet.  Returns the error."""
    try:
        out = v.encode(msgs, validate=True)
    except exi.EncodeError as e:
        assert FACET_MESSAGE.search(e.reason), f"{v}: EncodeError that names no facet: {e}"
        return e
    assert out == v.data, f"{v}: validate=True changed the bytes"
    return None


@pytest.mark.parametrize("v", REENCODING, ids=lambda v: v.id)
def test_reencodes_identically(v):
    msgs = check_reencodes(v)
    err = check_validated(v, msgs)
    if err is not None:
        assert v.key in KNOWN_FACET_VIOLATIONS, f"{v}: unexpected facet violation: {err}"


@pytest.mark.parametrize("v", OTHERS, ids=lambda v: v.id)
def test_other_vectors_decode_or_raise_decode_error(v):
    check_decodes_or_decode_error(v)


def test_facet_violations_are_the_known_ones():
    """Real-world streams whose values break a length/range facet of the XSD: they
    re-encode byte for byte with validate=False, and validate=True refuses them."""
    found = {}
    for v in REENCODING:
        try:
            msgs = v.decode()
            if v.encode(msgs, validate=False) != v.data:
                continue
        except exi.EXIError:
            continue        # reported by test_reencodes_identically
        err = check_validated(v, msgs)
        if err is not None:
            found[v.key] = str(err)
    assert found == KNOWN_FACET_VIOLATIONS


def test_subset_covers_every_message_type():
    seen = {(v.file, v.row["message"]) for v in SUBSET}
    for file in ("sap", "din", "iso2", "iso20"):
        assert sum(1 for f, _ in seen if f == file) >= {"sap": 2, "din": 22, "iso2": 40, "iso20": 60}[file]
    assert {v.schema for v in SUBSET} >= {"sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc",
                                         "iso20_wpt", "iso20_acdp"}
    assert any(v.fragment for v in REENCODING)


if SHARED_VECTORS.is_dir():
    @pytest.mark.parametrize("file", SHARED_FILES)
    def test_full_shared_collection(file):
        vectors = load_shared(file)
        counts = {"reencoded": 0, "decoded or DecodeError": 0}
        failures = []
        for v in vectors:
            try:
                if v.reencodes:
                    check_reencodes(v)
                    counts["reencoded"] += 1
                else:
                    check_decodes_or_decode_error(v)
                    counts["decoded or DecodeError"] += 1
            except Exception as e:          # noqa: BLE001 - collected and reported below
                failures.append(f"{v.id} [{v.schema}{'#frag' if v.fragment else ''}] "
                                f"{type(e).__name__}: {str(e)[:300]}")
        summary = f"{file}: {len(vectors)} vectors, {counts}, {len(failures)} failed"
        print(summary)
        assert not failures, summary + "; first failures:\n" + "\n".join(failures[:25])
