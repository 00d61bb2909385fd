"""Output of capture records: JSON lines, XML, a one-line-per-message table, summaries."""
from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import sys
import time
from decimal import Decimal
from typing import Iterable, Iterator, Optional, TextIO
from xml.sax.saxutils import escape, quoteattr

from ._net import join
from .reader import MessageRecord

FORMATS = ("jsonl", "xml", "table")


def _json_default(o):
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).hex().upper()
    return str(o)


def _endpoint(r: MessageRecord, addr: str, port: int) -> Optional[str]:
    """address:port; a MAC address alone for HomePlug AV frames."""
    if not addr:
        return None
    return addr if r.transport == "homeplug" else join(addr, port)


def utc(ts: Optional[float]) -> Optional[_dt.datetime]:
    """A capture timestamp as a UTC datetime; None when absent or beyond what a datetime
    holds (a damaged pcapng timestamp can say year 56106: the record keeps its raw
    `time` and `elapsed`, only the calendar form is left out)."""
    if not ts:
        return None
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def iso_time(ts: Optional[float]) -> Optional[str]:
    """ISO 8601 in UTC, as --trace files write it: 2024-02-20T09:37:13.153000+00:00."""
    t = utc(ts)
    return t.isoformat(timespec="microseconds") if t else None


def elapsed(ts: Optional[float], t0: Optional[float]) -> Optional[float]:
    """Seconds since the capture's first frame."""
    return round(ts - t0, 6) if ts and t0 else None


