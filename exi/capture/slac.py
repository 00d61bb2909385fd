"""HomePlug AV management messages (ethertype 0x88E1) and the ISO 15118-3 SLAC matching.

SLAC (Signal Level Attenuation Characterization) is how an EV and an EVSE find each
other on the power line before any IP traffic: the EV broadcasts CM_SLAC_PARAM.REQ,
sends sounds (CM_START_ATTEN_CHAR.IND, CM_MNBC_SOUND.IND), every EVSE that heard them
answers with its attenuation profile (CM_ATTEN_CHAR.IND), the EV picks the EVSE with the
lowest attenuation and asks it to match (CM_SLAC_MATCH.REQ); the EVSE answers with the
network's NID and key (NMK) in CM_SLAC_MATCH.CNF, which the EV's host then writes into
its own modem (CM_SET_KEY.REQ) to join the logical network.

parse_frame() decodes one Ethernet frame into (name, fields, error); fields are kept
when the frame is damaged (cut short, wrong lengths): everything before the damage is
decoded and the error says where it stopped.  Field layouts are those of the HomePlug
AV 1.1 management message header and the ISO 15118-3 SLAC messages (MMV 1: a 2-byte
fragmentation field follows MMTYPE; MMV 0 has none; vendor-specific messages start
with a 3-byte OUI).  summarize() turns the records of a capture into matching attempts
with the -3 timers checked (see TIMERS).
"""
from __future__ import annotations

import struct
from typing import Iterable, Optional

ETHERTYPE = 0x88E1
MODES = ("REQ", "CNF", "IND", "RSP")        # the two low bits of MMTYPE
LOCAL_MANAGEMENT_MAC = "00:b0:52:00:00:01"   # Qualcomm Atheros modems' own management address

BASE_NAMES = {
    0x0014: "CC_DISCOVER_LIST", 0x6004: "CM_ENCRYPTED_PAYLOAD", 0x6008: "CM_SET_KEY",
    0x600C: "CM_GET_KEY", 0x6010: "CM_SC_JOIN", 0x6014: "CM_CHAN_EST", 0x6018: "CM_TM_UPDATE",
    0x601C: "CM_AMP_MAP", 0x6020: "CM_BRG_INFO", 0x6030: "CM_CONN_INFO", 0x6034: "CM_STA_CAP",
    0x6038: "CM_NW_INFO", 0x603C: "CM_GET_BEACON", 0x6040: "CM_HFID", 0x6044: "CM_MME_ERROR",
    0x6048: "CM_NW_STATS", 0x6058: "CM_STA_IDENTIFY", 0x6064: "CM_SLAC_PARAM",
    0x6068: "CM_START_ATTEN_CHAR", 0x606C: "CM_ATTEN_CHAR", 0x6070: "CM_PKCS_CERT",
    0x6074: "CM_MNBC_SOUND", 0x6078: "CM_VALIDATE", 0x607C: "CM_SLAC_MATCH",
    0x6080: "CM_SLAC_USER_DATA", 0x6084: "CM_ATTEN_PROFILE", 0xA000: "VS_SW_VER",
}

# Which side sends each SLAC message (ISO 15118-3 matching sequence); others are
# between a host and its own modem, or not part of SLAC.
EV_SENDS = {"CM_SLAC_PARAM.REQ", "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND", "CM_ATTEN_CHAR.RSP",
            "CM_VALIDATE.REQ", "CM_SLAC_MATCH.REQ"}
EVSE_SENDS = {"CM_SLAC_PARAM.CNF", "CM_ATTEN_CHAR.IND", "CM_VALIDATE.CNF", "CM_SLAC_MATCH.CNF"}

# ISO 15118-3 timers (seconds) checked by summarize().  Values as in EVerest libslac
# and other SLAC implementations (see docs/slac.md); not read from the standard's text.
TIMERS = {
    "TT_match_response": 0.2,       # a request/indication waits this long for its answer
    "TT_match_sequence": 0.4,       # waiting for the next message of the sequence
    "TT_EVSE_match_MNBC": 0.6,      # the EVSE's window for the sounds
    "TT_EV_atten_results": 1.2,     # the EV waits this long for CM_ATTEN_CHAR.IND
    "TT_match_join": 12.0,          # CM_SLAC_MATCH.CNF until the link is up
}


