"""The bit reader and writer against a bit-string model: every width, every alignment,
unsigned integers up to 2**80, octet runs aligned and not, reads that end at the last bit."""
from __future__ import annotations

import random

import pytest

from exi._bits import BitReader, BitWriter, EndOfStream


def bits_of(data: bytes) -> str:
    return "".join(f"{b:08b}" for b in data)


def uint_groups(v: int) -> str:
    """EXI Unsigned Integer (7.1.6) as a bit string: 7-bit groups, least significant first."""
    out = []
    while True:
        g, v = v & 0x7F, v >> 7
        out.append(f"{g | (0x80 if v else 0):08b}")
        if not v:
            return "".join(out)


@pytest.mark.parametrize("seed", range(20))
def test_writer_matches_model(seed):
    rnd = random.Random(seed)
    w, model = BitWriter(), []
    for _ in range(300):
        op = rnd.randrange(3)
        if op == 0:
            n = rnd.randint(0, 64)
            v = rnd.getrandbits(n) if n else 0
            w.write(v, n)
            model.append(format(v, f"0{n}b") if n else "")
        elif op == 1:
            v = rnd.choice([0, 1, 0x7F, 0x80, 2**49 - 1, 2**49, 2**56, 2**63 - 1, 2**63, 2**64 + 5,
                            2**80 + 3, rnd.getrandbits(rnd.randint(1, 70))])
            w.write_uint(v)
            model.append(uint_groups(v))
        else:
            data = rnd.randbytes(rnd.choice([0, 1, 3, 7, 8, 9, 40]))
            w.write_bytes(data)
            model.append(bits_of(data))
    s = "".join(model)
    s += "0" * (-len(s) % 8)
    assert bits_of(w.getvalue()) == s


@pytest.mark.parametrize("seed", range(20))
def test_reader_matches_model(seed):
    rnd = random.Random(100 + seed)
    data = rnd.randbytes(rnd.randint(1, 64))
    s = bits_of(data)
    for _ in range(200):
        start = rnd.randrange(len(s) + 1)
        r = BitReader(data, start)
        op = rnd.randrange(3)
        if op == 0:
            n = rnd.randint(0, 64)
            if start + n > len(s):
                with pytest.raises(EndOfStream):
                    r.read(n)
                continue
            assert r.read(n) == (int(s[start:start + n], 2) if n else 0)
            assert r.pos == start + n
        elif op == 1:
            n = rnd.randint(0, 12)
            if start + 8 * n > len(s):
                with pytest.raises(EndOfStream):
                    r.read_bytes(n)
                continue
            expect = int(s[start:start + 8 * n], 2).to_bytes(n, "big") if n else b""
            assert r.read_bytes(n) == expect
        else:
            expect, shift, pos = 0, 0, start     # model: groups until one without bit 7
            while pos + 8 <= len(s):
                g = int(s[pos:pos + 8], 2)
                expect |= (g & 0x7F) << shift
                shift += 7
                pos += 8
                if not g & 0x80:
                    break
            else:
                with pytest.raises(EndOfStream):
                    r.read_uint()
                continue
            assert (r.read_uint(), r.pos) == (expect, pos)


@pytest.mark.parametrize("v", [0, 1, 127, 128, 2**56 - 1, 2**56, 2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1,
                               2**64, 2**100 + 7])
@pytest.mark.parametrize("offset", [0, 3])
def test_uint_round_trip(v, offset):
    w = BitWriter()
    w.write(0, offset)
    w.write_uint(v)
    w.write(5, 3)
    r = BitReader(w.getvalue(), offset)
    assert r.read_uint() == v
    assert r.read(3) == 5


def test_truncated_uint_is_end_of_stream():
    for data in (b"\x80", b"\xff\xff", b""):
        for start in (0, 1):
            if start > len(data) * 8:
                continue
            with pytest.raises(EndOfStream):
                BitReader(data, start).read_uint()
