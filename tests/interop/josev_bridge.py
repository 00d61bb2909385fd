"""Serve the iso15118 package's EXI codec (EXIficient via py4j) over JSON lines.

Runs INSIDE the peer venv (see peer.py), never in ours: stdlib + iso15118 only.

One request per stdin line, one reply per stdout line:
  {"op": "version"}                                   -> {"ok": true, "version": "..."}
  {"op": "encode", "namespace": NS, "json": TEXT}     -> {"ok": true, "hex": "..."}
  {"op": "decode", "namespace": NS, "hex": HEX}       -> {"ok": true, "json": TEXT}
  {"op": "time", "what": "encode"|"decode", "namespace": NS, "json"|"hex": ..., "n": N}
                                                      -> {"ok": true, "n", "mean_s", "median_s", "min_s"}
  {"op": "encode_xml", "xsd": PATH, "fragment": BOOL, "xml": [TEXT, ...]}
                                                      -> {"ok": true, "hex": [HEX or {"error": ...}]}
      XML -> EXI by the EXIficient library inside the package's JAR, configured as the V2G
      profile the reference vectors were made with (schema-informed from PATH, bit-packed,
      no header options, default fidelity options, no value string table; built-in
      grammars of undeclared elements learn, EXIficient's default and ours).
  failures                                            -> {"ok": false, "error": "..."}
Before reading requests it starts the JVM and writes a hello line
({"ok": true, "ready": true, "version": ...}), so the client can wait for the JVM start
(~1 s) once, with its own timeout, instead of the first request paying for it.
"""
import json
import os
import statistics
import sys
import time

# The package's logging.conf attaches a StreamHandler to sys.stdout at import time, and the
# JVM or py4j may write to fd 1 too: keep a private copy of the real stdout for replies and
# point fd 1 / sys.stdout at stderr before importing anything from the peer.
_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def _reply(obj):
    _out.write(json.dumps(obj) + "\n")
    _out.flush()


def _start_codec():
    import logging
    from iso15118.shared.settings import SettingKey, load_shared_settings, shared_settings
    load_shared_settings()
    shared_settings[SettingKey.MESSAGE_LOG_JSON] = False   # it would log every message
    shared_settings[SettingKey.MESSAGE_LOG_EXI] = False
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    for h in logging.getLogger().handlers:                 # belt and braces: never stdout
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setStream(sys.stderr)
    return ExificientEXICodec()


def _encode(codec, req):
    return bytes(codec.encode(req["json"], req["namespace"]))   # py4j gives a bytearray


def _decode(codec, req, data=None):
    return codec.decode(data if data is not None else bytes.fromhex(req["hex"]), req["namespace"])


def _time(codec, req):
    n = int(req.get("n", 100))
    if n < 1:
        raise ValueError("n must be >= 1")
    if req["what"] == "encode":
        def call():
            return codec.encode(req["json"], req["namespace"])
    elif req["what"] == "decode":
        data = bytes.fromhex(req["hex"])

        def call():
            return codec.decode(data, req["namespace"])
    else:
        raise ValueError(f"unknown 'what' {req['what']!r} (encode or decode)")
    call()                                   # warm-up: the first call JITs / loads grammars
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
        if out is None:
            raise RuntimeError("codec returned None")
    return {"n": n, "mean_s": statistics.fmean(times), "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times)}


_factories = {}


def _exi_factory(codec, xsd, fragment):
    key = (xsd, bool(fragment))
    f = _factories.get(key)
    if f is None:
        jvm = codec.gateway.jvm
        exi = jvm.com.siemens.ct.exi
        f = exi.core.helpers.DefaultEXIFactory.newInstance()
        f.setGrammars(exi.grammars.GrammarFactory.newInstance().createGrammars(xsd))
        f.setCodingMode(exi.core.CodingMode.BIT_PACKED)
        f.setFidelityOptions(exi.core.FidelityOptions.createDefault())
        f.setValuePartitionCapacity(0)
        f.setValueMaxLength(0)       # built-in element grammars learn (the default), as ours do
        f.setFragment(bool(fragment))
        _factories[key] = f
    return f


def _encode_xml(codec, req):
    jvm = codec.gateway.jvm
    f = _exi_factory(codec, req["xsd"], req.get("fragment"))
    out = []
    for xml in req["xml"]:
        try:
            res = jvm.com.siemens.ct.exi.main.api.sax.EXIResult(f)
            buf = jvm.java.io.ByteArrayOutputStream()
            res.setOutputStream(buf)
            reader = jvm.org.xml.sax.helpers.XMLReaderFactory.createXMLReader()
            reader.setContentHandler(res.getHandler())
            reader.parse(jvm.org.xml.sax.InputSource(jvm.java.io.StringReader(xml)))
            out.append(bytes(buf.toByteArray()).hex())
        except Exception as e:   # noqa: BLE001 - one document's failure is data
            out.append({"error": f"{type(e).__name__}: {str(e).strip()[:500]}"})
    return out


def _handle(codec, req):
    op = req.get("op")
    if op == "encode_xml":
        return {"hex": _encode_xml(codec, req)}
    if op == "encode":
        return {"hex": _encode(codec, req).hex()}
    if op == "decode":
        return {"json": _decode(codec, req)}
    if op == "version":
        return {"version": str(codec.get_version())}
    if op == "time":
        return _time(codec, req)
    raise ValueError(f"unknown op {op!r}")


def main():
    try:
        codec = _start_codec()
        version = str(codec.get_version())
    except Exception as e:   # noqa: BLE001 - report any start-up failure to the client
        _reply({"ok": False, "error": f"starting the peer codec failed: {type(e).__name__}: {e}"})
        return 1
    _reply({"ok": True, "ready": True, "version": version})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            reply = {"ok": True, **_handle(codec, req)}
        except Exception as e:   # noqa: BLE001 - the peer's errors are data for the caller
            msg = str(e).strip() or type(e).__name__
            reply = {"ok": False, "error": f"{type(e).__name__}: {msg}"}
        _reply(reply)
    try:
        codec.gateway.shutdown()
    except Exception:   # noqa: BLE001 - JVM already gone; die_on_exit covers the rest
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
