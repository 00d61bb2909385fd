"""Both implementations: the compiled extension (mandatory under EXI_REQUIRE_EXTENSIONS=1,
as CI sets it) and the pure-Python engine (EXI_NO_EXTENSIONS=1), which runs a subset of
this suite in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import exi

from ._support import REPO, load_subset

COMPILED_SUFFIXES = (".so", ".pyd")
HYP = "tests/codec/test_roundtrip_hypothesis.py"
# the pure-Python run: every vector of the subset, the bad-input tests, property round
# trips of a few message types and the bounded-maxOccurs tests
PURE_SELECTION = [
    "tests/codec/test_vectors.py::test_reencodes_identically",
    "tests/codec/test_vectors.py::test_other_vectors_decode_or_raise_decode_error",
    "tests/codec/test_bad_input.py",
    "tests/codec/test_bits.py",
    "tests/codec/test_threads.py",
    "tests/codec/test_message_lifetime.py",
    "tests/codec/test_validate_false.py",
    f"{HYP}::test_exactly_at_max_occurs",
    "tests/codec/test_implementation.py::test_loaded_implementation",
] + [f"{HYP}::test_roundtrip[{t}]" for t in (
    "sap:supportedAppProtocolReq", "din:CurrentDemandReq", "iso2:ChargeParameterDiscoveryRes",
    "iso20_cm:ServiceDetailRes", "iso20_dc:DC_ChargeLoopRes", "xmldsig:Signature")]


def test_loaded_implementation():
    files = [exi._grammar.__file__, exi._engine.__file__, exi._bits.__file__, exi._convert.__file__]
    if os.environ.get("EXI_NO_EXTENSIONS"):
        assert all(f.endswith(".py") for f in files), files
    elif os.environ.get("EXI_REQUIRE_EXTENSIONS"):
        assert all(f.endswith(COMPILED_SUFFIXES) for f in files), \
            f"EXI_REQUIRE_EXTENSIONS=1 but the hot modules were loaded from {files}"
    # whichever is loaded works
    v = next(v for v in load_subset() if v.schema == "din" and v.reencodes)
    msg = exi.decode(v.data, "din")
    assert exi.encode(msg, validate=False) == v.data
    assert exi.encode(exi.from_dict(exi.to_dict(msg), "din"), validate=False) == v.data


def test_pure_python_implementation():
    env = dict(os.environ, EXI_NO_EXTENSIONS="1")
    env.pop("EXI_REQUIRE_EXTENSIONS", None)
    probe = subprocess.run([sys.executable, "-c", "import exi; print(exi._engine.__file__)"],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.strip().endswith(".py"), \
        f"EXI_NO_EXTENSIONS=1 did not load exi/_engine.py: {probe.stdout}{probe.stderr[-2000:]}"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE_SELECTION],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-6000:]
    assert run.returncode == 0, f"pure-Python run failed:\n{tail}\n{run.stderr[-2000:]}"
    assert " passed" in tail


def test_pure_python_without_cython_installed():
    """An install that could not compile runs the sources; without Cython where it runs,
    exi._impl puts a stand-in for `import cython` in place (exi/_cython_shim.py)."""
    script = """
import sys
sys.modules["cython"] = None            # as if Cython were not installed
import exi, exi.capture
assert exi._impl.IMPLEMENTATION == "python" and sys.modules["cython"].__name__ == "exi._cython_shim"
from tests.codec._support import load_subset
n = 0
for v in load_subset():
    if v.reencodes and not v.fragment:
        msg = exi.decode(v.data, v.schema)
        assert exi.encode(msg, validate=False) == v.data, v
        exi.to_dict(msg)
        n += 1
