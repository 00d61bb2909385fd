"""Helpers shared by the codec tests: the test vectors and an XML tree comparison."""
from __future__ import annotations

import json
import re
from pathlib import Path

import exi

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUBSET = HERE / "data" / "vectors_subset.jsonl"
SHARED_VECTORS = REPO.parent / "shared" / "vectors"
SHARED_FILES = ("sap", "din", "iso2", "iso20")

# `exificient grammar: <set>` in a vector's note -> our schema id
GRAMMAR_SETS = {"din": "din", "iso2": "iso2", "sap": "sap", "iso20cm": "iso20_cm",
                "iso20ac": "iso20_ac", "iso20dc": "iso20_dc", "iso20wpt": "iso20_wpt",
                "iso20acdp": "iso20_acdp", "xmldsig": "xmldsig"}
# a line that no schema decoded: try the file's main grammar
DEFAULT_SCHEMA = {"sap": "sap", "din": "din", "iso2": "iso2", "iso20": "iso20_cm"}
_GRAMMAR = re.compile(r"exificient grammar: (\w+)(#frag)?")
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


class Vector:
    def __init__(self, row: dict, file: str, line: int):
        self.row = row
        self.file = file
        self.line = line
        self.data = bytes.fromhex(row["exi_hex"])
        m = _GRAMMAR.search(row.get("note") or "")
        self.known_grammar = m is not None
        self.schema = GRAMMAR_SETS[m.group(1)] if m else DEFAULT_SCHEMA[file]
        self.fragment = bool(m and m.group(2))
        self.reencodes = row.get("reference_reencodes") is True
        self.xml = row.get("exificient_xml")

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.row['message']}"

    @property
    def key(self) -> str:
        """Stable name: message and source without the commit (ids shift with the subset)."""
        return f"{self.row['message']} {self.row['source'].split('@')[0]}"

    def __repr__(self):
        return f"<vector {self.id} {self.row['source']}>"

    def decode(self):
        """The decoded messages (a list: one document root, or the fragment's elements)."""
        if self.fragment:
            return exi.decode_fragment(self.data, self.schema)
        return [exi.decode(self.data, self.schema)]

    def encode(self, msgs, validate: bool) -> bytes:
        if self.fragment:
            return exi.encode_fragment(*msgs, schema=self.schema, validate=validate)
        (msg,) = msgs
        return exi.encode(msg, validate=validate)


def load_subset() -> list:
    out = []
    with open(SUBSET, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            row = json.loads(line)
            out.append(Vector(row, row["file"], i))
    return out


def load_shared(file: str) -> list:
    out = []
    with open(SHARED_VECTORS / f"exi_{file}.jsonl", encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            out.append(Vector(json.loads(line), file, i))
    return out


def xml_diff(a, b, path="") -> str:
    """'' when two lxml elements are equal as trees: tag, attributes except xsi:*,
    stripped text, children in order; otherwise where and how they differ."""
    here = f"{path}/{a.tag}"
    if a.tag != b.tag:
        return f"{path}: tag {a.tag} != {b.tag}"
    aa = {k: v for k, v in a.attrib.items() if not k.startswith(XSI)}
    ba = {k: v for k, v in b.attrib.items() if not k.startswith(XSI)}
    if aa != ba:
        return f"{here}: attributes {aa} != {ba}"
    at, bt = (a.text or "").strip(), (b.text or "").strip()
    if at != bt:
        return f"{here}: text {at!r} != {bt!r}"
    ac = [c for c in a if isinstance(c.tag, str)]
    bc = [c for c in b if isinstance(c.tag, str)]
    for x, y in zip(ac, bc):
        d = xml_diff(x, y, here)
        if d:
            return d
    if len(ac) != len(bc):
        return f"{here}: {len(ac)} children != {len(bc)}"
    return ""


def parse_xml(text: str):
    from lxml import etree
    return etree.fromstring(text.encode("utf-8"))
