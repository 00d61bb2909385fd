"""States and transition tables of the SECC and EVCC session cores, and diagrams
drawn from the tables (h11 ``_state.py`` style: the tables are the specification the
cores enforce, the diagrams and docs come from them).

SECC tables map ``(state, request name) -> allowed next states``; a request that has no
entry for the current state is out of sequence and is answered with
``FAILED_SequenceError`` ([V2G2-538] (2nd-hand), DIN SPEC 70121 the same, id
unverified).  EVCC tables map ``(state, response name) -> states the EVCC may go to``;
the EVCC's state names the response it waits for.  Where a table lists several next
states, the message content decides (EVSEProcessing=Ongoing repeats a request,
ChargeProgress=Renegotiate goes back to ChargeParameterDiscovery, ...).
"""
from __future__ import annotations

import enum
from typing import Iterable, Mapping

__all__ = [
    "SECCState", "EVCCState", "Table", "SECC_TABLES", "EVCC_TABLES", "EVCC_EXPECTS",
    "EVCC_STATE_AFTER", "diagram", "check_transition", "TransitionError", "SAP_SECC", "SAP_EVCC",
    "evcc_state_after", "evcc_expects",
]

SAP_REQ = "supportedAppProtocolReq"
SAP_RES = "supportedAppProtocolRes"


class SECCState(enum.Enum):
    """What the SECC waits for."""
    SUPPORTED_APP_PROTOCOL = "SupportedAppProtocol"
    SESSION_SETUP = "SessionSetup"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    PAYMENT_SELECTION = "ServiceDetail/PaymentSelection"
    PAYMENT_DETAILS = "Certificate/PaymentDetails"  # -2 Plug & Charge (Contract payment)
    AUTHORIZATION = "Authorization"               # DIN: ContractAuthentication
    CHARGE_PARAMETER_DISCOVERY = "ChargeParameterDiscovery"
    CABLE_CHECK = "CableCheck"
    PRE_CHARGE = "PreCharge"
    POWER_DELIVERY = "PowerDelivery"              # -2 AC start, -2 after renegotiation
    CHARGING = "Charging"                         # ChargingStatus/CurrentDemand loop
    POWER_STOPPED = "PowerStopped"                # after PowerDelivery(Stop)
    ENDED = "Ended"


class EVCCState(enum.Enum):
    """What the EVCC waits for (the response to its last request)."""
    IDLE = "Idle"
    SUPPORTED_APP_PROTOCOL = "supportedAppProtocolRes"
    SESSION_SETUP = "SessionSetupRes"
    SERVICE_DISCOVERY = "ServiceDiscoveryRes"
    SERVICE_DETAIL = "ServiceDetailRes"
    PAYMENT_SELECTION = "PaymentSelectionRes"     # DIN ServicePayment-, -2 PaymentService-
    CERTIFICATE_INSTALLATION = "CertificateInstallationRes"   # -2 Plug & Charge
    CERTIFICATE_UPDATE = "CertificateUpdateRes"
    PAYMENT_DETAILS = "PaymentDetailsRes"
    AUTHORIZATION = "AuthorizationRes"            # DIN ContractAuthenticationRes
    CHARGE_PARAMETER_DISCOVERY = "ChargeParameterDiscoveryRes"
    CABLE_CHECK = "CableCheckRes"
    PRE_CHARGE = "PreChargeRes"
    POWER_DELIVERY = "PowerDeliveryRes"
    CHARGING_STATUS = "ChargingStatusRes"
    CURRENT_DEMAND = "CurrentDemandRes"
    METERING_RECEIPT = "MeteringReceiptRes"
    WELDING_DETECTION = "WeldingDetectionRes"
    SESSION_STOP = "SessionStopRes"
    DONE = "Done"


Table = Mapping[tuple, tuple]
S = SECCState
E = EVCCState

