"""Per-session summary of decoded capture records (--summary).

A session is one TCP (or decrypted TLS) stream carrying V2GTP.  Response time = time
of a SECC->EVCC "<X>Res" minus time of the EVCC->SECC "<X>Req" it answers (same
stream, next response of that name), compared with the standard's limit for X.

Limits come from the one timer table of the session layer
(exi.v2g.session.timers.MESSAGE_TIMERS / PHASE_TIMERS), which the EVCC and SECC cores
use too: ``limit`` is V2G_EVCC_Msg_Timeout (a response later than that ends a session
run by the standard's limits), ``performance_time`` is V2G_SECC_Msg_Performance_Time.
``late_responses`` lists every response over either timer (``timer`` says which) and
every CableCheck / PreCharge loop longer than its V2G_EVCC_*_Timeout.  Each row carries
the table's source and how sure it is.
"""
from __future__ import annotations

import statistics
from collections import Counter, OrderedDict, defaultdict
from typing import Iterable, Optional

from ..registry import SCHEMAS
from ..v2g.session import timers
from ._net import join
from .reader import EVCC_TO_SECC, SECC_TO_EVCC, MessageRecord


def limit_for(schema: Optional[str], base: str,
              timer: str = timers.EVCC_MSG_TIMEOUT) -> tuple[Optional[float], str]:
    """(seconds, source) of ``timer`` for message ``base`` from the session timer table."""
    if not schema:
        return None, ""
    seconds, source = timers.message_timer(schema, timer, base)
    # how sure each citation is stays in timers.py; the output names the table only
    return seconds, source.split(" (")[0] if source else source


def _body(rec: MessageRecord) -> dict:
    """The message element's own dict (inside Body for DIN/-2)."""
    c = rec.content or {}
    if not c or rec.name is None:
        return {}
    root = next(iter(c))
    if root == "V2G_Message":
        return ((c[root] or {}).get("Body") or {}).get(rec.name) or {}
    return c.get(root) or {}


def _header(rec: MessageRecord) -> dict:
    c = rec.content or {}
    if "V2G_Message" in c:
        return (c["V2G_Message"] or {}).get("Header") or {}
    return _body(rec).get("Header") or {}


class _Session:
    def __init__(self, rec: MessageRecord):
        self.stream = rec.stream
        self.transport = rec.transport
        ev = rec.direction == EVCC_TO_SECC
        self.evcc = join(rec.src, rec.sport) if ev else join(rec.dst, rec.dport)
        self.secc = join(rec.dst, rec.dport) if ev else join(rec.src, rec.sport)
        self.start = self.end = rec.time
        self.protocol = None
        self.guessed = False
        self.session_ids: list = []
        self.evccid = self.evseid = None
        self.counts: Counter = Counter()
        self.pending: dict = {}
        self.times: dict = defaultdict(list)
        self.late: list = []
        self.problems: list = []
        self.loop: Optional[list] = None        # [message, start, last] of a CableCheck/PreCharge loop
        self.last_response: Optional[MessageRecord] = None   # for V2G_SECC_Sequence_Timeout

    def close_loop(self, base: Optional[str] = None) -> None:
        """A CableCheck/PreCharge loop ended (another request, or the stream's end)."""
        if self.loop is None or self.loop[0] == base:
            return
        name, start, last = self.loop
        self.loop = None
        for timer, loop, limit in timers.PHASE_TIMERS:
            if loop == name and last - start > limit:
                self.late.append({"time": last, "frame": None, "message": name + "Req",
                                  "response_time": round(last - start, 6), "limit": limit, "timer": timer})


