"""Launch the iso15118 peer's SECC and EVCC programs (from the peer venv) for session interop.

Each program runs in its own working directory holding a generated ``.env`` (and, for the
EVCC, its config JSON), optionally inside a network namespace (``ip netns exec NS``), with
stdout+stderr captured to ``<workdir>/<name>.log`` (its logging goes to stdout). ``stop()``
kills the whole process group: the program and the JVM that py4j started for its codec.

Settings are ALSO passed as environment variables: the peer reads ``.env`` from its cwd *and
every parent directory* (environs recurses upward) and never overrides variables already set,
so the environment is the one source that cannot be shadowed by a stray ``.env`` higher up.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Optional, Pattern, Sequence, Union

from .peer import ensure_peer_venv, venv_python

__all__ = [
    "PeerProgram", "secc_settings", "evcc_config", "write_env", "start_secc", "start_evcc",
    "SESSION_MARKERS", "SESSION_JAVA_OPTS",
]

# Log lines (regexes) that mark a DIN SPEC 70121 EIM session, as iso15118 0.31.2 writes them
# at LOG_LEVEL=INFO (seen in real peer-vs-peer runs).  Per message the sender logs
# "Sent <Name>" and the receiver "<Name> received"; state changes log "Entered state <State>".
SESSION_MARKERS = {
    "secc_ready": r"UDP server started at address FF02::1%\S+ and port 15118",     # SECC
    "evcc_sdp": r"Sending SDPRequest: \[Security: NO_TLS, Protocol: TCP\]",         # EVCC
    "secc_sdp": r"Sending SDPResponse: \[ IP address: (?P<ip>fe80::[0-9a-f:]+), Port: (?P<port>\d+)",
    "tcp": r"TCP client connected",                                                # both
    "sap": r"Chosen protocol: (?P<protocol>\w+)",                                   # SECC
    "current_demand": r"CurrentDemandRes received",                                # EVCC
    "session_stop": r"SessionStopRes received",                                    # EVCC
    "stopped_ok": r"Reason: Communication session stopped successfully",           # both
    # The end of a failed session: e.g. "Reason: TimeoutError occurred. Waited for
    # Timeouts.CURRENT_DEMAND_REQ s ..." (EVCC), "Reason: TCP peer closed connection" (SECC).
    "session_end": r"Reason: (?P<reason>.*)",
    "secc_session_end": r"Session ended in (?P<state>\w+) \((?P<reason>.*)\)",       # SECC, failures
}

# DIN/-2 give the EV 250 ms for a CurrentDemandRes. Two peer JVMs warming up with the C2 JIT
# on a 2-core machine blew that budget in 3 of 6 runs; C1-only + serial GC passed 5 of 5
# (each call is ~20 ms instead of ~14 ms warm, but without the compile-thread spikes).
SESSION_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def secc_settings(iface: str, protocols: Sequence[str] = ("DIN_SPEC_70121",), *,
                  auth_modes: Sequence[str] = ("EIM",), enforce_tls: bool = False,
                  free_charging: bool = True, log_level: str = "INFO",
                  **extra: Union[str, bool, int]) -> dict[str, str]:
    """The SECC's settings (PEERS.md keys). Extra keys pass through, e.g. PKI_PATH=..."""
    env = {
        "NETWORK_INTERFACE": iface,
        "PROTOCOLS": ",".join(protocols),            # list order = SAP priority
        "AUTH_MODES": ",".join(auth_modes),
        "SECC_ENFORCE_TLS": str(enforce_tls),
        "FREE_CHARGING_SERVICE": str(free_charging),
        "ALLOW_CERT_INSTALL_SERVICE": "False",
        "USE_CPO_BACKEND": "False",
        "ENABLE_TLS_1_3": "False",
        "LOG_LEVEL": log_level,
        "MESSAGE_LOG_JSON": "True",                  # each message as JSON in the log
        "MESSAGE_LOG_EXI": "True",                   # ... and as EXI hex
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def evcc_config(protocols: Sequence[str] = ("DIN_SPEC_70121",), *,
                energy_transfer_mode: str = "DC_extended", energy_services: Sequence[str] = ("DC",),
                use_tls: bool = False, charge_loop_cycle: int = 10, sdp_retry_cycles: int = 1,
                **extra) -> dict:
    """EVCC config JSON, shaped like the package's shared/examples/evcc/*.json.

    ``useTls`` is always written: the peer defaults it to TRUE when omitted, and an invalid
    file silently falls back to all defaults (check ``PeerProgram.evcc_config_loaded``)."""
    cfg = {
        "supportedProtocols": list(protocols),
        "supportedEnergyServices": list(energy_services),   # used by -20 only
        "energyTransferMode": energy_transfer_mode,
        "isCertInstallNeeded": False,
        "useTls": bool(use_tls),
        "chargeLoopCycle": charge_loop_cycle,
        "sdpRetryCycles": sdp_retry_cycles,
    }
    cfg.update(extra)
    return cfg


def write_env(workdir: Path, settings: Mapping[str, str]) -> Path:
    path = Path(workdir) / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


class PeerProgram:
    """A running SECC or EVCC of the peer."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, env: Mapping[str, str]):
        self.name = name
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"{name}.log"
        self.cmd = cmd
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        # New session = new process group: stop() reaches the JVM child too.
        self.proc = subprocess.Popen(cmd, cwd=str(self.workdir), env={**os.environ, **env},
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: Union[str, Pattern[str]], timeout: float) -> re.Match:
        """Poll the log until ``pattern`` appears; TimeoutError carries the log tail."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if time.monotonic() > deadline or not self.running():
                state = "still running" if self.running() else f"exited with {self.proc.returncode}"
                tail = "\n".join(self.log().splitlines()[-25:])
                raise TimeoutError(f"{self.name}: /{rx.pattern}/ not in its log after "
                                   f"{timeout:.0f} s ({state}); {self.log_path} tail:\n{tail}")
            time.sleep(0.1)

    def evcc_config_loaded(self) -> bool:
        """The EVCC logs its settings only when the config file parsed (else: defaults)."""
        return "EVCC Settings" in self.log()

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        """SIGTERM the process group, SIGKILL it if it lingers; returns the exit code."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:   # stragglers of the group (a JVM that outlived its parent)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "PeerProgram":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _base_env() -> dict[str, str]:
    # -u/PYTHONUNBUFFERED: logs reach the file as they happen (wait_for polls it).
    return {"PYTHONUNBUFFERED": "1", "JAVA_TOOL_OPTIONS": SESSION_JAVA_OPTS}


def _prefix(netns: Optional[str]) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def start_secc(workdir: Path, iface: str, *, netns: Optional[str] = None,
               protocols: Sequence[str] = ("DIN_SPEC_70121",), venv: Optional[Path] = None,
               extra_env: Optional[Mapping[str, str]] = None, **settings) -> PeerProgram:
    """Start ``python -m iso15118.secc.main`` in ``workdir`` (created if needed)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    py = venv_python(ensure_peer_venv(venv))
    env = secc_settings(iface, protocols, **settings)
    write_env(workdir, env)
    return PeerProgram("secc", [*_prefix(netns), str(py), "-u", "-m", "iso15118.secc.main"],
                       workdir, {**env, **_base_env(), **(extra_env or {})})


def start_evcc(workdir: Path, iface: str, *, netns: Optional[str] = None,
               config: Optional[dict] = None, venv: Optional[Path] = None,
               log_level: str = "INFO", extra_env: Optional[Mapping[str, str]] = None) -> PeerProgram:
    """Start ``python -m iso15118.evcc.main CONFIG.json`` in ``workdir``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    py = venv_python(ensure_peer_venv(venv))
    cfg_path = workdir / "evcc_config.json"
    cfg_path.write_text(json.dumps(config if config is not None else evcc_config(), indent=2))
    env = {"NETWORK_INTERFACE": iface, "EVCC_CONFIG_PATH": str(cfg_path), "LOG_LEVEL": log_level,
           "MESSAGE_LOG_JSON": "True", "MESSAGE_LOG_EXI": "True"}
    write_env(workdir, env)
    return PeerProgram("evcc", [*_prefix(netns), str(py), "-u", "-m", "iso15118.evcc.main", str(cfg_path)],
                       workdir, {**env, **_base_env(), **(extra_env or {})})
