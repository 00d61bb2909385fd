"""Output of capture records: JSON lines, XML, a one-line-per-message table, summaries."""
from __future__ import annotations

import fnmatch
import json
import sys
import time
from typing import Iterable, Iterator, Optional, TextIO
from xml.sax.saxutils import escape, quoteattr

from ._net import join
from .reader import MessageRecord

FORMATS = ("jsonl", "xml", "table")


def _json_default(o):
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).hex().upper()
    return str(o)


def record_dict(r: MessageRecord) -> dict:
    d = {"time": r.time, "frame": r.frame, "stream": r.stream, "direction": r.direction,
         "src": join(r.src, r.sport) if r.src else None, "dst": join(r.dst, r.dport) if r.dst else None,
         "transport": r.transport,
         "payload_type": f"0x{r.payload_type:04X}" if r.payload_type is not None else None,
         "schema": r.schema, "message": r.name, "content": r.content}
    if r.schema_guessed:
        d["schema_guessed"] = True
    if r.note:
        d["note"] = r.note
    if r.error:
        d["error"] = r.error
        d["offset"] = r.offset
        if r.exi:
            d["exi_hex"] = r.exi.hex()
    return d


def matcher(patterns: Optional[str]):
    """--filter: comma-separated names or globs, case-insensitive; "CurrentDemand"
    matches CurrentDemandReq and CurrentDemandRes."""
    if not patterns:
        return None
    pats = [p.strip().lower() for p in patterns.split(",") if p.strip()]

    def keep(r: MessageRecord) -> bool:
        n = (r.name or "").lower()
        return bool(n) and any(fnmatch.fnmatchcase(n, p) or n in (p + "req", p + "res") for p in pats)
    return keep


