"""`exi15118 decode -` on a pipe: each message is printed when the frame completing it
arrives, before the next frame is even written (pcap and pcapng, as tshark -w - writes).
The assertion is the interleaving; the time bound only keeps a broken build from hanging."""
import json
import os
import select
import struct
import subprocess
import sys

import pytest

import exi.capture
from exi.capture import stream
from exi.capture._pcap import FrameError

from .conftest import REPO

EXAMPLE = os.path.join(REPO, "examples", "din_dc_session.pcap")
BOUND = 60.0            # seconds: generous, a broken build fails instead of hanging


def pcap_chunks(path):
    """The file header, then each record (16-byte header + data), as written."""
    data = open(path, "rb").read()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    chunks, off = [data[:24]], 24
    while off < len(data):
        caplen = struct.unpack_from(order + "I", data, off + 8)[0]
        chunks.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return chunks


def to_pcapng(path):
    """The same frames as pcapng blocks (SHB, IDB, one EPB per frame), little-endian."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    chunks = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) +
              block(1, struct.pack("<HHI", 1, 0, 262144))]
    for item in pcap_chunks(path)[1:]:
        sec, usec, caplen, origlen = struct.unpack_from("<IIII", item)
        ts = sec * 1_000_000 + usec
        chunks.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, origlen) + item[16:]))
    return chunks


def expected_frames(path):
    """Frame number of each record the file reader gives (the ones we must see)."""
    return [r.frame for r in exi.capture.read(path)]


def _readline(proc, deadline_s):
    ready, _, _ = select.select([proc.stdout], [], [], deadline_s)
    assert ready, "no output line within the bound: the record was not flushed when its frame arrived"
    return proc.stdout.readline()


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_each_message_is_printed_before_the_next_frame_arrives(kind):
    chunks = pcap_chunks(EXAMPLE) if kind == "pcap" else to_pcapng(EXAMPLE)
    want = expected_frames(EXAMPLE)
    assert len(want) > 50
    proc = subprocess.Popen([sys.executable, "-m", "exi", "decode", "-", "--format", "jsonl"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0)
    try:
        proc.stdin.write(chunks[0])                 # file header (pcapng: section + interface)
        seen = []
        for frame_no, chunk in enumerate(chunks[1:], 1):
            proc.stdin.write(chunk)
            # every record this frame completes is printed before the next frame is written
            for _ in range(want.count(frame_no)):
                rec = json.loads(_readline(proc, BOUND))
                assert rec["frame"] == frame_no, rec
                seen.append(rec["frame"])
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(BOUND) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen == [f for f in want if f], rest
    assert rest == b"" or all(json.loads(ln)["frame"] == 0 for ln in rest.splitlines())


def test_stream_reader_gives_the_file_readers_frames():
    class Pipe:                    # a non-seekable source returning short reads
        def __init__(self, data):
            self.data, self.pos = data, 0

        def read(self, n):
            n = min(n, 7, len(self.data) - self.pos)
            b = self.data[self.pos:self.pos + n]
            self.pos += n
            return b

        def fileno(self):
            raise OSError("a pipe")
    for chunks in (pcap_chunks(EXAMPLE), to_pcapng(EXAMPLE)):
        got = list(stream.iter_frames(Pipe(b"".join(chunks))))
        with open(EXAMPLE, "rb") as f:
            from exi.capture._pcap import iter_frames
            ref = list(iter_frames(f))
        assert [(n, round(ts, 6), lt, bytes(d)) for n, ts, lt, d in got] == \
               [(n, round(ts, 6), lt, bytes(d)) for n, ts, lt, d in ref]
    assert stream.is_stream(Pipe(b""))


@pytest.mark.parametrize("cut", [3, 10, 24 + 8, 24 + 16 + 20])
def test_damaged_stream_reports_where_it_stopped(cut):
    data = b"".join(pcap_chunks(EXAMPLE))[:cut]
    items = list(stream.iter_frames(__import__("io").BytesIO(data)))
    assert items and items[-1].__class__ is FrameError
    recs = list(exi.capture.CaptureReader().read(__import__("io").BytesIO(data)))
    assert recs and recs[-1].error and "damaged" in recs[-1].error


def test_corrupt_record_header_on_a_stream():
    chunks = pcap_chunks(EXAMPLE)
    bad = bytearray(chunks[3])
    bad[8:12] = struct.pack("<I", 0x7FFFFFFF)
    items = list(stream.iter_frames(__import__("io").BytesIO(b"".join(chunks[:3]) + bytes(bad))))
    assert [i[0] for i in items[:-1]] == [1, 2] and "corrupt record header" in items[-1].message


def test_regular_file_on_stdin_is_read_as_a_file():
    with open(EXAMPLE, "rb") as f:
        assert not stream.is_stream(f)
        r = subprocess.run([sys.executable, "-m", "exi", "decode", "-", "--format", "jsonl"], stdin=f,
                           capture_output=True, cwd=REPO, timeout=BOUND)
    assert r.returncode == 0, r.stderr
    assert [json.loads(ln)["frame"] for ln in r.stdout.splitlines()] == expected_frames(EXAMPLE)


def test_tls_streams_of_an_input_too_long_to_keep_are_reported(shared_captures, monkeypatch):
    """A stream longer than the copy kept for decryption: its TLS streams come out as
    "not decrypted" problems, and the plaintext records as usual."""
    path = os.path.join(shared_captures, "dspace-group+dsV2Gshark", "Wireshark", "dsV2Gshark_examples",
                        "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng")
    with open(path, "rb") as f:
        data = f.read()
    monkeypatch.setattr(stream, "SPOOL_LIMIT", 4096)
    recs = list(exi.capture.CaptureReader().read(__import__("io").BytesIO(data)))
    problems = [r for r in recs if r.transport == "tls"]
    assert problems and all("no copy of the input was kept" in r.error for r in problems)
    assert any(r.name == "SECCDiscoveryRes" for r in recs)
    # a frame source without any copy (read_frames, no path): reported the same way
    with open(path, "rb") as f:
        from exi.capture._pcap import iter_frames
        frames = list(iter_frames(f))
    recs = list(exi.capture.CaptureReader().read_frames(iter(frames)))
    assert [r.error for r in recs if r.transport == "tls"] == [r.error for r in problems]