# The transition tables live with their protocols (din/tables.py, iso2/tables.py,
# iso20/tables.py); collected here for diagrams and for code that walks every table.
# The SAP rows are the cores' own (they run SupportedAppProtocol before any protocol
# module is chosen) and are repeated in each protocol's table so its diagram is whole.
SAP_SECC: Table = {(S.SUPPORTED_APP_PROTOCOL, SAP_REQ): (S.SESSION_SETUP,)}
SAP_EVCC: Table = {(E.IDLE, "start"): (E.SUPPORTED_APP_PROTOCOL,),
                   (E.SUPPORTED_APP_PROTOCOL, SAP_RES): (E.SESSION_SETUP,)}


def evcc_state_after(table: Table) -> dict:
    """The waiting state each request puts the EVCC in (from an EVCC table)."""
    return {(SAP_REQ if name == SAP_RES else name[:-3] + "Req"): frm
            for (frm, name) in table if name != "start"}


def evcc_expects(table: Table) -> dict:
    """The response each waiting state expects (from an EVCC table)."""
    return {frm: name for (frm, name) in table if name != "start"}


class TransitionError(RuntimeError):
    """A core tried a transition its table does not allow (a bug in the core)."""


def check_transition(table: Table, state, trigger: str, new) -> None:
    allowed = table.get((state, trigger), ())
    if new not in allowed:
        raise TransitionError(f"{state.name} --{trigger}--> {new.name} is not in the table "
                              f"(allowed: {', '.join(s.name for s in allowed) or 'none'})")


def _edges(table: Table) -> Iterable[tuple]:
    for (frm, trigger), tos in table.items():
        for to in tos:
            yield frm, trigger, to


def diagram(table: Table, fmt: str = "mermaid", title: str = "") -> str:
    """Draw a transition table as a Mermaid ``stateDiagram-v2`` or a Graphviz digraph."""
    if fmt == "mermaid":
        lines = ["stateDiagram-v2"]
        if title:
            lines.insert(0, f"---\ntitle: {title}\n---")
        first = next(iter(table))[0]
        lines.append(f"    [*] --> {first.name}")
        for frm, trigger, to in _edges(table):
            lines.append(f"    {frm.name} --> {to.name}: {trigger}")
        terminal = {to for _, _, to in _edges(table)} - {frm for frm, _ in table}
        for t in sorted(terminal, key=lambda s: s.name):
            lines.append(f"    {t.name} --> [*]")
        return "\n".join(lines) + "\n"
    if fmt in ("dot", "graphviz"):
        lines = [f'digraph "{title or "session"}" {{', "    rankdir=TB;",
                 "    node [shape=box, style=rounded];"]
        for frm, trigger, to in _edges(table):
            lines.append(f'    {frm.name} -> {to.name} [label="{trigger}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown diagram format {fmt!r} (mermaid, dot)")


def all_diagrams(fmt: str = "mermaid") -> str:
    """Every table, for docs: ``python -m exi.v2g.session.machine [mermaid|dot]``."""
    parts = []
    for side, tables in (("SECC", SECC_TABLES), ("EVCC", EVCC_TABLES)):
        for schema, table in tables.items():
            parts.append(f"%% {side} {schema}\n" if fmt == "mermaid" else f"// {side} {schema}\n")
            parts.append(diagram(table, fmt, f"{side} {schema}"))
    return "\n".join(parts)



# Imported last: the protocol tables import the states above.
from .din import tables as _din      # noqa: E402
from .iso2 import tables as _iso2    # noqa: E402

SECC_TABLES: dict[str, Table] = {"din": _din.SECC_TABLE, "iso2": _iso2.SECC_TABLE}
EVCC_TABLES: dict[str, Table] = {"din": _din.EVCC_TABLE, "iso2": _iso2.EVCC_TABLE}
EVCC_STATE_AFTER: dict[str, dict[str, EVCCState]] = {k: evcc_state_after(t) for k, t in EVCC_TABLES.items()}
EVCC_EXPECTS: dict[str, dict[EVCCState, str]] = {k: evcc_expects(t) for k, t in EVCC_TABLES.items()}

if __name__ == "__main__":      # pragma: no cover
    import sys
    print(all_diagrams(sys.argv[1] if len(sys.argv) > 1 else "mermaid"))
