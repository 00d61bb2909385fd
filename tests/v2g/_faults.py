"""The SECC under faults: the two programs of tests/v2g/test_netns_faults.py and
benchmarks/bench_secc_faults.py, one per network namespace.

    python -m tests.v2g._faults secc --iface IF --pki DIR [--sequence-timeout S] ...
    python -m tests.v2g._faults load --iface IF --host H --tcp-port P --tls-port Q [--scale F]

``secc`` runs :func:`exi.v2g.session.drivers.serve_secc` (TCP, TLS and SDP), prints a
"ready" JSON line, and on stdin EOF a summary: connections accepted and still open,
faults counted per kind, log lines written, resident memory.  ``load`` runs 50 good
sessions (DIN DC, -2 DC and AC, a few over TLS) while it attacks the same SECC, and
prints one JSON line with what each attack saw.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import socket
import struct
import sys
import time

from exi.v2g import sdp, tls
from exi.v2g.session import EVCCConfig, SimulatedEV
from exi.v2g.session.drivers import run_evcc, serve_secc
from exi.v2g.session.secc import SECCConfig


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def rss_kib() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


# ---------------------------------------------------------------------------------------
# SECC side

async def run_secc(a) -> None:
    log_buffer = io.StringIO()
    handler = logging.StreamHandler(log_buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    ctx = tls.secc_context("iso2", f"{a.pki}/certs/seccChain.pem",
                           f"{a.pki}/private_keys/seccLeaf.key")
    service = await serve_secc(a.iface, SECCConfig(protocols=("iso2", "din"),
                                                   sequence_timeout=a.sequence_timeout),
                               tls_context=ctx, handshake_timeout=a.handshake_timeout)
    emit(event="ready", tcp_port=service.tcp_port, tls_port=service.tls_port, rss=rss_kib())
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    open_now = sum(len(s.connections) for s in service.servers)
    accepted = sum(s.accepted for s in service.servers)
    await service.close()
    lines = log_buffer.getvalue().splitlines()
    emit(event="closed", accepted=accepted, open=open_now, faults=service.faults.counts,
         sdp_answered=service.sdp.core.answered, sdp_discarded=service.sdp.core.discarded,
         log_lines=len(lines), warnings=[ln for ln in lines if ln.startswith("WARNING")][:400],
         tracebacks=sum("Traceback" in ln for ln in lines), rss=rss_kib())


# ---------------------------------------------------------------------------------------
# load side: good sessions and attacks

def header(payload_type: int, length: int) -> bytes:
    return struct.pack(">BBHI", 1, 0xFE, payload_type, length)


def sap_request() -> bytes:
    import exi
    from exi.messages import sap
    req = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="urn:iso:15118:2:2013:MsgDef", VersionNumberMajor=2,
        VersionNumberMinor=0, SchemaID=1, Priority=1)])
    return exi.encode(req)


def huge_evccid_setup() -> bytes:
    """A SessionSetupReq whose EVCCID has 60,000 bytes (the schema allows 6)."""
    import exi
    from exi.messages import iso2
    msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\0"),
                           Body=iso2.BodyType(SessionSetupReq=iso2.SessionSetupReqType(
                               EVCCID=b"\x42" * 60000)))
    return exi.encode(msg, validate=False)


class Attacks:
    def __init__(self, a):
        self.a = a
        self.host = a.host
        self.iface = a.iface
        self.scope = socket.if_nametoindex(a.iface)
        self.result: dict = {}

    async def connect(self, port: int, tries: int = 3):
        for i in range(tries):
            try:
                return await asyncio.open_connection(self.host, port, local_addr=None,
                                                     family=socket.AF_INET6)
            except OSError:
                if i == tries - 1:
                    raise
                await asyncio.sleep(0.2)

    async def until_closed(self, reader, timeout: float) -> float | None:
        """Seconds until the SECC closed (EOF or reset), None if still open after timeout."""
        t0 = time.monotonic()
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), timeout - (time.monotonic() - t0))
                if not data:
                    return time.monotonic() - t0
        except asyncio.TimeoutError:
            return None
        except (ConnectionError, OSError):
            return time.monotonic() - t0

    async def silent(self, n: int) -> None:
        async def one():
            r, w = await self.connect(self.a.tcp_port)
            try:                                # timed from its own connect
                return await self.until_closed(r, self.a.sequence_timeout + 10)
            finally:
                w.close()
        waits = await asyncio.gather(*(one() for _ in range(n)))
        self.result["silent"] = {"n": n, "closed": sum(w is not None for w in waits),
                                 "min_s": min(w or 1e9 for w in waits),
                                 "max_s": max(w or 1e9 for w in waits)}

    async def one_shot(self, name: str, n: int, data_for, *, then_close: bool = False,
                       port: int | None = None) -> None:
        closed = 0
        for i in range(n):
            r, w = await self.connect(port or self.a.tcp_port)
            w.write(data_for(i))
            await w.drain()
            if then_close:
                w.close()
                closed += 1
                continue
            if await self.until_closed(r, 5) is not None:
                closed += 1
            w.close()
        self.result[name] = {"n": n, "closed": closed}

    async def rapid(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        ok = 0
        for _ in range(n):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                await loop.sock_connect(s, (self.host.split("%")[0], self.a.tcp_port, 0, self.scope))
                ok += 1
            except OSError:
                pass
            finally:
                s.close()
        self.result["rapid"] = {"n": n, "connected": ok}

    async def sdp_flood(self, n: int) -> None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setblocking(False)
        dest = (self.host.split("%")[0], sdp.SDP_PORT, 0, self.scope)
        good = sdp.encode(sdp.SDPRequest(sdp.Security.NONE))
        rnd = random.Random(1)
        sent = 0
        for i in range(n):
            data = good if i % 2 else bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 40)))
            try:
                s.sendto(data, dest)
                sent += 1
            except BlockingIOError:
                await asyncio.sleep(0.001)
            if i % 200 == 0:
                await asyncio.sleep(0)
        s.close()
        await asyncio.sleep(0.2)
        resp = await sdp.discover(self.iface, sdp.SDPRequest(sdp.Security.NONE), max_requests=20)
        self.result["sdp_flood"] = {"n": n, "sent": sent, "discovered_port": resp.port}

    async def tls_stalled(self, n: int) -> None:
        # A ClientHello cut in the middle: the SECC waits for the rest until its
        # handshake timeout.
        hello = bytes.fromhex("16030100c8010000c40303") + bytes(32)
        conns = [await self.connect(self.a.tls_port) for _ in range(n)]
        for _, w in conns:
            w.write(hello)
        waits = await asyncio.gather(*(self.until_closed(r, self.a.handshake_timeout + 10)
                                       for r, _ in conns))
        self.result["tls_stalled"] = {"n": n, "closed": sum(w is not None for w in waits),
                                      "max_s": max(w or 1e9 for w in waits)}
        for _, w in conns:
            w.close()

    async def pipelined(self, n: int) -> None:
        frame = header(0x8001, len(self.sap)) + self.sap
        closed = 0
        for _ in range(n):
            r, w = await self.connect(self.a.tcp_port)
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            w.write(frame * 2000)          # never reads a response
            try:
                await asyncio.wait_for(w.drain(), 10)
            except (asyncio.TimeoutError, ConnectionError):
                pass
            # Closed by the SECC, seen as EOF or reset once we look.
            await asyncio.sleep(0.2)
            if await self.until_closed(r, 10) is not None:
                closed += 1
            w.close()
        self.result["pipelined"] = {"n": n, "closed": closed}

    async def beyond_limits(self, n: int) -> None:
        import exi
        setup = huge_evccid_setup()
        codes = []
        for _ in range(n):
            r, w = await self.connect(self.a.tcp_port)
            w.write(header(0x8001, len(self.sap)) + self.sap)
            h = await asyncio.wait_for(r.readexactly(8), 5)
            await r.readexactly(struct.unpack(">I", h[4:])[0])
            w.write(header(0x8001, len(setup)) + setup)
            try:
                h = await asyncio.wait_for(r.readexactly(8), 5)
                res = exi.decode(await r.readexactly(struct.unpack(">I", h[4:])[0]), "iso2")
                codes.append(str(getattr(res.Body.SessionSetupRes.ResponseCode, "value",
                                         res.Body.SessionSetupRes.ResponseCode)))
            except (asyncio.IncompleteReadError, ConnectionError):
                codes.append("closed")
            w.close()
        self.result["beyond_limits"] = {"n": n, "codes": sorted(set(codes))}


async def good_sessions(a, n: int) -> list:
    ctx = tls.evcc_context("iso2", f"{a.pki}/certs/v2gRootCA.pem")
    kinds = [("din", "dc"), ("iso2", "dc"), ("iso2", "ac")]

    async def one(i: int):
        await asyncio.sleep(i * 0.02)
        proto, mode = kinds[i % 3]
        secure = i % 10 == 9
        if secure and proto == "din":       # DIN SPEC 70121 has no TLS: the SECC refuses it there
            proto = "iso2"
        cfg = EVCCConfig(protocols=(proto,), mode=mode, loop_interval=0.1,
                         max_charge_loops=a.loops,
                         msg_timeout=(lambda schema, req: a.msg_timeout) if a.msg_timeout else None)
        return await run_evcc(a.iface, cfg, ev=SimulatedEV(), host=a.host,
                              port=a.tls_port if secure else a.tcp_port,
                              ssl=ctx if secure else None)
    return await asyncio.gather(*(one(i) for i in range(n)))


async def run_load(a) -> None:
    logging.basicConfig(level=logging.ERROR)
    at = Attacks(a)
    at.sap = sap_request()
    s = a.scale
    t0 = time.monotonic()
    results, *_ = await asyncio.gather(
        good_sessions(a, 50),
        at.silent(200),
        at.one_shot("garbage", max(1, int(50 * s)),
                    lambda i: random.Random(i).randbytes(64 + i)),
        at.one_shot("oversize_4gb", max(1, int(20 * s)), lambda i: header(0x8001, 0xFFFFFFFF)),
        # frames of an unknown payload type: each is to be discarded, 2,000 in one burst
        at.one_shot("discard_flood", max(1, int(5 * s)), lambda i: header(0x1234, 0) * 2000),
        at.one_shot("half_frame", max(1, int(20 * s)),
                    lambda i: (header(0x8001, len(at.sap)) + at.sap)[:8 + len(at.sap) // 2],
                    then_close=True),
        at.rapid(int(5000 * s)),
        at.sdp_flood(int(5000 * s)),
        at.tls_stalled(max(1, int(10 * s))),
        at.pipelined(max(1, int(5 * s))),
        at.beyond_limits(max(1, int(5 * s))),
    )
    failed = [r.reason for r in results if not r.ok]
    emit(good={"n": len(results), "ok": len(results) - len(failed), "reasons": failed[:5]},
         elapsed=time.monotonic() - t0, **at.result)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="tests.v2g._faults")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("secc", "load"):
        q = sub.add_parser(name)
        q.add_argument("--iface", required=True)
        q.add_argument("--pki", required=True)
        q.add_argument("--sequence-timeout", type=float, default=60.0)
        q.add_argument("--handshake-timeout", type=float, default=10.0)
    q.add_argument("--host", required=True)
    q.add_argument("--tcp-port", type=int, required=True)
    q.add_argument("--tls-port", type=int, required=True)
    q.add_argument("--scale", type=float, default=1.0)
    q.add_argument("--loops", type=int, default=10)
    q.add_argument("--msg-timeout", type=float, default=None,
                   help="EVCC message timeout for every request (default: the standard's)")
    a = p.parse_args(argv)
    asyncio.run(run_secc(a) if a.cmd == "secc" else run_load(a))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