def summarize(records: Iterable[MessageRecord]) -> dict:
    """Consume records; return {"sessions": [...], "sdp": [...], "file_problems": [...]}."""
    sessions: "OrderedDict[object, _Session]" = OrderedDict()
    sdp, file_problems = [], []
    homeplug: list = []             # SLAC frames, and the first V2G record after them
    for r in records:
        if r.transport == "homeplug" or (homeplug and homeplug[-1].transport == "homeplug"):
            homeplug.append(r)
            if r.transport == "homeplug":
                continue
        if r.stream is None:
            if r.transport == "udp":
                sdp.append({"time": r.time, "direction": r.direction, "message": r.name,
                            "content": r.content, "error": r.error})
            else:
                file_problems.append({"frame": r.frame, "error": r.error})
            continue
        key = (r.transport == "tls", r.stream)
        s = sessions.get(key)
        if s is None:
            s = sessions[key] = _Session(r)
        if r.time:
            s.start, s.end = min(s.start or r.time, r.time), max(s.end, r.time)
        if r.error:
            s.problems.append({"time": r.time, "frame": r.frame, "message": r.name, "error": r.error})
        if r.name is None:
            continue
        s.counts[r.name] += 1
        if r.schema and r.schema != "sap" and s.protocol is None:
            s.protocol, s.guessed = r.schema, r.schema_guessed
        body = _body(r)
        sid = _header(r).get("SessionID")
        if sid is not None and sid not in s.session_ids and str(sid).strip("0"):
            s.session_ids.append(sid)
        if r.name == "SessionSetupReq" and body.get("EVCCID") is not None:
            s.evccid = body["EVCCID"]
        if r.name == "SessionSetupRes" and body.get("EVSEID") is not None:
            s.evseid = body["EVSEID"]
        code = body.get("ResponseCode")
        if code is not None and str(code).upper().startswith("FAILED"):
            s.problems.append({"time": r.time, "frame": r.frame, "message": r.name,
                               "error": f"ResponseCode {code}"})
        if r.name.endswith("Req") and r.direction == EVCC_TO_SECC:
            # -20 sequence timer per message (0.5 s after a charge-loop response); the
            # table has this row for -20 only, DIN/-2 are not judged here.
            prev = s.last_response
            if prev is not None and prev.time and r.time:
                lim, _src = limit_for(prev.schema, prev.name[:-3], timers.SECC_SEQUENCE_TIMEOUT)
                if lim is not None and r.time - prev.time > lim:
                    s.late.append({"time": r.time, "frame": r.frame, "message": r.name,
                                   "response_time": round(r.time - prev.time, 6), "limit": lim,
                                   "timer": timers.SECC_SEQUENCE_TIMEOUT})
            s.pending[r.name[:-3]] = r
            s.close_loop(r.name[:-3])
            if r.name in ("CableCheckReq", "PreChargeReq") and r.time and s.loop is None:
                s.loop = [r.name[:-3], r.time, r.time]
        elif r.name.endswith("Res") and r.direction == SECC_TO_EVCC:
            s.last_response = r
            base = r.name[:-3]
            req = s.pending.pop(base, None)
            if req is not None and r.time and req.time:
                dt = r.time - req.time
                s.times[(base, r.schema)].append(dt)
                if s.loop is not None and s.loop[0] == base:
                    s.loop[2] = r.time
                for timer in (timers.SECC_PERFORMANCE_TIME, timers.EVCC_MSG_TIMEOUT):
                    lim, _src = limit_for(r.schema, base, timer)
                    if lim is not None and dt > lim:
                        s.late.append({"time": r.time, "frame": r.frame, "message": r.name,
                                       "response_time": round(dt, 6), "limit": lim, "timer": timer})
    out = []
    for s in sessions.values():
        s.close_loop()
        rt = []
        for (base, schema), vals in s.times.items():
            lim, src = limit_for(schema, base)
            perf, perf_src = limit_for(schema, base, timers.SECC_PERFORMANCE_TIME)
            rt.append({"message": base, "count": len(vals), "min": round(min(vals), 6),
                       "median": round(statistics.median(vals), 6), "max": round(max(vals), 6),
                       "limit": lim, "over_limit": sum(v > lim for v in vals) if lim else 0,
                       "limit_source": src, "performance_time": perf,
                       "over_performance_time": sum(v > perf for v in vals) if perf else 0,
                       "performance_time_source": perf_src})
        info = SCHEMAS.get(s.protocol) if s.protocol else None
        out.append({
            "stream": s.stream, "transport": s.transport, "evcc": s.evcc, "secc": s.secc,
            "start": s.start, "end": s.end, "duration": round((s.end or 0) - (s.start or 0), 6),
            "protocol": info.title if info else s.protocol, "schema": s.protocol,
            "protocol_guessed": s.guessed, "session_ids": s.session_ids,
            "EVCCID": s.evccid, "EVSEID": s.evseid, "messages": dict(s.counts),
            "response_times": rt, "late_responses": s.late, "problems": s.problems,
        })
    result = {"sessions": out, "sdp": sdp, "file_problems": file_problems}
    if homeplug:
        from .slac import summarize as slac_summary
        result["slac"] = slac_summary(homeplug)
    return result