def record_dict(r: MessageRecord, t0: Optional[float] = None) -> dict:
    """One output record; `t0` is the time of the capture's first frame ("elapsed")."""
    d = {"time": iso_time(r.time), "elapsed": elapsed(r.time, t0), "frame": r.frame, "stream": r.stream, "direction": r.direction,
         "src": _endpoint(r, r.src, r.sport), "dst": _endpoint(r, r.dst, r.dport),
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


def write_jsonl(records: Iterable[MessageRecord], out: TextIO, t0: Optional[float] = None) -> int:
    n = 0
    for r in records:
        if t0 is None:
            t0 = r.time or None
        d = record_dict(r, t0)
        try:
            line = json.dumps(d, default=_json_default, ensure_ascii=False)
        except ValueError as e:     # an integer beyond str()'s 4300 digits (no schema allows one)
            d.update(content=None, error=f"decoded, but cannot be written as JSON: {e}", offset=r.offset,
                     exi_hex=r.exi.hex())
            line = json.dumps(d, default=_json_default, ensure_ascii=False)
        out.write(line)
        out.write("\n")
        n += 1
    return n


def _strip_decl(xml: str) -> str:
    if xml.startswith("<?xml"):
        xml = xml[xml.index("?>") + 2:].lstrip()
    return xml


def write_xml(records: Iterable[MessageRecord], out: TextIO, t0: Optional[float] = None) -> int:
    import exi
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<capture>\n')
    n = 0
    for r in records:
        if t0 is None:
            t0 = r.time or None
        attrs = {"time": iso_time(r.time) or "", "elapsed": f"{elapsed(r.time, t0) or 0:.6f}",
                 "frame": str(r.frame)}
        for k, v in (("stream", r.stream), ("direction", r.direction), ("transport", r.transport),
                     ("payloadType", f"0x{r.payload_type:04X}" if r.payload_type is not None else None),
                     ("schema", r.schema), ("name", r.name)):
            if v is not None:
                attrs[k] = str(v)
        for k, v in (("src", _endpoint(r, r.src, r.sport)), ("dst", _endpoint(r, r.dst, r.dport))):
            if v is not None:       # a Linux cooked capture (SLL) has no destination address
                attrs[k] = v
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


UNITS = {"Voltage": "V", "Current": "A", "Power": "W", "Energy": "Wh", "EAmount": "Wh"}
# (label, keys searched for in the message body, in this order)
DETAILS = (("target", ("EVTargetVoltage", "EVTargetCurrent", "EVTargetPower")),
           ("present", ("EVSEPresentVoltage", "EVSEPresentCurrent")),
           ("EV present", ("EVPresentVoltage",)),
           ("EV max", ("EVMaxVoltage", "EVMaxCurrent")),            # AC: -2 AC_EVChargeParameter
           ("EVSE max", ("EVSEMaxCurrent",)),
           ("EV energy", ("EAmount",)))


def physical(v, key: str = "") -> str:
    """A PhysicalValue (DIN/-2: Value, Multiplier, Unit) or RationalNumber (-20: Value,
    Exponent) as "398.5 V"."""
    if not isinstance(v, dict) or "Value" not in v:
        return str(v)
    exp = v.get("Multiplier", v.get("Exponent", 0)) or 0
    try:
        num = Decimal(int(v["Value"])).scaleb(int(exp)).normalize()
    except (TypeError, ValueError, ArithmeticError):
        return str(v)
    unit = v.get("Unit") or next((u for k, u in UNITS.items() if k in key), "")
    unit = getattr(unit, "value", unit)
    return f"{num:f} {unit}".rstrip()


def _find(d: dict, wanted: set, found: dict, depth: int = 0) -> None:
    """First occurrence of each wanted key in nested dicts (lists are not searched: they
    hold schedules and certificates, not the values a table shows)."""
    for k, v in d.items():
        if k in wanted and k not in found:
            found[k] = v
        elif isinstance(v, dict) and depth < 3:
            _find(v, wanted, found, depth + 1)


_WANTED = {"ResponseCode", "EVSEProcessing", "EVCCID", "EVSEID", "EVRESSSOC", "PresentSOC",
           "ChargeProgress", "SchemaID"} | {k for _l, keys in DETAILS for k in keys}


def details(r: MessageRecord) -> str:
    """What an engineer reads first: response code, physical values, SoC, identifiers."""
    if r.transport == "homeplug":
        from .slac import short_text
        return short_text(r.content or {})
    from .summary import _body
    if r.payload_type in (0x9000, 0x9001, 0x9002, 0x9003) and r.content:
        return " ".join(f"{k}={v}" for k, v in r.content.items())
    b = _body(r)
    found: dict = {}
    _find(b, _WANTED, found)
    bits = []
    if "ResponseCode" in found:
        bits.append(f"ResponseCode={_text(getattr(found['ResponseCode'], 'value', found['ResponseCode']))}")
    for label, keys in DETAILS:
        vals = [physical(found[k], k) for k in keys if k in found]
        if vals:
            bits.append(f"{label} {' '.join(vals)}")
    soc = found.get("EVRESSSOC", found.get("PresentSOC"))
    if soc is not None:
        bits.append(f"SoC {_text(soc)} %")
    for k in ("EVSEProcessing", "ChargeProgress", "SchemaID", "EVCCID"):
        if k in found:
            bits.append(f"{k}={_text(found[k])}")
    if "EVSEID" in found and (r.name or "").startswith("SessionSetup"):
        bits.append(f"EVSEID={_text(found['EVSEID'])}")
    return "  ".join(bits)


def _text(v) -> str:
    try:
        return str(v)
    except ValueError:                  # an integer beyond str()'s 4300 digits
        return f"<{v.bit_length()}-bit integer>"


def table_header(t0: Optional[float] = None) -> str:
    """The column titles; the time column's title carries the date (UTC) of the first frame."""
    day = utc(t0)
    day = "UTC " + day.strftime("%Y-%m-%d") if day else "time (UTC)"
    return (f"{'elapsed':>11} {day:<15} {'frame':>7} {'stream':>6}  {'direction':<10} "
            f"{'schema':<9} {'message':<34} details\n")


def table_rows(records: Iterable[MessageRecord], out: TextIO, t0: Optional[float] = None
               ) -> Iterator[MessageRecord]:
    """Write the table line of each record as it passes (the summary can read them too).
    elapsed: seconds since the capture's first frame; then the time of day (ISO 8601, UTC)."""
    header = False
    for r in records:
        if t0 is None:
            t0 = r.time or None
        if not header:
            out.write(table_header(t0))
            header = True
        if r.time and t0:
            rel = f"{r.time - t0:11.6f}"
            clock = utc(r.time)
            clock = clock.strftime("%H:%M:%S.%f") if clock else ""
        else:
            rel, clock = f"{'':>11}", ""
        stream = "" if r.stream is None else (f"{r.stream}" + ("t" if r.transport == "tls" else ""))
        schema = (r.schema or "") + ("?" if r.schema_guessed else "")
        detail = ("ERROR " + r.error) if r.error else details(r)
        line = (f"{rel} {clock:<15} {r.frame:>7} {stream:>6}  {r.direction or '':<10} {schema:<9} "
                f"{r.name or '-':<34} {detail}")
        out.write(line.rstrip() + "\n")
        yield r
    if not header:
        out.write(table_header(t0))


def write_table(records: Iterable[MessageRecord], out: TextIO, t0: Optional[float] = None) -> int:
    n = 0
    for _r in table_rows(records, out, t0):
        n += 1
    return n


def write(records: Iterable[MessageRecord], fmt: str, out: TextIO, t0: Optional[float] = None) -> int:
    return {"jsonl": write_jsonl, "xml": write_xml, "table": write_table}[fmt](records, out, t0)


def _iso_times(o):
    """The summary's JSON form with ISO 8601 times, as the records have."""
    if isinstance(o, dict):
        return {k: (iso_time(v) if k in ("time", "start", "end") and isinstance(v, (int, float))
                    else _iso_times(v)) for k, v in o.items()}
    if isinstance(o, list):
        return [_iso_times(x) for x in o]
    return o


def group_problems(problems: list) -> list:
    """Runs of the same message and error become one entry: (first frame, last frame,
    count, message, error), in order of first appearance of the run."""
    out: list = []
    for p in problems:
        if out and out[-1][3] == p["message"] and out[-1][4] == p["error"]:
            first, _last, n, m, e = out[-1]
            out[-1] = (first, p["frame"], n + 1, m, e)
        else:
            out.append((p["frame"], p["frame"], 1, p["message"], p["error"]))
    return out


def write_summary(summary: dict, out: TextIO, as_json: bool = False) -> None:
    if as_json:
        out.write(json.dumps(_iso_times(summary), default=_json_default, ensure_ascii=False, indent=1))
        out.write("\n")
        return
    for s in summary["file_problems"]:
        out.write(f"capture file: frame {s['frame']}: {s['error']}\n")
    if summary.get("slac"):
        from .slac import write_summary as write_slac
        write_slac(summary["slac"], out)
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
        out.write(f"  time: {iso_time(s['start']) or '-'} .. {iso_time(s['end']) or '-'} "
                  f"({s['duration']:.3f} s)\n")
        out.write(f"  SessionID: {', '.join(map(str, s['session_ids'])) or '-'}  EVCCID: {s['EVCCID'] or '-'}"
                  f"  EVSEID: {s['EVSEID'] or '-'}\n")
        names = list(s["messages"]) + [t["message"] for t in s["response_times"]]
        w = max([len(x) for x in names] + [24])
        out.write(f"  messages ({sum(s['messages'].values())}):\n")
        for name, cnt in s["messages"].items():
            out.write(f"    {name:<{w}} {cnt:>6}\n")
        if s["response_times"]:
            out.write(f"  {'response times (s)':<{w + 2}} {'count':>6} {'min':>9} {'median':>9} {'max':>9} "
                      f"{'limit':>7} {'over':>5}\n")
            sources = []
            for t in s["response_times"]:
                lim = f"{t['limit']:g}" if t["limit"] is not None else "-"
                out.write(f"    {t['message']:<{w}} {t['count']:>6} {t['min']:>9.4f} {t['median']:>9.4f} "
                          f"{t['max']:>9.4f} {lim:>7} {t['over_limit']:>5}\n")
                if t["limit_source"] and t["limit_source"] not in sources:
                    sources.append(t["limit_source"])
            for src in sources:
                out.write(f"    limits: {src}\n")
        if s.get("late_responses"):
            groups: dict = {}
            for x in s["late_responses"]:
                g = groups.setdefault((x.get("timer", "limit"), x["message"]), [0, 0.0, x["limit"]])
                g[0] += 1
                g[1] = max(g[1], x["response_time"])
            out.write(f"  timer violations ({len(s['late_responses'])}):\n")
            for (timer, msg), (n, worst, lim) in groups.items():
                out.write(f"    {timer} {msg}: {n} over {lim:g} s (worst {worst:.3f} s)\n")
        if s["problems"]:
            groups = group_problems(s["problems"])
            out.write(f"  errors and FAILED response codes ({len(s['problems'])}):\n")
            fw = max(len(_frames(g)) for g in groups)
            mw = max(len(g[3] or "-") for g in groups)
            for g in groups:
                times = f"  (x{g[2]})" if g[2] > 1 else ""
                out.write(f"    {_frames(g):<{fw}}  {g[3] or '-':<{mw}}  {g[4]}{times}\n")
        else:
            out.write("  errors and FAILED response codes: none\n")


def _frames(g) -> str:
    return f"frame {g[0]}" if g[0] == g[1] else f"frames {g[0]}-{g[1]}"


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
           "table_rows", "details", "physical", "iso_time", "write_summary", "group_problems", "Progress",
           "filtered"]
