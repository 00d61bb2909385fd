"""The independent peer: the PyPI package ``iso15118`` (its EXIficient Java codec via py4j).

It pins pydantic 1.10.21 and cryptography 44.0.0, so it lives in its own virtualenv and
we talk to it across a process boundary (``josev_bridge.py``), never by importing it.

This module is self-contained (stdlib only, no relative imports) so that
``benchmarks/peer_josev.py`` can load it by path.
"""
from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

__all__ = [
    "PEER_REQUIREMENTS", "PeerUnavailable", "BridgeError", "JosevCodec",
    "repo_root", "peer_venv_path", "venv_python", "ensure_java", "ensure_peer_venv",
]

# aiofile: its EVCC imports it but the package metadata forgets it (PEERS.md).
PEER_REQUIREMENTS = ("iso15118==0.31.2", "aiofile")
PEER_VERSION = "0.31.2"
_MARKER = ".exi15118-peer-ok"          # written last: its presence means "install verified"
_BRIDGE = Path(__file__).with_name("josev_bridge.py")


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine; the message says what to install."""


class BridgeError(RuntimeError):
    """The peer's codec refused a request (its error text is the message)."""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def peer_venv_path() -> Path:
    env = os.environ.get("EXI15118_PEER_VENV")
    return Path(env).expanduser().resolve() if env else repo_root() / ".peer-venv"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_java() -> str:
    """Path of a working ``java``; the peer's codec is a JAR started through py4j."""
    java = shutil.which("java")
    hint = ("the iso15118 peer needs a Java runtime (17) on PATH: "
            "apt-get install openjdk-17-jre-headless")
    if not java:
        raise PeerUnavailable(f"java not found on PATH; {hint}")
    try:
        subprocess.run([java, "-version"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise PeerUnavailable(f"`java -version` failed ({e}); {hint}") from None
    return java


def _run(cmd: list, what: str, timeout: float) -> None:
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"{what} timed out after {timeout:.0f} s: {' '.join(map(str, cmd))}") from None
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
        raise PeerUnavailable(
            f"{what} failed (exit {p.returncode}). The interop tests need network access to PyPI "
            f"(or a ready venv at $EXI15118_PEER_VENV) and `python3-venv` "
            f"(apt-get install python3-venv).\n$ {' '.join(map(str, cmd))}\n{tail}")


def _verify(py: Path) -> str:
    """Import the peer inside its venv; returns its version or raises PeerUnavailable."""
    code = ("import importlib.metadata as m, iso15118, aiofile, py4j, pathlib;"
            "from iso15118.shared.settings import JAR_FILE_PATH;"
            "assert pathlib.Path(JAR_FILE_PATH).is_file(), JAR_FILE_PATH;"
            "print(m.version('iso15118'))")
    p = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise PeerUnavailable(f"importing iso15118 in the peer venv failed:\n{p.stderr.strip()[-2000:]}")
    version = p.stdout.strip()
    if version != PEER_VERSION:
        raise PeerUnavailable(f"peer venv has iso15118 {version}, expected {PEER_VERSION}")
    return version


def ensure_peer_venv(venv: Optional[Path] = None) -> Path:
    """Create (once) and verify the peer's virtualenv; return its path.

    Idempotent and safe under pytest-xdist: an exclusive flock on ``<venv>.lock`` serialises
    workers, and the marker file is written only after the import check passed, so a half-built
    venv (interrupted run) is rebuilt rather than trusted.
    """
    ensure_java()
    venv = Path(venv) if venv is not None else peer_venv_path()
    venv.parent.mkdir(parents=True, exist_ok=True)
    spec = " ".join(PEER_REQUIREMENTS)
    marker = venv / _MARKER
    py = venv_python(venv)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.is_file() and marker.read_text() == spec and py.exists():
                return venv
            _run([sys.executable, "-m", "venv", "--clear", venv], "creating the peer venv", 300)
            _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", *PEER_REQUIREMENTS],
                 "pip install " + spec, 900)
            _verify(py)
            marker.write_text(spec)
            return venv
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_EOF = object()


