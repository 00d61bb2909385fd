"""(Re)build the seed corpora in fuzz/corpus/ from the shared vectors and captures.

    python -m fuzz.make_corpus [/path/to/shared/vectors]

Seeds are kept few and small (the repository carries them); regression inputs of fixed
findings live beside them as regress-*, which this script never deletes.
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

from .run import CORPUS
from .targets import SCHEMA_IDS

PER_SCHEMA = 12          # seeds per message set and target
MAX_SEED = 2048          # bytes
CAPTURE_BYTES = 8192     # captures are cut to their first bytes

VECTOR_SCHEMA = {"exi_sap.jsonl": ["sap"], "exi_din.jsonl": ["din"], "exi_iso2.jsonl": ["iso2"],
                 "exi_iso20.jsonl": ["iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp"]}
CAPTURES = [
    "EVerest+logfiles/Mercedes-Benz/EQE/2023-04-18T15:18:18.778Z-1_config-dc-dinspec/ethernet-traffic.dump",
    "EVerest+logfiles/Mercedes-Benz/EQE/2023-04-18T15:20:45.345Z-3_config-ac-iso2/ethernet-traffic.dump",
    "tux-evse+iso15118-binding-rs/afb-test/trace-logs/iso15118-v2g-protocol-handshake.pcapng",
    "tux-evse+iso15118-binding-rs/afb-test/trace-logs/iso15118-slac+sdp+tls.pcapng",
    "dspace-group+dsV2Gshark/Wireshark/dsV2Gshark_examples/ISO-20_BPT_AC_DS5366_Josev.pcapng",
    "uhi22+clara-logs/2024-02-18_clara_numbat_lightbulb_ok.claralog.pcap",
]


def put(target: str, data: bytes, prefix: str = "seed") -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{prefix}-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)


def vectors(root: Path):
    """(schema id, message name, bytes, is fragment) of the shared vectors that decode."""
    import exi
    out = []
    for fname, sids in VECTOR_SCHEMA.items():
        for line in (root / fname).read_text().splitlines():
            v = json.loads(line)
            data = bytes.fromhex(v["exi_hex"])
            if len(data) > MAX_SEED:
                continue
            frag = "fragment" in (v.get("note") or "")
            for sid in sids + (["xmldsig"] if frag else []):
                try:
                    (exi.decode_fragment if frag else exi.decode)(data, sid)
                except exi.DecodeError:
                    continue
                out.append((sid, v["message"], data, frag))
                break
    return out


def _pcap(*packets, linktype=101) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, p in enumerate(packets):
        out += struct.pack("<IIII", i, 0, len(p), len(p)) + p
    return out


def _pcapng(packet: bytes, ts_us: int, linktype=101) -> bytes:
    """A one-packet pcapng (section, interface, enhanced packet block; microsecond units)."""
    def block(btype, body):
        body += bytes(-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", linktype, 0, 65535))
    epb = block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(packet), len(packet)) + packet)
    return shb + idb + epb


def regressions() -> None:
    """One input per finding fixed (issue 15 and what the targets found since)."""
    import exi
    from exi import AnyElement
    from exi.capture.synth import TcpConversation, udp_packet, v2gtp
    from exi.messages import din, sap, xmldsig
    from exi.v2g.session._msg import v2g

    def reg(target, name, data):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
        (CORPUS / target / f"regress-{name}").write_bytes(data)

    huge_sap = exi.encode(sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="urn:din:70121:2012:MsgDef", VersionNumberMajor=10 ** 5000, VersionNumberMinor=0,
        SchemaID=1, Priority=1)]), validate=False)
    long_id = exi.encode(v2g("din", bytes(8), "SessionSetupReq", din.SessionSetupReqType(EVCCID=b"\x01" * 300)),
                         validate=False)
    welding = exi.encode(din.WeldingDetectionReq(DC_EVStatus=din.DC_EVStatusType(
        EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=50)))
    no_code = bytes.fromhex("809a02044444444444444451e800040480")   # SessionSetupRes, no ResponseCode
    # sessions: (din dc, n-th message, replace)
    reg("secc", "huge-integer-in-sap", bytes([0, 0, 0]) + huge_sap)
    reg("secc", "evccid-beyond-the-schema", bytes([0, 1, 0]) + long_id)
    reg("secc", "root-not-a-message", bytes([0, 3, 0]) + welding)
    reg("evcc", "root-not-a-message", bytes([0, 2, 0]) + welding)
    reg("evcc", "no-response-code", bytes([0, 1, 0]) + no_code)
    reg("decode", "huge-integer", bytes([0]) + huge_sap)
    # undeclared names and text XML cannot carry, for to_xml (found by the decode target)
    for i, el in enumerate((AnyElement(("", "a\x01"), None, [], ["x"]), AnyElement(("", "1a"), None, [], []),
                            AnyElement(("", "a"), None, [(("", "b c"), "v")], []),
                            AnyElement(("", "a"), None, [(("", "b"), "v\x00")], []))):
        reg("decode", f"xml-name-{i}", bytes([8]) + exi.encode(xmldsig.Object(content=[el])))
    # an undeclared xsi:type anyType element holding a schema element
    frag = exi.encode_fragment(AnyElement(("", "foo"), ("http://www.w3.org/2001/XMLSchema", "anyType"), [],
                                          [xmldsig.DigestMethod(Algorithm="urn:x"), "t"]), schema="xmldsig")
    reg("decode_fragment", "anytype-holding-schema-element", bytes([8]) + frag)
    # wildcard content of the wrong shape, for from_dict (schema xmldsig)
    for i, bad in enumerate(([5], [{"a": 5}], [{"a": {"content": 5}}], [{"a": {"b": 5}}], 5, [[1]],
                             [{"a": {"content": [{"b": {"namespace": 1}}]}}])):
        reg("from_dict", f"wildcard-shape-{i}", bytes([8]) + json.dumps({"Object": {"any": bad}}).encode())
    reg("from_dict", "non-dict-root", bytes([1]) + b"[1]")
    # captures: IPv6 hop-by-hop header past the frame; SDP with Security 5; a huge integer
    ip6 = b"\x60\x00\x00\x00" + struct.pack("!HBB", 400, 0, 64) + bytes(32) + b"\x00\x30" + bytes(6)
    reg("capture", "ipv6-extension-chain", _pcap(ip6))
    sdp5 = udp_packet("fe80::1", 50000, "ff02::1", 15118, v2gtp(0x9000, b"\x05\x00"))
    conv = TcpConversation("fe80::1", 50001, "fe80::2", 15118)
    conv.handshake()
    conv.send(True, v2gtp(0x8001, huge_sap))
    reg("capture", "sdp-security-5-and-huge-integer", _pcap(sdp5, *(p for _, p in conv.frames)))
    # a pcapng timestamp past year 9999 (datetime's range) in every output format
    reg("capture", "timestamp-year-56106", _pcapng(sdp5, 1_708_000_000_000_000_000))


def main(argv=None) -> None:
    import exi
    root = Path((argv or sys.argv[1:] or ["/work/shared/vectors"])[0])
    for d in CORPUS.glob("*/seed-*"):
        d.unlink()
    vecs = vectors(root)
    by_schema: dict = {}
    for sid, name, data, frag in vecs:
        seen = by_schema.setdefault((sid, frag), {})
        seen.setdefault(name, data)          # one per message name, in file order
    for (sid, frag), names in by_schema.items():
        sel = bytes([SCHEMA_IDS.index(sid)])
        for data in list(names.values())[:PER_SCHEMA]:
            if frag:
                put("decode_fragment", sel + data)
                continue
            put("decode", sel + data)
            msg = exi.decode(data, sid)
            try:
                put("from_xml", sel + exi.to_xml(msg).encode())
            except exi.EncodeError:
                pass
            put("from_dict", sel + json.dumps(exi.to_dict(msg)).encode())
            put("v2gtp", b"\x03\x08\x10" + struct.pack("!BBHI", 1, 0xFE, 0x8001, len(data)) + data
                + struct.pack("!BBHI", 1, 0xFE, 0x8001, len(data)) + data)
    for ptype, payload in ((0x9000, b"\x00\x00"), (0x9000, b"\x10\x00"),
                           (0x9001, bytes(15) + b"\x01" + b"\x3a\xfe\x00\x00"),
                           (0x9002, b"\x00\x00"), (0x9003, bytes(16) + b"\x3a\xfe\x10\x00" + bytes(8)),
                           (0x9004, b"\x00"), (0x9005, bytes(18) + b"E1"), (0x9000, b"\x05\x00")):
        put("sdp", struct.pack("!BBHI", 1, 0xFE, ptype, len(payload)) + payload)
    for rel in CAPTURES:
        p = root / "captures" / rel
        put("capture", p.read_bytes()[:CAPTURE_BYTES])
    # sessions: kind (din dc / iso2 dc / iso2 ac), which message, how (replace / xor / splice)
    reqs = [data for sid, name, data, frag in vecs if sid in ("din", "iso2", "sap") and not frag
            and name.endswith("Req")][:40:4]
    ress = [data for sid, name, data, frag in vecs if sid in ("din", "iso2", "sap") and not frag
            and name.endswith("Res")][:40:4]
    for kind in range(3):
        for nth in (0, 1, 2, 4, 7, 9, 12, 16):
            put("secc", bytes([kind, nth, 1]) + b"\x00\x00\x00\x01\x00\x00\x40")
            put("evcc", bytes([kind, nth, 1]) + b"\x00\x00\x00\x01\x00\x00\x40")
        for i, data in enumerate(reqs):
            put("secc", bytes([kind, 3 * i % 14, 0]) + data)
        for i, data in enumerate(ress):
            put("evcc", bytes([kind, 3 * i % 14, 0]) + data)
    regressions()
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"{sum(1 for _ in CORPUS.rglob('*'))} corpus files, {total // 1024} KiB")


if __name__ == "__main__":
    main()
