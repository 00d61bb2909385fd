"""Every capture in the shared vectors: no frame whose EXI the shared jsonl files list as
decodable (exificient_xml non-null) may fail, and every capture-derived jsonl sample must
be found, decoded to the same message, in its capture.  TLS captures carrying their keys
in-band (dsV2Gshark) are decrypted."""
import collections
import glob
import json
import os

import pytest

import exi.capture

from .conftest import SHARED


@pytest.fixture(scope="module")
def results(codec, tshark, shared_captures):
    out = {}
    for path in sorted(glob.glob(os.path.join(shared_captures, "**", "*"), recursive=True)):
        if not os.path.isfile(path):
            continue
        r = exi.capture.CaptureReader()
        recs = list(r.read(path))
        out[os.path.relpath(path, shared_captures)] = (r.stats, recs)
    return out


@pytest.fixture(scope="module")
def jsonl():
    rows = []
    for fn in sorted(glob.glob(os.path.join(SHARED, "exi_*.jsonl"))):
        with open(fn) as f:
            rows += [json.loads(line) for line in f]
    return rows


def _capture_of(source):
    """'owner/repo:path@commit' -> 'owner+repo/path' when it names a capture file."""
    repo, _, rest = source.partition(":")
    path = rest.split("@")[0].split("#")[0]
    return repo.replace("/", "+") + "/" + path


def test_no_error_on_decodable_frames(results, jsonl):
    decodable = {r["exi_hex"] for r in jsonl if r["exificient_xml"] is not None}
    bad = []
    for name, (_stats, recs) in results.items():
        for rec in recs:
            if rec.error and rec.exi and rec.exi.hex() in decodable:
                bad.append(f"{name} frame {rec.frame}: {rec.error}")
    assert not bad, f"{len(bad)} decodable frames failed:\n" + "\n".join(bad[:40])


def test_every_capture_sample_is_found(results, jsonl):
    found = collections.defaultdict(dict)
    for name, (_stats, recs) in results.items():
        for rec in recs:
            if rec.name and rec.exi:
                found[name][rec.exi.hex()] = rec.name
    missing = []
    for row in jsonl:
        cap = _capture_of(row["source"])
        if cap not in results or row["exificient_xml"] is None or row["message"] is None:
            continue
        got = found[cap].get(row["exi_hex"])
        if got != row["message"]:
            missing.append(f"{cap}: {row['message']} {row['exi_hex'][:24]}... -> {got}")
    assert not missing, f"{len(missing)} samples not found:\n" + "\n".join(missing[:40])


def test_in_band_tls_keys_decrypt(results):
    tls = {n: s for n, (s, _r) in results.items() if s["tls_streams"]}
    with_keys = [n for n in tls if "dsV2Gshark" in n]
    assert len(with_keys) == 6
    for n in with_keys:
        assert tls[n]["tls_decrypted"] == tls[n]["tls_streams"], n
        assert tls[n]["messages"] > 50, n


def test_nothing_crashes_and_counts(results):
    total = collections.Counter()
    for _n, (stats, _r) in results.items():
        total.update(stats)
    assert len(results) >= 121
    assert total["decoded"] > 50000