class Truncated(Exception):
    def __init__(self, field: str, need: int, have: int):
        super().__init__(f"cut short in {field}: {need} bytes needed, {have} left")


class _Cursor:
    __slots__ = ("data", "pos", "out")

    def __init__(self, data: bytes, pos: int, out: dict):
        self.data, self.pos, self.out = data, pos, out

    def take(self, field: str, n: int) -> bytes:
        have = len(self.data) - self.pos
        if have < n:
            raise Truncated(field, n, have)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self, field: str) -> int:
        v = self.out[field] = self.take(field, 1)[0]
        return v

    def u16le(self, field: str) -> int:
        v = self.out[field] = struct.unpack("<H", self.take(field, 2))[0]
        return v

    def u32le(self, field: str) -> int:
        v = self.out[field] = struct.unpack("<I", self.take(field, 4))[0]
        return v

    def hex(self, field: str, n: int) -> str:
        v = self.out[field] = self.take(field, n).hex().upper()
        return v

    def mac(self, field: str) -> str:
        v = self.out[field] = mac_text(self.take(field, 6))
        return v

    def station_id(self, field: str) -> str:
        """17-byte identifiers (PEV ID, EVSE ID, SOURCE_ID...): text when printable."""
        b = self.take(field, 17)
        s = b.rstrip(b"\x00")
        v = self.out[field] = s.decode("ascii") if s and all(32 <= c < 127 for c in s) else b.hex().upper()
        return v

    def profile(self, field: str, count: int) -> list:
        v = self.out[field] = list(self.take(field, count))
        return v


def mac_text(b: bytes) -> str:
    return ":".join(f"{c:02x}" for c in b)


def _app_sec(c: _Cursor) -> None:
    c.u8("ApplicationType")
    c.u8("SecurityType")


def _slac_param_req(c):
    _app_sec(c)
    c.hex("RunID", 8)
    if c.out["SecurityType"] == 1 and c.pos < len(c.data):    # signed SLAC: cipher suites follow
        n = c.u8("CipherSuiteSetSize")
        c.out["CipherSuite"] = [struct.unpack("<H", c.take("CipherSuite", 2))[0] for _ in range(n)]


def _slac_param_cnf(c):
    c.mac("MSoundTarget")
    c.u8("NumSounds")
    c.u8("TimeOut")                 # in 100 ms units: the EVSE's sounding window
    c.u8("RespType")
    c.mac("ForwardingSTA")
    _app_sec(c)
    c.hex("RunID", 8)


def _start_atten_char_ind(c):
    _app_sec(c)
    c.u8("NumSounds")
    c.u8("TimeOut")
    c.u8("RespType")
    c.mac("ForwardingSTA")
    c.hex("RunID", 8)


def _mnbc_sound_ind(c):
    _app_sec(c)
    c.station_id("SenderID")
    c.u8("Cnt")                     # sounds still to come
    c.hex("RunID", 8)
    c.take("Reserved", 8)
    c.hex("Rnd", 16)


def _atten_char_common(c):
    _app_sec(c)
    c.mac("SourceAddress")
    c.hex("RunID", 8)
    c.station_id("SourceID")
    c.station_id("RespID")


def _atten_char_ind(c):
    _atten_char_common(c)
    c.u8("NumSounds")
    n = c.u8("NumGroups")
    c.profile("AAG", n)             # average attenuation per carrier group, dB


def _atten_char_rsp(c):
    _atten_char_common(c)
    c.u8("Result")


def _atten_profile_ind(c):
    c.mac("PEVMAC")
    n = c.u8("NumGroups")
    c.take("Reserved", 1)
    c.profile("AAG", n)


def _validate_req(c):
    c.u8("SignalType")
    c.u8("Timer")
    c.u8("Result")


def _validate_cnf(c):
    c.u8("SignalType")
    c.u8("ToggleNum")
    c.u8("Result")


def _slac_match_common(c):
    _app_sec(c)
    c.u16le("MVFLength")
    c.station_id("PEVID")
    c.mac("PEVMAC")
    c.station_id("EVSEID")
    c.mac("EVSEMAC")
    c.hex("RunID", 8)
    c.take("Reserved", 8)


def _slac_match_cnf(c):
    _slac_match_common(c)
    c.hex("NID", 7)
    c.take("Reserved", 1)
    c.hex("NMK", 16)


