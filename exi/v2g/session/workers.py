"""Serving one SECC from several processes: ``exi15118 secc --workers N``.

One process holds a few thousand requests per second (measured in
benchmarks/bench_secc_capacity.py; the session cores' Python per message is what limits
it).  With ``--workers N`` the first process binds the TCP (and TLS) port with
SO_REUSEPORT, answers SDP alone (one answer per request, naming that port), and starts
N-1 copies of itself that listen on the same ports; the kernel spreads the EVs'
connections over the processes, one event loop per core.

Limits: paused sessions (-2 SessionStop Pause) live in the process that paused them; a
car that resumes and lands on another worker gets a new session
(OK_NewSessionEstablished), not OK_OldSessionJoined.  Performance statistics are summed
over the workers when they stop.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Optional

__all__ = ["WorkerPool", "serve_options"]


def serve_options(args) -> dict:
    """serve_secc() keyword arguments of this process (the first one or a worker)."""
    worker = getattr(args, "worker", False)
    if getattr(args, "workers", 1) <= 1 and not worker:
        return {}
    return {"reuse_port": True, "tls_port": getattr(args, "tls_port", None),
            "sdp_enabled": not worker}


class WorkerPool:
    """The N-1 worker processes of the first SECC process."""

    def __init__(self, procs: list[subprocess.Popen]):
        self.procs = procs

    @classmethod
    def start(cls, args, argv: list[str], tcp_port: Optional[int],
              tls_port: Optional[int]) -> Optional["WorkerPool"]:
        if getattr(args, "workers", 1) <= 1 or getattr(args, "worker", False):
            return None
        base = [a for a in argv if not a.startswith("--workers")]
        if "--workers" in argv:                  # "--workers N" as two words
            i = argv.index("--workers")
            base = argv[:i] + argv[i + 2:]
        extra = ["--worker"]
        if tcp_port is not None:
            extra += ["--port", str(tcp_port)]
        if tls_port is not None:
            extra += ["--tls-port", str(tls_port)]
        procs = [subprocess.Popen([sys.executable, "-m", "exi", *base, *extra],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
                 for _ in range(args.workers - 1)]
        return cls(procs)

    def stop(self, timeout: float = 20.0) -> list[dict]:
        """Stop the workers; their final statistics lines."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        stats = []
        for p in self.procs:
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            if lines:
                stats.append(json.loads(lines[-1]))
        return stats
