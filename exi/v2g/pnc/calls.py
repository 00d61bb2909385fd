"""The asynchronous seam between a sans-I/O session core and its :class:`~exi.v2g.backend.Backend`.

A core never awaits.  When it needs the operator's systems (authorize a contract, produce
a certificate installation response) it creates a :class:`BackendCall`, hands it out in its
events, and answers from what it knows now:

* AuthorizationReq while the call is pending: ``EVSEProcessing=Ongoing``, the EVCC asks
  again (that is what Ongoing is for);
* CertificateInstallationReq/UpdateReq has no Ongoing: the core holds its response until
  the driver reports the call finished (:meth:`BackendCall.run`, then the core's
  completion hook).

The driver (asyncio) runs ``await call.run(backend)``; tests and the in-memory pair can
use :meth:`BackendCall.run_now`.  A call that raises is *failed*, never *done*: its
consumer answers with a refusal (nothing fails open).
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional

__all__ = ["BackendCall"]


class BackendCall:
    """One request to the backend: ``start(backend)`` returns the awaitable to run."""

    def __init__(self, what: str, start: Callable[[Any], Awaitable[Any]]) -> None:
        self.what = what
        self._start = start
        self.state = "pending"                  # pending | done | failed
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def __repr__(self) -> str:
        return f"BackendCall({self.what!r}, {self.state})"

    @property
    def finished(self) -> bool:
        return self.state != "pending"

    async def run(self, backend) -> None:
        """Run the call once; its outcome lands in ``result`` or ``error``."""
        if self.finished:
            return
        try:
            self.result = await self._start(backend)
            self.state = "done"
        except Exception as e:                  # the consumer refuses on "failed"
            self.error = e
            self.state = "failed"

    def run_now(self, backend) -> None:
        """Run the call to completion outside any event loop (tests, tools)."""
        asyncio.run(self.run(backend))

    def fail(self, reason: str) -> None:
        """Give up on a call (its driver went away or timed out)."""
        if not self.finished:
            self.error = TimeoutError(reason)
            self.state = "failed"