def _set_key_req(c):
    c.u8("KeyType")                 # 1: NMK
    c.u32le("MyNonce")
    c.u32le("YourNonce")
    c.u8("PID")
    c.u16le("PRN")
    c.u8("PMN")
    c.u8("CCoCapability")
    c.hex("NID", 7)
    c.u8("NewEKS")
    if c.pos < len(c.data):
        c.hex("NewKey", min(16, len(c.data) - c.pos))


def _set_key_cnf(c):
    c.u8("Result")
    c.u32le("MyNonce")
    c.u32le("YourNonce")
    c.u8("PID")
    c.u16le("PRN")
    c.u8("PMN")
    c.u8("CCoCapability")


def _amp_map_req(c):
    n = c.u16le("AMLEN")
    c.hex("AMDATA", (n + 1) // 2)   # 4 bits per carrier


def _amp_map_cnf(c):
    c.u8("ResType")


PARSERS = {
    0x6064: _slac_param_req, 0x6065: _slac_param_cnf, 0x606A: _start_atten_char_ind,
    0x6076: _mnbc_sound_ind, 0x606E: _atten_char_ind, 0x606F: _atten_char_rsp,
    0x6086: _atten_profile_ind, 0x6078: _validate_req, 0x6079: _validate_cnf,
    0x607C: _slac_match_common, 0x607D: _slac_match_cnf, 0x6008: _set_key_req, 0x6009: _set_key_cnf,
    0x601C: _amp_map_req, 0x601D: _amp_map_cnf,
}

def message_name(mmtype: int) -> str:
    base = BASE_NAMES.get(mmtype & ~3)
    if base is None:
        kind = "VS" if mmtype >= 0xA000 else "MS" if mmtype >= 0x8000 else "MME"
        base = f"{kind}_{mmtype & ~3:#06x}"
    return f"{base}.{MODES[mmtype & 3]}"


def ethernet_payload(linktype: int, frame: bytes):
    """(dst MAC, src MAC, HomePlug AV payload) when the frame has ethertype 0x88E1, else None.

    Ethernet (with VLAN tags) and Linux cooked captures (SLL, SLL2) are recognised."""
    if linktype == 1:
        if len(frame) < 17:
            return None
        off, et = 14, frame[12] << 8 | frame[13]
        while et in (0x8100, 0x88A8, 0x9100) and len(frame) >= off + 4:
            et, off = frame[off + 2] << 8 | frame[off + 3], off + 4
        if et != ETHERTYPE:
            return None
        return frame[0:6], frame[6:12], frame[off:]
    if linktype == 113 and len(frame) >= 16 and frame[14] << 8 | frame[15] == ETHERTYPE:
        return b"", frame[6:6 + min(6, frame[4] << 8 | frame[5])], frame[16:]
    if linktype == 276 and len(frame) >= 20 and frame[0] << 8 | frame[1] == ETHERTYPE:
        return b"", frame[12:12 + min(6, frame[11])], frame[20:]
    return None


def parse_mme(mme: bytes) -> tuple[Optional[str], dict, Optional[str]]:
    """(name, fields, error) of one HomePlug AV management message (after the ethertype)."""
    fields: dict = {}
    if len(mme) < 3:
        return None, fields, f"HomePlug AV frame cut short: {len(mme)} bytes, the header needs 3"
    mmv, mmtype = mme[0], mme[1] | mme[2] << 8
    fields["MMV"] = mmv
    fields["MMTYPE"] = f"0x{mmtype:04X}"
    name = message_name(mmtype)
    pos = 3
    c = _Cursor(mme, pos, fields)
    try:
        if mmv >= 1:                # HomePlug AV 1.1 / Green PHY: fragmentation information
            fmi = c.take("FMI", 2)
            if fmi[0] & 0x0F:       # FN_MI: more than one fragment
                fields["Fragment"] = {"count": (fmi[0] & 0x0F) + 1, "index": fmi[0] >> 4,
                                      "sequence": fmi[1]}
                return name, fields, None
        if mmtype >= 0xA000:        # vendor-specific: an OUI, then the vendor's own layout
            fields["OUI"] = c.take("OUI", 3).hex().upper()
            fields["Data"] = mme[c.pos:].hex().upper()
            return name, fields, None
        parser = PARSERS.get(mmtype)
        if parser is not None:
            parser(c)
        else:
            fields["Data"] = mme[c.pos:].hex().upper()
    except Truncated as e:
        return name, fields, f"{name} {e}"
    except (struct.error, IndexError, ValueError) as e:      # defensive: never raise on bad input
        return name, fields, f"{name} not decodable: {e}"
    if "MVFLength" in fields:
        expected = 62 if mmtype == 0x607C else 86
        if fields["MVFLength"] != expected:
            return name, fields, f"{name} MVFLength is {fields['MVFLength']}, expected {expected}"
    if "NumGroups" in fields and fields["NumGroups"] != len(fields.get("AAG", ())):
        return name, fields, f"{name} announces {fields['NumGroups']} groups, has {len(fields['AAG'])}"
    return name, fields, None


def direction_of(name: Optional[str]) -> Optional[str]:
    if name in EV_SENDS:
        return "EVCC->SECC"
    if name in EVSE_SENDS:
        return "SECC->EVCC"
    return None


def record(ts: float, frame_no: int, linktype: int, frame: bytes):
    """A MessageRecord for a HomePlug AV frame, or None when the frame is not one."""
    from .reader import MessageRecord
    eth = ethernet_payload(linktype, frame)
    if eth is None:
        return None
    dst, src, mme = eth
    name, fields, error = parse_mme(mme)
    return MessageRecord(ts, frame_no, None, direction_of(name), mac_text(src), 0, mac_text(dst), 0,
                         "homeplug", None, "homeplug", False, name, fields, error, 0, bytes(mme), None)


# --- summary ----------------------------------------------------------------------------

def _mean(values) -> Optional[float]:
    values = list(values)
    return round(sum(values) / len(values), 1) if values else None


class _Attempt:
    """One matching attempt: from a CM_SLAC_PARAM.REQ (its RunID) on."""

    def __init__(self, rec):
        self.run_id = rec.content.get("RunID")
        self.ev_mac = rec.src
        self.start = rec.time
        self.first_frame = rec.frame
        self.req_times = [rec.time]
        self.t: dict = {}            # event -> first time seen
        self.sounds = 0
        self.sound_last = None
        self.profiles: dict = {}     # EVSE MAC -> CM_ATTEN_CHAR.IND fields
        self.evse_mac = None
        self.nid = self.nmk = None
        self.validate = []
        self.evse_key = None         # CM_SET_KEY.REQ with the NMK before the match (EVSE side)
        self.set_key = None          # ... after CM_SLAC_MATCH.CNF: the EV's host keys its modem
        self.set_key_result = None
        self.set_key_src = None

    def first(self, event: str, t: float) -> None:
        self.t.setdefault(event, t)


def summarize(records: Iterable) -> dict:
    """Matching attempts found in HomePlug AV records (record.transport == "homeplug").

    Returns {"attempts": [...], "messages": {name: count}, "problems": [...],
    "timers": TIMERS}.  A V2G record passed in marks the first IP traffic after a match
    (for the join time)."""
    attempts: list[_Attempt] = []
    by_run: dict = {}
    counts: dict = {}
    problems = []
    keys: list = []                  # (time, frame, NewKey) of every CM_SET_KEY.REQ
    for r in records:
        if r.transport != "homeplug":
            if r.time and r.transport in ("udp", "tcp", "tls"):
                for a in attempts:
                    if "CM_SLAC_MATCH.CNF" in a.t and "join" not in a.t:
                        a.t["join"] = r.time
            continue
        counts[r.name or "?"] = counts.get(r.name or "?", 0) + 1
        if r.error:
            problems.append({"time": r.time, "frame": r.frame, "message": r.name, "error": r.error})
        c = r.content or {}
        run = c.get("RunID")
        name = r.name
        if name == "CM_SLAC_PARAM.REQ":
            a = by_run.get(run)
            if a is None or a.ev_mac != r.src:
                a = by_run[run] = _Attempt(r)
                attempts.append(a)
            else:
                a.req_times.append(r.time)
            continue
        a = by_run.get(run) if run else None
        if a is None and name == "CM_SET_KEY.REQ" and not attempts:
            keys.append((r.time, c.get("NewKey")))
            continue
        if a is None and name in ("CM_VALIDATE.REQ", "CM_VALIDATE.CNF", "CM_SET_KEY.REQ", "CM_SET_KEY.CNF",
                                  "CM_ATTEN_PROFILE.IND") and attempts:
            a = attempts[-1]
        if a is None:
            continue
        if name == "CM_SLAC_PARAM.CNF":
            a.first(name, r.time)
        elif name == "CM_START_ATTEN_CHAR.IND":
            a.first(name, r.time)
        elif name == "CM_MNBC_SOUND.IND":
            a.sounds += 1
            a.sound_last = r.time
        elif name == "CM_ATTEN_CHAR.IND":
            a.first(name, r.time)
            a.profiles.setdefault(r.src, c)
        elif name == "CM_ATTEN_CHAR.RSP":
            a.first(name, r.time)
        elif name in ("CM_VALIDATE.REQ", "CM_VALIDATE.CNF"):
            a.validate.append((name, c.get("Result")))
        elif name == "CM_SLAC_MATCH.REQ":
            a.first(name, r.time)
            a.evse_mac = c.get("EVSEMAC") or r.dst
        elif name == "CM_SLAC_MATCH.CNF":
            a.first(name, r.time)
            a.nid, a.nmk = c.get("NID"), c.get("NMK")
            a.evse_key = next((t for t, k in reversed(keys) if k == a.nmk), None)
        elif name == "CM_SET_KEY.REQ":
            keys.append((r.time, c.get("NewKey")))
            if a.nmk and c.get("NewKey") == a.nmk and a.set_key is None and r.src == a.ev_mac and r.time >= a.t.get(
                    "CM_SLAC_MATCH.CNF", float("inf")):
                a.set_key = r.time
                a.set_key_src = r.src
        elif name == "CM_SET_KEY.CNF":
            if a.set_key is not None and a.set_key_result is None and r.dst == a.set_key_src:
                a.set_key_result = c.get("Result")
    return {"attempts": [_attempt_dict(a) for a in attempts], "messages": counts,
            "problems": problems, "timers": dict(TIMERS)}


def _check(checks, name, start, end, timer):
    if start is None or end is None:
        return
    dt = round(end - start, 6)
    limit = TIMERS[timer]
    checks.append({"step": name, "seconds": dt, "timer": timer, "limit": limit, "over": dt > limit})


def _attempt_dict(a: _Attempt) -> dict:
    t = a.t
    # the request that was answered (an EV repeats CM_SLAC_PARAM.REQ until an EVSE answers)
    param_req = a.req_times[-1] if "CM_SLAC_PARAM.CNF" not in t else max(
        (x for x in a.req_times if x <= t["CM_SLAC_PARAM.CNF"]), default=a.start)
    checks: list = []
    _check(checks, "CM_SLAC_PARAM.REQ -> CNF", param_req, t.get("CM_SLAC_PARAM.CNF"), "TT_match_response")
    _check(checks, "CM_SLAC_PARAM.CNF -> CM_START_ATTEN_CHAR.IND", t.get("CM_SLAC_PARAM.CNF"),
           t.get("CM_START_ATTEN_CHAR.IND"), "TT_match_sequence")
    _check(checks, "CM_START_ATTEN_CHAR.IND -> last CM_MNBC_SOUND.IND", t.get("CM_START_ATTEN_CHAR.IND"),
           a.sound_last, "TT_EVSE_match_MNBC")
    _check(checks, "CM_START_ATTEN_CHAR.IND -> CM_ATTEN_CHAR.IND", t.get("CM_START_ATTEN_CHAR.IND"),
           t.get("CM_ATTEN_CHAR.IND"), "TT_EV_atten_results")
    _check(checks, "CM_ATTEN_CHAR.IND -> RSP", t.get("CM_ATTEN_CHAR.IND"), t.get("CM_ATTEN_CHAR.RSP"),
           "TT_match_response")
    _check(checks, "CM_SLAC_MATCH.REQ -> CNF", t.get("CM_SLAC_MATCH.REQ"), t.get("CM_SLAC_MATCH.CNF"),
           "TT_match_response")
    _check(checks, "CM_SLAC_MATCH.CNF -> first V2G message", t.get("CM_SLAC_MATCH.CNF"), t.get("join"),
           "TT_match_join")
    profiles = []
    for mac, c in a.profiles.items():
        aag = c.get("AAG") or []
        profiles.append({"evse": mac, "sounds": c.get("NumSounds"), "groups": len(aag),
                         "mean_db": _mean(aag), "min_db": min(aag) if aag else None,
                         "max_db": max(aag) if aag else None, "aag": aag})
    matched = "CM_SLAC_MATCH.CNF" in t
    if matched:
        outcome = "matched"
    elif "CM_SLAC_MATCH.REQ" in t:
        outcome = "no CM_SLAC_MATCH.CNF"
    elif "CM_ATTEN_CHAR.IND" in t:
        outcome = "no CM_SLAC_MATCH.REQ"
    elif "CM_SLAC_PARAM.CNF" in t:
        outcome = "no CM_ATTEN_CHAR.IND"
    else:
        outcome = f"CM_SLAC_PARAM.REQ not answered ({len(a.req_times)} sent)"
    return {
        "run_id": a.run_id, "ev_mac": a.ev_mac, "evse_mac": a.evse_mac, "start": a.start,
        "frame": a.first_frame, "param_requests": len(a.req_times), "outcome": outcome,
        "matching_time": round(t["CM_SLAC_MATCH.CNF"] - param_req, 6) if matched else None,
        "since_first_request": round(t["CM_SLAC_MATCH.CNF"] - a.start, 6) if matched else None,
        "sounds": a.sounds, "attenuation": profiles, "validate": a.validate,
        "nid": a.nid, "nmk_handover": (None if not matched else {
            "evse_modem_keyed": a.evse_key,
            "ev_modem_keyed": a.set_key, "delay": round(a.set_key - t["CM_SLAC_MATCH.CNF"], 6)
            if a.set_key is not None else None, "result": a.set_key_result}),
        "checks": checks,
    }


def write_summary(s: dict, out) -> None:
    """The SLAC part of `--summary` as text."""
    total = sum(s["messages"].values())
    out.write(f"SLAC (ISO 15118-3 matching over HomePlug AV): {total} frames, "
              f"{len(s['attempts'])} matching attempt(s)\n")
    for i, a in enumerate(s["attempts"], 1):
        evse = f" -> EVSE {a['evse_mac']}" if a["evse_mac"] else ""
        out.write(f"  attempt {i}: frame {a['frame']}  RunID {a['run_id']}  EV {a['ev_mac']}{evse}\n")
        if a["matching_time"] is not None:
            extra = (f", {a['since_first_request']:.3f} s since the first of {a['param_requests']} "
                     "CM_SLAC_PARAM.REQ") if a["param_requests"] > 1 else ""
            out.write(f"    matched in {a['matching_time']:.3f} s (CM_SLAC_PARAM.REQ -> CM_SLAC_MATCH.CNF"
                      f"{extra}), {a['sounds']} sounds\n")
        else:
            out.write(f"    {a['outcome']}\n")
        for p in a["attenuation"]:
            if p["groups"]:
                out.write(f"    attenuation at {p['evse']}: {p['groups']} groups, mean {p['mean_db']} dB "
                          f"(min {p['min_db']}, max {p['max_db']}) over {p['sounds']} sounds\n")
        if a["checks"]:
            out.write(f"    {'step':<50} {'seconds':>8}  {'timer':<20} {'limit':>6}\n")
            for c in a["checks"]:
                flag = "  OVER" if c["over"] else ""
                out.write(f"    {c['step']:<50} {c['seconds']:>8.3f}  {c['timer']:<20} {c['limit']:>6g}{flag}\n")
        h = a["nmk_handover"]
        if h is not None:
            bits = [f"NID {a['nid']}"]
            if h["evse_modem_keyed"] is not None:
                bits.append("EVSE modem holds the NMK (CM_SET_KEY before matching)")
            if h["ev_modem_keyed"] is not None:
                bits.append(f"EV modem keyed {h['delay']:.3f} s after CM_SLAC_MATCH.CNF "
                            f"(CM_SET_KEY.CNF Result {h['result']})")
            else:
                bits.append("the EV's CM_SET_KEY is not in the capture")
            out.write("    NMK handover: " + "; ".join(bits) + "\n")
    for p in s["problems"]:
        out.write(f"  frame {p['frame']}: {p['message'] or '-'}: {p['error']}\n")


def short_text(fields: dict) -> str:
    """A few telling fields of a HomePlug AV message for the one-line table."""
    bits = []
    for k in ("RunID", "NumSounds", "Cnt", "Result", "KeyType", "NID", "EVSEMAC", "OUI"):
        if k in fields:
            bits.append(f"{k}={fields[k]}")
    aag = fields.get("AAG")
    if aag:
        bits.append(f"attenuation mean {_mean(aag)} dB over {len(aag)} groups")
    return " ".join(bits)