def write_jsonl(records: Iterable[MessageRecord], out: TextIO) -> int:
    n = 0
    for r in records:
        out.write(json.dumps(record_dict(r), default=_json_default, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n


def _strip_decl(xml: str) -> str:
    if xml.startswith("<?xml"):
        xml = xml[xml.index("?>") + 2:].lstrip()
    return xml


def write_xml(records: Iterable[MessageRecord], out: TextIO) -> int:
    import exi
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<capture>\n')
    n = 0
    for r in records:
        attrs = {"time": f"{r.time:.6f}", "frame": str(r.frame)}
        for k, v in (("stream", r.stream), ("direction", r.direction), ("transport", r.transport),
                     ("payloadType", f"0x{r.payload_type:04X}" if r.payload_type is not None else None),
                     ("schema", r.schema), ("name", r.name)):
            if v is not None:
                attrs[k] = str(v)
        if r.src:
            attrs["src"], attrs["dst"] = join(r.src, r.sport), join(r.dst, r.dport)
        if r.schema_guessed:
            attrs["schemaGuessed"] = "true"
        head = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
        error = r.error
        if r.message is not None and not error:
            try:
                xml = _strip_decl(exi.to_xml(r.message))
            except ValueError as e:         # decoded, but not representable in XML 1.0 (U+0000)
                error = f"decoded, but cannot be written as XML: {e}"
            else:
                out.write(f"  <message {head}>\n    {xml}\n  </message>\n")
                n += 1
                continue
        out.write(f"  <message {head}>\n")    # problems, and SDP (not EXI: plain fields)
        if error:
            out.write(f"    <error>{escape(error)}</error>\n")
        elif r.message is None:
            for k, v in (r.content or {}).items():
                out.write(f"    <{k}>{escape(str(v))}</{k}>\n")
        out.write("  </message>\n")
        n += 1
    out.write("</capture>\n")
    return n


def _short(r: MessageRecord) -> str:
    """A few telling fields for the table: response code, processing state."""
    from .summary import _body
    b = _body(r)
    bits = []
    for k in ("ResponseCode", "EVSEProcessing", "ChargeProgress", "SchemaID"):
        if k in b:
            bits.append(f"{k}={b[k]}")
    if r.payload_type in (0x9000, 0x9001, 0x9002, 0x9003) and r.content:
        bits += [f"{k}={v}" for k, v in r.content.items()]
    return " ".join(bits)


def write_table(records: Iterable[MessageRecord], out: TextIO) -> int:
    out.write(f"{'time':>12} {'frame':>7} {'stream':>6}  {'direction':<10} {'schema':<9} "
              f"{'message':<34} details\n")
    t0 = None
    n = 0
    for r in records:
        if t0 is None and r.time:
            t0 = r.time
        rel = f"{r.time - t0:12.6f}" if (r.time and t0 is not None) else f"{'':>12}"
        stream = "" if r.stream is None else (f"{r.stream}" + ("t" if r.transport == "tls" else ""))
        schema = (r.schema or "") + ("?" if r.schema_guessed else "")
        if r.error:
            detail = "ERROR " + r.error
        else:
            detail = _short(r)
        out.write(f"{rel} {r.frame:>7} {stream:>6}  {r.direction or '':<10} {schema:<9} "
                  f"{r.name or '-':<34} {detail}\n")
        n += 1
    return n


def write(records: Iterable[MessageRecord], fmt: str, out: TextIO) -> int:
    return {"jsonl": write_jsonl, "xml": write_xml, "table": write_table}[fmt](records, out)


def write_summary(summary: dict, out: TextIO, as_json: bool = False) -> None:
    if as_json:
        out.write(json.dumps(summary, default=_json_default, ensure_ascii=False, indent=1))
        out.write("\n")
        return
    for s in summary["file_problems"]:
        out.write(f"capture file: frame {s['frame']}: {s['error']}\n")
    for s in summary["sdp"]:
        c = s["content"] or {}
        out.write(f"SDP {s['message'] or '?'} {' '.join(f'{k}={v}' for k, v in c.items())}"
                  f"{' ERROR ' + s['error'] if s['error'] else ''}\n")
    for s in summary["sessions"]:
        out.write("\n")
        tls = " (TLS, decrypted)" if s["transport"] == "tls" else ""
        out.write(f"Session: stream {s['stream']}{tls}  EVCC {s['evcc']}  SECC {s['secc']}\n")
        out.write(f"  protocol: {s['protocol'] or 'unknown'}"
                  f"{' (guessed: no SupportedAppProtocol exchange)' if s['protocol_guessed'] else ''}\n")
        out.write(f"  time: {s['start']:.6f} .. {s['end']:.6f} ({s['duration']:.3f} s)\n")
        out.write(f"  SessionID: {', '.join(map(str, s['session_ids'])) or '-'}  EVCCID: {s['EVCCID'] or '-'}"
                  f"  EVSEID: {s['EVSEID'] or '-'}\n")
        out.write(f"  messages ({sum(s['messages'].values())}):\n")
        for name, cnt in s["messages"].items():
            out.write(f"    {name:<36} {cnt:>6}\n")
        if s["response_times"]:
            out.write(f"  response times (s)          {'count':>6} {'min':>9} {'median':>9} {'max':>9} "
                      f"{'limit':>7} {'over':>5}\n")
            sources = []
            for t in s["response_times"]:
                lim = f"{t['limit']:g}" if t["limit"] is not None else "-"
                out.write(f"    {t['message']:<26} {t['count']:>6} {t['min']:>9.4f} {t['median']:>9.4f} "
                          f"{t['max']:>9.4f} {lim:>7} {t['over_limit']:>5}\n")
                if t["limit_source"] and t["limit_source"] not in sources:
                    sources.append(t["limit_source"])
            for src in sources:
                out.write(f"    limits: {src}\n")
        if s["problems"]:
            out.write(f"  errors and FAILED response codes ({len(s['problems'])}):\n")
            for p in s["problems"]:
                out.write(f"    frame {p['frame']}: {p['message'] or '-'}: {p['error']}\n")
        else:
            out.write("  errors and FAILED response codes: none\n")


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, min_bytes: int = 4 << 20):
        self.stream = stream
        self.on = stream.isatty()
        self.min_bytes = min_bytes
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.on or total < self.min_bytes:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = min(1.0, done / total) if total else 1.0
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r[{bar:<30}] {frac * 100:5.1f}% {done >> 20} MiB")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def filtered(records: Iterable[MessageRecord], keep) -> Iterator[MessageRecord]:
    return records if keep is None else (r for r in records if keep(r))


__all__ = ["FORMATS", "record_dict", "matcher", "write", "write_jsonl", "write_xml", "write_table",
           "write_summary", "Progress", "filtered"]
