"""TLS 1.2 / 1.3 decryption of V2G streams through tshark (no cryptography here).

The key log (NSS format: CLIENT_RANDOM for TLS 1.2, *_TRAFFIC_SECRET for TLS 1.3) is
written to a temporary file and handed to tshark; tshark decrypts and reports every
decrypted TLS application-data record as `data.data` (hex) with its frame number,
time and TCP endpoints, in capture order.  `-d tcp.port==P,tls` is needed because
V2G uses ephemeral ports that tshark would not dissect as TLS on its own.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from typing import Iterable, Iterator

FIELDS = ("frame.number", "frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport",
          "ip.dst", "ipv6.dst", "tcp.dstport", "data.data")


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        from .reader import TsharkMissing
        raise TsharkMissing("TLS decryption needs tshark: apt-get install tshark")
    return path


def command(capture: str, keylog_file: str, ports: Iterable[int]) -> list[str]:
    cmd = [tshark_path(), "-n", "-r", capture,
           "-o", f"tls.keylog_file:{keylog_file}",
           "-o", "tcp.reassemble_out_of_order:TRUE",
           "-Y", "tls && data.data", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},tls"]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def decrypted_chunks(capture: str, keylog_lines: list[bytes], ports: Iterable[int]) -> Iterator[tuple]:
    """Yield (frame, ts, src, sport, dst, dport, plaintext) with packed addresses."""
    fd, klog = tempfile.mkstemp(suffix=".keylog", prefix="exi-capture-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\n".join(keylog_lines) + b"\n")
        env = dict(os.environ, HOME=tempfile.gettempdir())   # keep tshark away from user profiles
        proc = subprocess.run(command(capture, klog, ports), capture_output=True, env=env)
    finally:
        os.unlink(klog)
    # tshark exits 2 on a cut-short capture but still prints what it decoded
    if proc.returncode not in (0, 2) and not proc.stdout:
        raise RuntimeError(f"tshark failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        cols = line.split("\t")
        if len(cols) != len(FIELDS) or not cols[8]:
            continue
        frame, ts, s4, s6, sport, d4, d6, dport, hexdata = cols
        fam = socket.AF_INET6 if s6 else socket.AF_INET
        src = socket.inet_pton(fam, s6 or s4)
        dst = socket.inet_pton(fam, d6 or d4)
        data = b"".join(bytes.fromhex(h) for h in hexdata.split(",") if h)
        yield int(frame), float(ts), src, int(sport), dst, int(dport), data
