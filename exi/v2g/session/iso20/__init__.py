"""ISO 15118-20 sessions (EIM): tables, SECC and EVCC handlers, service parameter sets.

The cores in :mod:`exi.v2g.session.secc` / :mod:`.evcc` negotiate SupportedAppProtocol
and hand a -20 session to :class:`~.secc.ISO20SECC` / :class:`~.evcc.ISO20EVCC`
(see :mod:`exi.v2g.session.protocols`).
"""
from .evcc import ISO20EVCC, ISO20EVCCSettings
from .secc import ISO20SECC, ISO20SECCSettings
from .tables import EVCC_TABLE, SECC_TABLE, Service

__all__ = ["ISO20EVCC", "ISO20EVCCSettings", "ISO20SECC", "ISO20SECCSettings", "EVCC_TABLE",
           "SECC_TABLE", "Service"]
