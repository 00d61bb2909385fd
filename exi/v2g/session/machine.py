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
    "EVCC_STATE_AFTER", "diagram", "check_transition", "TransitionError",
]

SAP_REQ = "supportedAppProtocolReq"
SAP_RES = "supportedAppProtocolRes"


class SECCState(enum.Enum):
    """What the SECC waits for."""
    SUPPORTED_APP_PROTOCOL = "SupportedAppProtocol"
    SESSION_SETUP = "SessionSetup"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    PAYMENT_SELECTION = "ServiceDetail/PaymentSelection"
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

# ---------------------------------------------------------------------------------------
# SECC

_DIN_SECC: dict = {
    (S.SUPPORTED_APP_PROTOCOL, SAP_REQ): (S.SESSION_SETUP,),
    (S.SESSION_SETUP, "SessionSetupReq"): (S.SERVICE_DISCOVERY,),
    (S.SERVICE_DISCOVERY, "ServiceDiscoveryReq"): (S.PAYMENT_SELECTION,),
    (S.PAYMENT_SELECTION, "ServicePaymentSelectionReq"): (S.AUTHORIZATION,),
    (S.AUTHORIZATION, "ContractAuthenticationReq"): (S.AUTHORIZATION, S.CHARGE_PARAMETER_DISCOVERY),
    (S.CHARGE_PARAMETER_DISCOVERY, "ChargeParameterDiscoveryReq"):
        (S.CHARGE_PARAMETER_DISCOVERY, S.CABLE_CHECK),
    (S.CABLE_CHECK, "CableCheckReq"): (S.CABLE_CHECK, S.PRE_CHARGE),
    (S.PRE_CHARGE, "PreChargeReq"): (S.PRE_CHARGE,),
    (S.PRE_CHARGE, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED),
    (S.CHARGING, "CurrentDemandReq"): (S.CHARGING,),
    (S.CHARGING, "PowerDeliveryReq"): (S.POWER_STOPPED,),
    (S.POWER_STOPPED, "WeldingDetectionReq"): (S.POWER_STOPPED,),
    (S.POWER_STOPPED, "SessionStopReq"): (S.ENDED,),
    **{(st, "SessionStopReq"): (S.ENDED,) for st in (
        S.AUTHORIZATION, S.CHARGE_PARAMETER_DISCOVERY, S.CABLE_CHECK, S.PRE_CHARGE)},
}

_ISO2_SECC: dict = {
    (S.SUPPORTED_APP_PROTOCOL, SAP_REQ): (S.SESSION_SETUP,),
    (S.SESSION_SETUP, "SessionSetupReq"): (S.SERVICE_DISCOVERY,),
    (S.SERVICE_DISCOVERY, "ServiceDiscoveryReq"): (S.PAYMENT_SELECTION,),
    (S.PAYMENT_SELECTION, "ServiceDetailReq"): (S.PAYMENT_SELECTION,),
    (S.PAYMENT_SELECTION, "PaymentServiceSelectionReq"): (S.AUTHORIZATION,),
    (S.AUTHORIZATION, "AuthorizationReq"): (S.AUTHORIZATION, S.CHARGE_PARAMETER_DISCOVERY),
    # DC goes to CableCheck, AC (and DC after a renegotiation) to PowerDelivery.
    (S.CHARGE_PARAMETER_DISCOVERY, "ChargeParameterDiscoveryReq"):
        (S.CHARGE_PARAMETER_DISCOVERY, S.CABLE_CHECK, S.POWER_DELIVERY),
    (S.CABLE_CHECK, "CableCheckReq"): (S.CABLE_CHECK, S.PRE_CHARGE),
    (S.PRE_CHARGE, "PreChargeReq"): (S.PRE_CHARGE,),
    (S.PRE_CHARGE, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED),
    (S.POWER_DELIVERY, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED),
    (S.CHARGING, "ChargingStatusReq"): (S.CHARGING,),          # AC
    (S.CHARGING, "CurrentDemandReq"): (S.CHARGING,),           # DC
    (S.CHARGING, "MeteringReceiptReq"): (S.CHARGING,),         # only after ReceiptRequired
    # Stop -> PowerStopped, Renegotiate -> ChargeParameterDiscovery
    (S.CHARGING, "PowerDeliveryReq"): (S.POWER_STOPPED, S.CHARGE_PARAMETER_DISCOVERY),
    (S.POWER_STOPPED, "WeldingDetectionReq"): (S.POWER_STOPPED,),
    (S.POWER_STOPPED, "SessionStopReq"): (S.ENDED,),
    # DC renegotiation: the EV may run CableCheck and PreCharge again before
    # PowerDelivery(Start) (RISE-V2G does; the SECC accepts both orders).
    (S.POWER_DELIVERY, "CableCheckReq"): (S.CABLE_CHECK, S.PRE_CHARGE),
    (S.POWER_DELIVERY, "PreChargeReq"): (S.PRE_CHARGE,),
    **{(st, "SessionStopReq"): (S.ENDED,) for st in (
        S.AUTHORIZATION, S.CHARGE_PARAMETER_DISCOVERY, S.CABLE_CHECK, S.PRE_CHARGE, S.POWER_DELIVERY)},
}

SECC_TABLES: dict[str, Table] = {"din": _DIN_SECC, "iso2": _ISO2_SECC}

# ---------------------------------------------------------------------------------------
# EVCC

