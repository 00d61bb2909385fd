"""Regenerate tests/capture/data/tls_v2g.pcap + tls_v2g.keylog (run as root; needs tcpdump).

Two TLS connections over IPv6 loopback carrying real V2GTP/EXI payloads from
exi_samples.json: one TLS 1.2 (ECDHE, key log CLIENT_RANDOM line) and one TLS 1.3
(key log *_TRAFFIC_SECRET lines).  Python's ssl writes the NSS key log
(keylog_filename); tcpdump captures lo.  Certificates: a throwaway self-signed key.

    python tests/capture/make_tls_capture.py
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from exi.capture.synth import v2gtp  # noqa: E402


def selfsigned(tmp):
    key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=secc"],
                   check=True, capture_output=True)
    return key, crt


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def recv_message(s):
    hdr = recv_exact(s, 8)
    return recv_exact(s, int.from_bytes(hdr[4:8], "big"))


def exchange(port, version, msgs, keylog, key, crt):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    sctx.minimum_version = sctx.maximum_version = version
    srv = socket.socket(socket.AF_INET6)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::1", port))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with sctx.wrap_socket(conn, server_side=True) as s:
            for m in msgs:
                if not m["message"].endswith("Res"):
                    continue
                recv_message(s)
                s.sendall(v2gtp(m["payload_type"], bytes.fromhex(m["exi_hex"])))
    t = threading.Thread(target=serve)
    t.start()
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cctx.minimum_version = cctx.maximum_version = version
    cctx.keylog_filename = keylog
    with cctx.wrap_socket(socket.create_connection(("::1", port))) as c:
        for m in msgs:
            if m["message"].endswith("Req"):
                c.sendall(v2gtp(m["payload_type"], bytes.fromhex(m["exi_hex"])))
            else:
                recv_message(c)
    t.join()
    srv.close()


def main():
    samples = json.load(open(os.path.join(DATA, "exi_samples.json")))
    pcap, keylog = os.path.join(DATA, "tls_v2g.pcap"), os.path.join(DATA, "tls_v2g.keylog")
    if os.path.exists(keylog):
        os.unlink(keylog)
    with tempfile.TemporaryDirectory() as tmp:
        key, crt = selfsigned(tmp)
        dump = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", pcap, "ip6 and tcp and (port 61851 or port 61852)"],
                                stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        exchange(61851, ssl.TLSVersion.TLSv1_2, samples["sessions"]["din"], keylog, key, crt)
        exchange(61852, ssl.TLSVersion.TLSv1_3, samples["sessions"]["iso2"], keylog, key, crt)
        time.sleep(1.0)
        dump.terminate()
        dump.wait()
    print(pcap, keylog)


if __name__ == "__main__":
    main()