recs = [r for r in exi.capture.read("examples/din_dc_session.pcap") if r.error is None]
print(n, len(recs))
"""
    env = dict(os.environ, EXI_NO_EXTENSIONS="1")
    env.pop("EXI_REQUIRE_EXTENSIONS", None)
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    vectors, records = map(int, run.stdout.split())
    assert vectors > 50 and records > 20, run.stdout


_BAD_INPUT_SCRIPT = """
import json, random, sys
import exi
from tests.codec._support import load_subset
vectors = [v for v in load_subset() if not v.fragment]
rng = random.Random(15)
answers = []
for _ in range(int(sys.argv[1])):
    v = rng.choice(vectors)
    data = bytearray(v.data)
    how = rng.randrange(3)
    if how:                                 # flip 1-3 bits
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    if how != 1:                            # cut it short
        data = data[:rng.randrange(1, len(data) + 1)]
    try:
        answers.append("ok " + json.dumps(exi.to_dict(exi.decode(bytes(data), v.schema, padding=True)),
                                          default=repr, sort_keys=True))
    except exi.DecodeError as e:
        answers.append(f"{type(e).__name__}: {e}")
print(exi._impl.IMPLEMENTATION)
print(json.dumps(answers))
"""


def test_both_builds_answer_bad_input_alike():
    """The compiled engine and the pure-Python one give the same answer to the same corrupt
    or truncated stream: the same DecodeError text (path, reason, bit offset) or the same
    message.  (They once differed: a truncated integer was reported where the compiled
    build's read started and where the pure build's octet-by-octet read stopped.)"""
    n = 3000
    answers = {}
    for build, extra in (("compiled", {}), ("python", {"EXI_NO_EXTENSIONS": "1"})):
        env = dict(os.environ, **extra)
        if extra:
            env.pop("EXI_REQUIRE_EXTENSIONS", None)
        run = subprocess.run([sys.executable, "-c", _BAD_INPUT_SCRIPT, str(n)], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        loaded, result = run.stdout.split("\n", 1)
        assert loaded == build, f"asked for the {build} build, {loaded} was loaded"
        answers[build] = json.loads(result)
    compiled, pure = answers["compiled"], answers["python"]
    assert len(compiled) == len(pure) == n
    assert sum(a.startswith("DecodeError") for a in compiled) > n // 3   # mostly refused
    differ = [(c, p) for c, p in zip(compiled, pure) if c != p]
    assert not differ, f"{len(differ)} of {n} differ, e.g. compiled {differ[0][0]!r}, pure {differ[0][1]!r}"


# strings of every length up to 40 with a character of 128 or more (or none) at each place,
# at several bit offsets (the n-th AppProtocol starts where the fields before it end): the
# compiled engine copies ASCII runs eight octets at a time, the pure one character by character
_STRINGS_SCRIPT = r"""
import hashlib, exi
from exi.messages import sap
h = hashlib.sha256()
def proto(ns, i):
    return sap.AppProtocolType(ProtocolNamespace=ns, VersionNumberMajor=i * 37, VersionNumberMinor=i,
                               SchemaID=i, Priority=1 + i % 20)
count = 0
for n in range(41):
    for odd in [None] + list(range(n)):
        for ch in ("\u00e9", "\u20ac", "\U0001F50C"):
            if odd is None and ch != "\u00e9":
                continue
            s = "".join(chr(48 + (k * 7) % 75) for k in range(n))
            if odd is not None:
                s = s[:odd] + ch + s[odd + 1:]
            for lead in range(3):
                msg = sap.supportedAppProtocolReq(AppProtocol=[proto("a" * (j + 1), j) for j in range(lead)] + [proto(s, 3)])
                data = exi.encode(msg, validate=False)
                back = exi.decode(data, "sap")
                assert back.AppProtocol[-1].ProtocolNamespace == s, (n, odd, lead)
                assert exi.encode(back, validate=False) == data
                h.update(data)
                count += 1
print(count, h.hexdigest())
"""


def test_both_builds_encode_and_decode_strings_alike():
    out = {}
    for build, extra in (("compiled", {}), ("python", {"EXI_NO_EXTENSIONS": "1"})):
        env = dict(os.environ, **extra)
        if extra:
            env.pop("EXI_REQUIRE_EXTENSIONS", None)
        run = subprocess.run([sys.executable, "-c", _STRINGS_SCRIPT], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"{build}: {run.stderr[-3000:]}"
        out[build] = run.stdout.split()
    assert int(out["compiled"][0]) > 2000
    assert out["compiled"] == out["python"]
