# cython: boundscheck=True
"""Capture file -> decoded V2G message records.

Pipeline per packet: _pcap (file records) -> _net (link/IP/TCP/UDP) -> _tcp (in-order
bytes per direction) -> _v2gtp (V2GTP messages) -> schema decision -> _codec (EXI).
The hot path allocates a few small tuples per packet and one record per message;
addresses are turned into text once per stream.  Records keep the decoded message
object; its dict form (exi.to_dict, several times the cost of the decode) is built when
`content` is first read.

Cython pure-Python mode (see reader.pxd): compiled by setup.py, also runs as plain Python;
indexing stays bounds-checked when compiled (the bytes come from the capture file).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, Union

import cython

from ..registry import PAYLOAD_TYPES, schema_for_payload_type, schema_for_protocol_namespace
from . import _net, _pcap, stream
from ._codec import CodecUnavailable, Decoded, Decoder
from ._net import parse
from ._pcap import FrameError
from ._tcp import Half
from ._v2gtp import Framer, find_header, parse_sdp
from .slac import record as homeplug_record

EVCC_TO_SECC = "EVCC->SECC"
SECC_TO_EVCC = "SECC->EVCC"
SAP_NAMES = ("supportedAppProtocolReq", "supportedAppProtocolRes")
GUESS_SCHEMAS = ("din", "iso2")
KEYLOG_LABELS = (b"CLIENT_RANDOM ", b"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", b"SERVER_HANDSHAKE_TRAFFIC_SECRET ",
                 b"CLIENT_TRAFFIC_SECRET_0 ", b"SERVER_TRAFFIC_SECRET_0 ", b"EXPORTER_SECRET ",
                 b"EARLY_EXPORTER_SECRET ", b"CLIENT_EARLY_TRAFFIC_SECRET ", b"RSA ")
SCAN_LIMIT = 64 * 1024          # bytes of a stream without SYN searched for a V2GTP header

_SYN, _FIN, _RST, _ACK = 0x02, 0x01, 0x04, 0x10
_UNKNOWN, _V2G, _TLS, _OTHER = 0, 1, 2, 3


@cython.cclass
class MessageRecord:
    """One V2GTP message (or one problem) found in a capture.

    `content` is exi.to_dict() of the message, built on first access and kept; records
    carrying the identical EXI payload may share the message object and the dict (decode
    cache), so treat both as read-only.  `name` comes from the message object directly.
    """
    __slots__ = ("time", "frame", "stream", "direction", "src", "sport", "dst", "dport", "transport",
                 "payload_type", "schema", "schema_guessed", "name", "_content", "error", "offset",
                 "exi", "message", "note")
    time: float
    frame: int                      # capture frame (1-based) that completed the message
    stream: Optional[int]           # TCP stream number (order of appearance), None for UDP
    direction: Optional[str]        # "EVCC->SECC" / "SECC->EVCC"
    src: str
    sport: int
    dst: str
    dport: int
    transport: str                  # "tcp", "tls" (decrypted), "udp", "" for file damage
    payload_type: Optional[int]
    schema: Optional[str]
    schema_guessed: bool
    name: Optional[str]             # element inside Body (DIN/-2), root element otherwise
    error: Optional[str]
    offset: int                     # byte offset of the V2GTP header in its stream direction
    exi: bytes
    message: object                 # the codec's message object (for to_xml)
    note: Optional[str]             # what was accepted that a strict decode refuses (padding)

    def __init__(self, time, frame, stream, direction, src, sport, dst, dport, transport, payload_type,
                 schema, schema_guessed, name, content, error=None, offset=-1, exi=b"", message=None,
                 note=None):
        """`content` is the dict itself, or a _codec.Decoded whose dict is built when needed."""
        self.time = time
        self.frame = frame
        self.stream = stream
        self.direction = direction
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.transport = transport
        self.payload_type = payload_type
        self.schema = schema
        self.schema_guessed = schema_guessed
        self.name = name
        self._content = content
        self.error = error
        self.offset = offset
        self.exi = exi
        self.message = message
        self.note = note

    @property
    def content(self) -> Optional[dict]:
        c = self._content
        if c.__class__ is Decoded:
            c = self._content = cython.cast(Decoded, c).content
        return c

    @content.setter
    def content(self, value: Optional[dict]) -> None:
        self._content = value

    @property
    def payload_type_name(self) -> str:
        p = PAYLOAD_TYPES.get(self.payload_type) if self.payload_type is not None else None
        return p.name if p else ""

    def _astuple(self) -> tuple:
        return tuple(getattr(self, f) for f in _RECORD_FIELDS)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None                 # mutable and compared by value, like a dataclass

    def __repr__(self) -> str:
        return "MessageRecord(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in _RECORD_FIELDS
                                            if f not in ("exi", "message")) + ")"


_RECORD_FIELDS = ("time", "frame", "stream", "direction", "src", "sport", "dst", "dport", "transport",
                  "payload_type", "schema", "schema_guessed", "name", "content", "error", "offset",
                  "exi", "message", "note")


class TsharkMissing(RuntimeError):
    pass


@cython.cclass
class _Stream:
    __slots__ = ("id", "ep", "text", "halves", "framers", "kind", "evcc", "syn", "scanned",
                 "sap_seen", "offer", "schema", "guess", "closed", "first_ts", "key")

    def __init__(self, sid, src, sport, dst, dport, ts):
        self.id = sid
        self.ep = ((src, sport), (dst, dport))
        self.text = None
        self.halves = (Half(), Half())
        self.framers = None
        self.kind = _UNKNOWN
        self.evcc = None        # direction index (0: ep[0]->ep[1]) in which the EVCC sends
        self.syn = False
        self.scanned = 0
        self.sap_seen = [False, False]
        self.offer = {}         # SchemaID -> ProtocolNamespace from supportedAppProtocolReq
        self.schema = None      # decided by the SAP exchange
        self.guess = None
        self.closed = False
        self.first_ts = ts
        self.key = (src, sport, dst, dport)

    def endpoint_text(self, d):
        """((src, sport), (dst, dport)) as text for direction d."""
        if self.text is None:
            (a, p), (b, q) = self.ep
            fwd, back = (_net.addr_text(a), p), (_net.addr_text(b), q)
            self.text = ((fwd, back), (back, fwd))
        return self.text[d]


@cython.cclass
class CaptureReader:
    """Stateful reader; read() is the convenient front door.

    After iteration: .stats (counters), .tls_sessions (list of dicts), .keylog_lines.
    """

    def __init__(self, keylog: Optional[str] = None, *, decoder: Optional[Decoder] = None,
                 cache: bool = True, progress: Optional[Callable[[int, int], None]] = None,
                 tls: bool = True, homeplug: bool = True):
        self.keylog = keylog
        self.homeplug = homeplug                # HomePlug AV / SLAC frames as records too
        self.decoder = decoder or Decoder(cache=cache)
        self.progress = progress
        self.tls = tls
        self.streams = {}
        self.nstreams = 0
        self.secc_endpoints = set()             # (addr bytes, port) named by SDP responses
        self.keylog_lines = []
        self.tls_streams = []
        self.tls_sessions = []
        self.stats = {"frames": 0, "messages": 0, "decoded": 0, "errors": 0, "file_errors": 0,
                      "tcp_streams": 0, "v2g_streams": 0, "tls_streams": 0, "tls_decrypted": 0,
                      "homeplug": 0, "homeplug_errors": 0}
        self._ptype_schema = {}
        self._last_ts = 0.0

    # --- entry --------------------------------------------------------------------
    def read(self, source: Union[str, os.PathLike, BinaryIO]) -> Iterator[MessageRecord]:
        """Records of a capture file; "-" or a pipe is read as it arrives (each record is
        yielded as soon as the frame completing it has been read)."""
        if stream.is_stream(source):
            with stream.Spool(source) as spool:
                yield from self._count(self._plain(stream.iter_frames(spool), 0))
                if self.tls_streams:
                    yield from self._count(self._decrypt(spool.close_for_reading()))
            return
        with _open_capture(source) as (f, path, size):
            yield from self._count(self._plain(_pcap.iter_frames(f), size))
            if self.tls_streams:
                yield from self._count(self._decrypt(path))

    def read_frames(self, frames: Iterable, path=None) -> Iterator[MessageRecord]:
        """Records from (frame_no, time, linktype, bytes) tuples, e.g. a live interface;
        TLS streams are decrypted at the end from the pcap file `path` (or the path that
        calling `path` returns once the frames are exhausted); without one they are
        reported as not decrypted."""
        yield from self._count(self._plain(frames, 0))
        if self.tls_streams:
            yield from self._count(self._decrypt(path() if callable(path) else path))

    @cython.locals(r=MessageRecord)
    def _count(self, recs: Iterable[MessageRecord]) -> Iterator[MessageRecord]:
        st = self.stats
        for r in recs:
            if r.transport == "homeplug":         # counted apart from V2G messages
                st["homeplug"] += 1
                if r.error:
                    st["homeplug_errors"] += 1
                yield r
                continue
            if r.payload_type is not None:
                st["messages"] += 1
            if r.error:
                st["errors"] += 1
            elif r._content is not None:          # without building a lazy dict
                st["decoded"] += 1
            yield r

    # --- the plaintext pass -------------------------------------------------------
    @cython.locals(n=cython.Py_ssize_t, done=cython.Py_ssize_t, proto=cython.int, flags=cython.int,
                   seq=cython.longlong, ack=cython.longlong, d=cython.int, st=_Stream, half=Half, other=Half)
    def _plain(self, frames, size: int) -> Iterator[MessageRecord]:
        streams = self.streams
        progress = self.progress
        homeplug = self.homeplug
        done = 0
        n = 0
        ts = 0.0
        for item in frames:
            if item.__class__ is FrameError:
                self.stats["file_errors"] += 1
                yield MessageRecord(0.0, item.frame, None, None, "", 0, "", 0, "", None, None, False,
                                    None, None, f"capture file damaged at offset {item.offset}: "
                                    f"{item.message}", item.offset)
                continue
            n, ts, lt, data = item
            if progress is not None:
                done += len(data) + 16
                if not n & 0xFFF:
                    progress(done, size)
            p = parse(lt, data)
            if p is None:
                if homeplug:
                    rec = homeplug_record(ts, n, lt, data)
                    if rec is not None:
                        yield rec
                continue
            proto, src, dst, sport, dport, seq, ack, flags, payload = p
            if proto == 6:
                ent = streams.get((src, sport, dst, dport))
                if ent is None or (flags & _SYN and not flags & _ACK and ent[0].closed):
                    if ent is not None:             # port reuse: finish the old connection
                        self._last_ts = ts
                        yield from self._finish(ent[0], n)
                    ent = self._new_stream(src, sport, dst, dport, ts)
                st, d = ent
                if st.kind == _OTHER:
                    if flags & (_FIN | _RST):
                        st.closed = True
                    continue
                half = st.halves[d]
                if flags & _SYN:
                    half.syn(seq)
                    st.syn = True
                    if not flags & _ACK and st.evcc is None:
                        st.evcc = d             # the EVCC opens the connection
                    seq = (seq + 1) & 0xFFFFFFFF
                other = st.halves[1 - d]
                if other.ooo and flags & _ACK:      # rare: the peer acked data we never saw
                    pieces = other.acked(ack)
                    if pieces:
                        yield from self._pieces(st, 1 - d, pieces, ts, n)
                if payload:
                    pieces = half.accept(seq, payload)
                    if pieces:
                        recs = self._pieces(st, d, pieces, ts, n)
                        if recs:
                            yield from recs
                if flags & (_FIN | _RST):
                    st.closed = True
            elif payload[:2] == b"\x01\xfe" and len(payload) >= 8 and 0x9000 <= (payload[2] << 8 | payload[3]) <= 0x9003:
                yield self._sdp(ts, n, src, sport, dst, dport, payload)
            elif sport >= 49152 and payload.startswith(KEYLOG_LABELS):
                for line in payload.splitlines():
                    if line.startswith(KEYLOG_LABELS) and line not in self.keylog_lines:
                        self.keylog_lines.append(line)
        self.stats["frames"] = n
        self._last_ts = ts if n else 0.0
        if progress is not None:
            progress(size, size)
        # end of capture: release held segments and partial messages
        for st, d in list(streams.values()):
            if d == 0:
                yield from self._finish(st, n)

    @cython.locals(d=cython.int, half=Half)
    def _finish(self, st, frame):
        """Release held segments and report partial messages of a finished connection."""
        out = []
        if st.kind == _TLS or st.kind == _OTHER:
            return out
        for d in range(2):
            half = st.halves[d]
            pieces = half.finish()
            if pieces:
                out += self._pieces(st, d, pieces, self._last_ts, frame)
            if st.framers is not None and st.kind == _V2G:
                out += self._events(st, d, cython.cast(Framer, st.framers[d]).flush(), self._last_ts, frame)
        return out

    def _new_stream(self, src, sport, dst, dport, ts):
        st = _Stream(self.nstreams, src, sport, dst, dport, ts)
        self.nstreams += 1
        self.stats["tcp_streams"] += 1
        if (dst, dport) in self.secc_endpoints:
            st.evcc = 0
        elif (src, sport) in self.secc_endpoints:
            st.evcc = 1
        fwd = (st, 0)
        self.streams[(src, sport, dst, dport)] = fwd
        self.streams[(dst, dport, src, sport)] = (st, 1)
        return fwd

    @cython.locals(fr=Framer)
    def _pieces(self, st, d, pieces, ts, frame):
        """The records completed by in-order pieces of one direction (bytes, or int: a gap)."""
        out = []
        for piece in pieces:
            if st.kind == _UNKNOWN:
                if piece.__class__ is int:
                    continue
                if not self._classify(st, piece):
                    if st.kind == _OTHER:
                        return out
                    continue
            if st.kind == _TLS or st.kind == _OTHER:
                return out
            fr = st.framers[d]
            events = fr.gap(piece) if piece.__class__ is int else fr.feed(piece)
            if events:
                out += self._events(st, d, events, ts, frame)
            if st.kind == _UNKNOWN:                 # still hunting for a header (no SYN seen)
                st.scanned += 0 if piece.__class__ is int else len(piece)
                if st.scanned > SCAN_LIMIT:
                    st.kind = _OTHER
                    st.framers = None
        return out

    def _classify(self, st, data):
        """Decide what a TCP stream carries from its first data; True: run the framer."""
        # a header split over segments: the signature is enough, the framer checks the rest
        if (find_header(data[:8]) == 0 if len(data) >= 8 else b"\x01\xfe".startswith(data[:2])):
            st.kind = _V2G
            st.framers = (Framer(True), Framer(True))
            self.stats["v2g_streams"] += 1
            return True
        if len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03 and data[2] <= 0x04:
            st.kind = _TLS
            self.stats["tls_streams"] += 1
            self.tls_streams.append(st)
            return False
        if st.syn:                                 # a stream start that is neither: not V2G
            st.kind = _OTHER
            return False
        # picked up in the middle: search for a header signature for a while
        if st.framers is None:
            st.framers = (Framer(False), Framer(False))
        return True

    # --- messages -----------------------------------------------------------------
    @cython.locals(dec=Decoded)
    def _events(self, st, d, events, ts, frame, transport="tcp"):
        """A record for each framer event: a message (decoded) or a problem."""
        out = []
        for off, ptype, payload in events:
            if st.kind == _UNKNOWN:
                if ptype is None:
                    continue                        # noise before the first header of a pickup
                st.kind = _V2G
                self.stats["v2g_streams"] += 1
            if ptype is None:
                name = schema = dec = obj = None
                guessed = False
                err = payload
                payload = b""
            else:
                schema, guessed, dec, err = self._decode(st, d, ptype, payload)
                if dec is None:
                    name = obj = None
                else:
                    name, obj = dec.name, dec.message
            if st.evcc is None:
                st.evcc = (1 - d) if name and (name.endswith("Res") or name == "supportedAppProtocolRes") else d
            (src, sport), (dst, dport) = st.endpoint_text(d)
            out.append(MessageRecord(ts, frame, st.id, EVCC_TO_SECC if d == st.evcc else SECC_TO_EVCC,
                                     src, sport, dst, dport, transport, ptype, schema, guessed, name,
                                     dec, err, off, payload, obj, dec.note if dec is not None else None))
        return out

    @cython.locals(decoder=Decoder)
    def _decode(self, st, d, ptype, payload):
        """(schema, guessed, Decoded or None, error) for one V2GTP payload."""
        decoder = self.decoder
        try:
            schema = self._ptype_schema[ptype]
        except KeyError:
            schema = self._ptype_schema[ptype] = schema_for_payload_type(ptype)
        try:
            if schema is not None:                  # -20: the payload type names the schema
                return schema, False, decoder.decode(payload, schema), None
            if ptype != 0x8001:
                return None, False, None, f"payload type {ptype:#06x} not expected on a TCP stream"
            if not st.sap_seen[d]:                  # first message each way: SupportedAppProtocol
                st.sap_seen[d] = True
                try:
                    res = decoder.decode(payload, "sap")
                except ValueError:
                    res = None
                if res is not None and res.name in SAP_NAMES:
                    self._sap(st, res.name, res.content)
                    return "sap", False, res, None
            if st.schema is not None:
                return st.schema, False, decoder.decode(payload, st.schema), None
            return self._guess(st, payload)
        except CodecUnavailable as e:
            return schema or st.schema, False, None, str(e)
        except ValueError as e:
            return schema or st.schema, False, None, f"EXI decode failed: {e}"

    def _sap(self, st, name, content):
        body = content.get(name) or {}
        if name == "supportedAppProtocolReq":
            protos = body.get("AppProtocol") or []
            if isinstance(protos, dict):
                protos = [protos]
            st.offer = {p.get("SchemaID"): p.get("ProtocolNamespace") for p in protos}
        else:
            code = str(body.get("ResponseCode", ""))
            ns = st.offer.get(body.get("SchemaID"))
            if ns and not code.startswith("Failed"):
                st.schema = schema_for_protocol_namespace(ns)

    def _guess(self, st, payload):
        """No SupportedAppProtocol exchange seen: try the 0x8001 schemas, flag the result."""
        order = (st.guess,) + GUESS_SCHEMAS if st.guess else GUESS_SCHEMAS
        errors = []
        for schema in dict.fromkeys(order):
            try:
                res = self.decoder.decode(payload, schema)
            except ValueError as e:
                errors.append(f"{schema}: {e}")
                continue
            if res.root == "V2G_Message":
                st.guess = schema
                return schema, True, res, None
            errors.append(f"{schema}: root {res.name!r} is not V2G_Message")
        return None, True, None, "no SupportedAppProtocol exchange and no schema decodes it: " + \
            "; ".join(errors)

    def _sdp(self, ts, frame, src, sport, dst, dport, payload):
        ptype = payload[2] << 8 | payload[3]
        length = int.from_bytes(payload[4:8], "big")
        body = payload[8:8 + length]
        err = content = name = None
        try:
            name, content = parse_sdp(ptype, body)
            if name == "SECCDiscoveryRes":
                import socket
                fam = socket.AF_INET6 if ":" in content["SECCIPAddress"] else socket.AF_INET
                self.secc_endpoints.add((socket.inet_pton(fam, content["SECCIPAddress"]), content["SECCPort"]))
        except ValueError as e:
            err = f"SDP: {e}"
        direction = EVCC_TO_SECC if ptype in (0x9000, 0x9002) else SECC_TO_EVCC
        return MessageRecord(ts, frame, None, direction, _net.addr_text(src), sport, _net.addr_text(dst),
                             dport, "udp", ptype, None, False, name, content, err, 0, body)

    # --- TLS ----------------------------------------------------------------------
    def _decrypt(self, path: Optional[str]) -> Iterator[MessageRecord]:
        """Records of the TLS streams (path None: the input was not kept)."""
        from . import tls
        lines = list(self.keylog_lines)
        if self.keylog:
            with open(self.keylog, "rb") as kf:
                lines += [ln for ln in kf.read().splitlines() if ln.strip() and not ln.startswith(b"#")]
        by_key = {}
        for st in self.tls_streams:
            by_key[st.key] = (st, 0)
            by_key[(st.ep[1][0], st.ep[1][1], st.ep[0][0], st.ep[0][1])] = (st, 1)
            c = st.evcc or 0
            self.tls_sessions.append({"stream": st.id, "client": _net.endpoint_text(*st.ep[c]),
                                      "server": _net.endpoint_text(*st.ep[1 - c]),
                                      "decrypted": False, "bytes": 0})
        info = {s["stream"]: s for s in self.tls_sessions}
        if path is None:
            for st in self.tls_streams:
                yield self._tls_problem(st, "TLS stream not decrypted: no copy of the input was kept "
                                            f"(a stream keeps at most {stream.SPOOL_LIMIT >> 20} MiB)")
            return
        if not lines:
            for st in self.tls_streams:
                yield self._tls_problem(st, "TLS stream not decrypted: no key log (pass --keylog FILE, "
                                            "or capture the keys in-band as dsV2Gshark does)")
            return
        if shutil.which("tshark") is None:
            raise TsharkMissing("TLS decryption needs tshark: apt-get install tshark "
                                "(DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)")
        ports = sorted({p for st in self.tls_streams for _a, p in st.ep})
        for st in self.tls_streams:
            st.framers = (Framer(True), Framer(True))
            st.kind = _V2G
        for frame, ts, src, sport, dst, dport, data in tls.decrypted_chunks(path, lines, ports):
            ent = by_key.get((src, sport, dst, dport))
            if ent is None:
                continue
            st, d = ent
            s = info[st.id]
            s["decrypted"] = True
            s["bytes"] += len(data)
            yield from self._events(st, d, st.framers[d].feed(data), ts, frame, "tls")
        for st in self.tls_streams:
            if info[st.id]["decrypted"]:
                self.stats["tls_decrypted"] += 1
                for d in (0, 1):
                    yield from self._events(st, d, st.framers[d].flush(), None, 0, "tls")
            else:
                yield self._tls_problem(st, "TLS stream not decrypted: no matching key in the key log")

    def _tls_problem(self, st, msg):
        d = st.evcc or 0
        (src, sport), (dst, dport) = st.endpoint_text(d)
        return MessageRecord(st.first_ts, 0, st.id, EVCC_TO_SECC, src, sport, dst, dport, "tls",
                             None, None, False, None, None, msg)


def read(path, keylog: Optional[str] = None, **options) -> Iterator[MessageRecord]:
    """Yield a MessageRecord per V2GTP message (and per problem) in a pcap/pcapng file.

    `path` may be "-" (stdin) or a binary file object.  TLS streams are decrypted with
    tshark when keys are known (keylog file, or key-log lines sent in-band over UDP);
    their records follow the plaintext records of the file.  Options: cache (bool),
    progress(done_bytes, total_bytes), decoder (a _codec.Decoder).
    """
    return CaptureReader(keylog, **options).read(path)


class _open_capture:
    """Context manager giving (mappable file, path for tshark, size); spools stdin."""

    def __init__(self, source):
        self.source = source
        self.tmp = None
        self.f = None

    def __enter__(self):
        src = self.source
        if isinstance(src, (str, os.PathLike)) and str(src) != "-":
            self.f = open(src, "rb")
            path = os.fspath(src)
        else:
            stream = sys.stdin.buffer if str(src) == "-" else src
            fd, path = tempfile.mkstemp(suffix=".pcap", prefix="exi-capture-")
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out)
            self.tmp = path
            self.f = open(path, "rb")
        return self.f, path, os.fstat(self.f.fileno()).st_size

    def __exit__(self, *exc):
        self.f.close()
        if self.tmp:
            os.unlink(self.tmp)
        return False