_DIN_EVCC: dict = {
    (E.IDLE, "start"): (E.SUPPORTED_APP_PROTOCOL,),
    (E.SUPPORTED_APP_PROTOCOL, SAP_RES): (E.SESSION_SETUP,),
    (E.SESSION_SETUP, "SessionSetupRes"): (E.SERVICE_DISCOVERY,),
    (E.SERVICE_DISCOVERY, "ServiceDiscoveryRes"): (E.PAYMENT_SELECTION,),
    (E.PAYMENT_SELECTION, "ServicePaymentSelectionRes"): (E.AUTHORIZATION,),
    # SESSION_STOP / POWER_DELIVERY before the charge loop: the EV stops early.
    (E.AUTHORIZATION, "ContractAuthenticationRes"):
        (E.AUTHORIZATION, E.CHARGE_PARAMETER_DISCOVERY, E.SESSION_STOP),
    (E.CHARGE_PARAMETER_DISCOVERY, "ChargeParameterDiscoveryRes"):
        (E.CHARGE_PARAMETER_DISCOVERY, E.CABLE_CHECK, E.SESSION_STOP),
    (E.CABLE_CHECK, "CableCheckRes"): (E.CABLE_CHECK, E.PRE_CHARGE, E.POWER_DELIVERY, E.SESSION_STOP),
    (E.PRE_CHARGE, "PreChargeRes"): (E.PRE_CHARGE, E.POWER_DELIVERY, E.SESSION_STOP),
    (E.POWER_DELIVERY, "PowerDeliveryRes"): (E.CURRENT_DEMAND, E.WELDING_DETECTION, E.SESSION_STOP),
    (E.CURRENT_DEMAND, "CurrentDemandRes"): (E.CURRENT_DEMAND, E.POWER_DELIVERY),
    (E.WELDING_DETECTION, "WeldingDetectionRes"): (E.WELDING_DETECTION, E.SESSION_STOP),
    (E.SESSION_STOP, "SessionStopRes"): (E.DONE,),
}

_ISO2_EVCC: dict = {
    (E.IDLE, "start"): (E.SUPPORTED_APP_PROTOCOL,),
    (E.SUPPORTED_APP_PROTOCOL, SAP_RES): (E.SESSION_SETUP,),
    (E.SESSION_SETUP, "SessionSetupRes"): (E.SERVICE_DISCOVERY,),
    (E.SERVICE_DISCOVERY, "ServiceDiscoveryRes"): (E.SERVICE_DETAIL, E.PAYMENT_SELECTION),
    (E.SERVICE_DETAIL, "ServiceDetailRes"): (E.SERVICE_DETAIL, E.PAYMENT_SELECTION),
    (E.PAYMENT_SELECTION, "PaymentServiceSelectionRes"): (E.AUTHORIZATION,),
    (E.AUTHORIZATION, "AuthorizationRes"): (E.AUTHORIZATION, E.CHARGE_PARAMETER_DISCOVERY, E.SESSION_STOP),
    (E.CHARGE_PARAMETER_DISCOVERY, "ChargeParameterDiscoveryRes"):
        (E.CHARGE_PARAMETER_DISCOVERY, E.CABLE_CHECK, E.POWER_DELIVERY, E.SESSION_STOP),
    (E.CABLE_CHECK, "CableCheckRes"): (E.CABLE_CHECK, E.PRE_CHARGE, E.POWER_DELIVERY, E.SESSION_STOP),
    (E.PRE_CHARGE, "PreChargeRes"): (E.PRE_CHARGE, E.POWER_DELIVERY, E.SESSION_STOP),
    (E.POWER_DELIVERY, "PowerDeliveryRes"):
        (E.CHARGING_STATUS, E.CURRENT_DEMAND, E.CHARGE_PARAMETER_DISCOVERY,
         E.WELDING_DETECTION, E.SESSION_STOP),
    (E.CHARGING_STATUS, "ChargingStatusRes"):
        (E.CHARGING_STATUS, E.METERING_RECEIPT, E.POWER_DELIVERY),
    (E.CURRENT_DEMAND, "CurrentDemandRes"):
        (E.CURRENT_DEMAND, E.METERING_RECEIPT, E.POWER_DELIVERY),
    (E.METERING_RECEIPT, "MeteringReceiptRes"):
        (E.CHARGING_STATUS, E.CURRENT_DEMAND, E.POWER_DELIVERY),
    (E.WELDING_DETECTION, "WeldingDetectionRes"): (E.WELDING_DETECTION, E.SESSION_STOP),
    (E.SESSION_STOP, "SessionStopRes"): (E.DONE,),
}

EVCC_TABLES: dict[str, Table] = {"din": _DIN_EVCC, "iso2": _ISO2_EVCC}

# The waiting state each request puts the EVCC in, per protocol.
EVCC_STATE_AFTER: dict[str, dict[str, EVCCState]] = {
    schema: {(SAP_REQ if name == SAP_RES else name[:-3] + "Req"): frm
             for (frm, name) in table if name != "start"}
    for schema, table in EVCC_TABLES.items()
}
# The response each waiting state expects, per protocol.
EVCC_EXPECTS: dict[str, dict[EVCCState, str]] = {
    schema: {frm: name for (frm, name) in table if name != "start"}
    for schema, table in EVCC_TABLES.items()
}


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


if __name__ == "__main__":      # pragma: no cover
    import sys
    print(all_diagrams(sys.argv[1] if len(sys.argv) > 1 else "mermaid"))