class JosevCodec:
    """Client of ``josev_bridge.py`` running in the peer venv (one JVM per instance).

    ``encode(json_text_or_dict, namespace) -> bytes``, ``decode(data, namespace) -> dict``.
    """

    def __init__(self, venv: Optional[Path] = None, *, startup_timeout: float = 120.0,
                 call_timeout: float = 60.0, stderr_path: Optional[Path] = None):
        venv = ensure_peer_venv(venv)
        self.call_timeout = call_timeout
        # The bridge's stderr (its logging, JVM noise) goes to a file, not a pipe nobody
        # drains: a full pipe would block the bridge. One file per bridge (xdist workers,
        # tests + benchmarks in one run); removed on a clean close, kept after a failure.
        if stderr_path is None:
            (venv / "logs").mkdir(exist_ok=True)
            self._stderr = tempfile.NamedTemporaryFile(
                "w", prefix="bridge-", suffix=".log", dir=venv / "logs", delete=False)
            self._remove_stderr = True
        else:
            self._stderr = open(stderr_path, "w")
            self._remove_stderr = False
        self.stderr_path = Path(self._stderr.name)
        self._proc = subprocess.Popen(
            [str(venv_python(venv)), "-u", str(_BRIDGE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, encoding="utf-8", bufsize=1, cwd=str(venv),  # cwd: no stray .env read
            start_new_session=True)
        # A reader thread lets every call have a timeout (a hung JVM must not hang pytest).
        self._lines: "queue.Queue[Any]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self._lock = threading.Lock()
        t0 = time.perf_counter()
        hello = self._read(startup_timeout)        # the JVM start (~1 s) happens before this line
        self.startup_s = time.perf_counter() - t0
        if not hello.get("ok"):
            self.close()
            raise PeerUnavailable(f"peer bridge failed to start: {hello.get('error')}")
        self.version = hello.get("version", "")

    def _pump(self) -> None:
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(_EOF)

    def _stderr_tail(self) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _read(self, timeout: float) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise PeerUnavailable(f"peer bridge did not answer within {timeout:.0f} s; "
                                  f"stderr tail:\n{self._stderr_tail()}") from None
        if line is _EOF:
            raise PeerUnavailable(f"peer bridge exited (code {self._proc.poll()}); "
                                  f"stderr tail:\n{self._stderr_tail()}")
        try:
            return json.loads(line)
        except ValueError:
            raise PeerUnavailable(f"peer bridge wrote a non-JSON line: {line!r}") from None

    def request(self, req: dict, timeout: Optional[float] = None) -> dict:
        """Send one request; return the reply, raising BridgeError when ok is false."""
        with self._lock:
            if self._proc.poll() is not None:
                raise PeerUnavailable(f"peer bridge is not running (code {self._proc.returncode}); "
                                      f"stderr tail:\n{self._stderr_tail()}")
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            reply = self._read(timeout or self.call_timeout)
        if not reply.get("ok"):
            raise BridgeError(reply.get("error", "unknown error"))
        return reply

    def encode(self, message: Union[str, dict], namespace: str) -> bytes:
        text = message if isinstance(message, str) else json.dumps(message)
        return bytes.fromhex(self.request({"op": "encode", "namespace": namespace, "json": text})["hex"])

    def decode_text(self, data: bytes, namespace: str) -> str:
        """The peer's JSON text as it wrote it (key order kept)."""
        return self.request({"op": "decode", "namespace": namespace, "hex": bytes(data).hex()})["json"]

    def decode(self, data: bytes, namespace: str) -> dict:
        return json.loads(self.decode_text(data, namespace))

    def encode_xml(self, xml_texts: list, xsd: Union[str, Path], *, fragment: bool = False) -> list:
        """XML -> EXI by EXIficient (in the package's JAR) with the V2G profile: bytes, or
        the error text (str) for a document it refused, per document, in one round trip."""
        reply = self.request({"op": "encode_xml", "xsd": str(xsd), "fragment": fragment,
                              "xml": list(xml_texts)}, timeout=self.call_timeout + len(xml_texts))
        return [bytes.fromhex(h) if isinstance(h, str) else h["error"] for h in reply["hex"]]

    def time_in_jvm(self, op: str, namespace: str, n: int, *, message: Union[str, dict, None] = None,
                    data: Optional[bytes] = None) -> dict:
        """Run ``op`` ("encode"/"decode") n times inside the bridge process and return its
        timing summary (mean_s, median_s, min_s, n): py4j + JVM cost without our pipe."""
        req: dict = {"op": "time", "what": op, "namespace": namespace, "n": n}
        if op == "encode":
            req["json"] = message if isinstance(message, str) else json.dumps(message)
        else:
            req["hex"] = bytes(data).hex()
        return self.request(req, timeout=self.call_timeout + n * 1.0)

    def close(self) -> None:
        clean = self._proc.poll() is None            # still alive = nothing went wrong
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()              # EOF: the bridge exits and its JVM with it
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)  # own session: takes the JVM down too
                except ProcessLookupError:
                    pass
                self._proc.wait(timeout=10)
                clean = False
        self._stderr.close()
        if clean and self._proc.returncode == 0 and self._remove_stderr:
            self.stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> "JosevCodec":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
