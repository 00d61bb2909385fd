"""ISO 15118-20 states, transition tables, services and parameter sets.

Sequence (SECC view, shared/research/iso20-pnc.md 1.3/1.4, checked against the message
sets of schemas/iso15118_20): SessionSetup, AuthorizationSetup, Authorization (EIM,
Ongoing loop), ServiceDiscovery, ServiceDetail (any number), ServiceSelection,
{DC,AC}_ChargeParameterDiscovery, ScheduleExchange (Ongoing loop), DC: CableCheck loop,
PreCharge loop; PowerDelivery(Start), charge loop, PowerDelivery(Stop), DC:
WeldingDetection loop; SessionStop.  A request with no row for the current state is out
of sequence: FAILED_SequenceError, and in -20 every FAILED code ends the session on both
sides (ISO 15118-20 clause 8.6, no requirement id; research 1.3).
"""
from __future__ import annotations

import enum

from ..machine import Table

__all__ = ["SECC20State", "EVCC20State", "SECC_TABLE", "EVCC_TABLE", "SERVICES",
           "SERVICE_IDS", "parameter_sets", "Service"]


class SECC20State(enum.Enum):
    """What the -20 SECC waits for."""
    SESSION_SETUP = "SessionSetup"
    AUTHORIZATION_SETUP = "AuthorizationSetup"
    AUTHORIZATION = "Authorization"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    SERVICE_SELECTION = "ServiceDetail/ServiceSelection"
    CHARGE_PARAMETER_DISCOVERY = "ChargeParameterDiscovery"
    SCHEDULE_EXCHANGE = "ScheduleExchange"
    CABLE_CHECK = "CableCheck"
    PRE_CHARGE = "PreCharge"
    POWER_DELIVERY = "PowerDelivery"          # AC start, DC after schedule renegotiation
    CHARGING = "ChargeLoop"
    STANDBY = "Standby"
    POWER_STOPPED = "PowerStopped"
    ENDED = "Ended"


S = SECC20State
_EARLY_STOP = (S.AUTHORIZATION_SETUP, S.AUTHORIZATION, S.SERVICE_DISCOVERY, S.SERVICE_SELECTION,
               S.CHARGE_PARAMETER_DISCOVERY, S.SCHEDULE_EXCHANGE, S.CABLE_CHECK, S.PRE_CHARGE,
               S.POWER_DELIVERY)

SECC_TABLE: Table = {
    # A resumed session (OK_OldSessionJoined) continues at ChargeParameterDiscovery
    # ([V2G20-1032], research 1.6).
    (S.SESSION_SETUP, "SessionSetupReq"): (S.AUTHORIZATION_SETUP, S.CHARGE_PARAMETER_DISCOVERY),
    (S.AUTHORIZATION_SETUP, "AuthorizationSetupReq"): (S.AUTHORIZATION,),
    (S.AUTHORIZATION, "AuthorizationReq"): (S.AUTHORIZATION, S.SERVICE_DISCOVERY),
    (S.SERVICE_DISCOVERY, "ServiceDiscoveryReq"): (S.SERVICE_SELECTION,),
    (S.SERVICE_SELECTION, "ServiceDetailReq"): (S.SERVICE_SELECTION,),
    (S.SERVICE_SELECTION, "ServiceSelectionReq"): (S.CHARGE_PARAMETER_DISCOVERY,),
    (S.CHARGE_PARAMETER_DISCOVERY, "DC_ChargeParameterDiscoveryReq"): (S.SCHEDULE_EXCHANGE,),
    (S.CHARGE_PARAMETER_DISCOVERY, "AC_ChargeParameterDiscoveryReq"): (S.SCHEDULE_EXCHANGE,),
    # DC goes on to CableCheck; AC, and DC after a schedule renegotiation, to PowerDelivery.
    (S.SCHEDULE_EXCHANGE, "ScheduleExchangeReq"): (S.SCHEDULE_EXCHANGE, S.CABLE_CHECK, S.POWER_DELIVERY),
    (S.CABLE_CHECK, "DC_CableCheckReq"): (S.CABLE_CHECK, S.PRE_CHARGE),
    (S.PRE_CHARGE, "DC_PreChargeReq"): (S.PRE_CHARGE,),
    # EVProcessing=Ongoing: the EV is not ready yet and repeats the request (same state).
    (S.PRE_CHARGE, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED, S.PRE_CHARGE),
    (S.POWER_DELIVERY, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED, S.POWER_DELIVERY),
    (S.CHARGING, "DC_ChargeLoopReq"): (S.CHARGING,),
    (S.CHARGING, "AC_ChargeLoopReq"): (S.CHARGING,),
    # Stop, Standby (CHARGING again when refused: WARNING_StandbyNotAllowed), ScheduleRenegotiation
    (S.CHARGING, "PowerDeliveryReq"): (S.POWER_STOPPED, S.STANDBY, S.CHARGING, S.SCHEDULE_EXCHANGE),
    # Standby: the loop goes on without power until PowerDelivery(Start) or (Stop).
    (S.STANDBY, "DC_ChargeLoopReq"): (S.STANDBY,),
    (S.STANDBY, "AC_ChargeLoopReq"): (S.STANDBY,),
    (S.STANDBY, "PowerDeliveryReq"): (S.CHARGING, S.POWER_STOPPED),
    # EVSENotification MeteringConfirmation ([V2G20-1083]): in the loop, charging or not.
    (S.CHARGING, "MeteringConfirmationReq"): (S.CHARGING,),
    (S.STANDBY, "MeteringConfirmationReq"): (S.STANDBY,),
    (S.POWER_STOPPED, "DC_WeldingDetectionReq"): (S.POWER_STOPPED,),
    # Terminate/Pause end; ServiceRenegotiation goes back to ServiceDiscovery ([V2G20-1477]).
    (S.POWER_STOPPED, "SessionStopReq"): (S.ENDED, S.SERVICE_DISCOVERY),
    **{(st, "SessionStopReq"): (S.ENDED,) for st in _EARLY_STOP},
}


class EVCC20State(enum.Enum):
    """What the -20 EVCC waits for (the response to its last request)."""
    SESSION_SETUP = "SessionSetupRes"
    AUTHORIZATION_SETUP = "AuthorizationSetupRes"
    AUTHORIZATION = "AuthorizationRes"
    SERVICE_DISCOVERY = "ServiceDiscoveryRes"
    SERVICE_DETAIL = "ServiceDetailRes"
    SERVICE_SELECTION = "ServiceSelectionRes"
    DC_CHARGE_PARAMETER_DISCOVERY = "DC_ChargeParameterDiscoveryRes"
    AC_CHARGE_PARAMETER_DISCOVERY = "AC_ChargeParameterDiscoveryRes"
    SCHEDULE_EXCHANGE = "ScheduleExchangeRes"
    DC_CABLE_CHECK = "DC_CableCheckRes"
    DC_PRE_CHARGE = "DC_PreChargeRes"
    POWER_DELIVERY = "PowerDeliveryRes"
    DC_CHARGE_LOOP = "DC_ChargeLoopRes"
    AC_CHARGE_LOOP = "AC_ChargeLoopRes"
    METERING_CONFIRMATION = "MeteringConfirmationRes"
    DC_WELDING_DETECTION = "DC_WeldingDetectionRes"
    SESSION_STOP = "SessionStopRes"
    DONE = "Done"


E = EVCC20State
# The state a request puts the EVCC in: the response it waits for.
EVCC_STATE_AFTER = {s.value[:-3] + "Req": s for s in E if s.value.endswith("Res")}

EVCC_TABLE: Table = {
    (E.SESSION_SETUP, "SessionSetupRes"): (E.AUTHORIZATION_SETUP, E.DC_CHARGE_PARAMETER_DISCOVERY,
                                           E.AC_CHARGE_PARAMETER_DISCOVERY),
    # The EV ends the session (SessionStop Terminate) where the SECC's answer leaves it
    # nothing to go on with: no EIM, its service not offered, no parameter set for its
    # control mode; the SECC accepts SessionStopReq in each of these states (_EARLY_STOP).
    (E.AUTHORIZATION_SETUP, "AuthorizationSetupRes"): (E.AUTHORIZATION, E.SESSION_STOP),
    (E.AUTHORIZATION, "AuthorizationRes"): (E.AUTHORIZATION, E.SERVICE_DISCOVERY, E.SESSION_STOP),
    (E.SERVICE_DISCOVERY, "ServiceDiscoveryRes"): (E.SERVICE_DETAIL, E.SERVICE_SELECTION, E.SESSION_STOP),
    (E.SERVICE_DETAIL, "ServiceDetailRes"): (E.SERVICE_DETAIL, E.SERVICE_SELECTION, E.SESSION_STOP),
    (E.SERVICE_SELECTION, "ServiceSelectionRes"): (E.DC_CHARGE_PARAMETER_DISCOVERY,
                                                   E.AC_CHARGE_PARAMETER_DISCOVERY),
    (E.DC_CHARGE_PARAMETER_DISCOVERY, "DC_ChargeParameterDiscoveryRes"): (E.SCHEDULE_EXCHANGE,),
    (E.AC_CHARGE_PARAMETER_DISCOVERY, "AC_ChargeParameterDiscoveryRes"): (E.SCHEDULE_EXCHANGE,),
    (E.SCHEDULE_EXCHANGE, "ScheduleExchangeRes"): (E.SCHEDULE_EXCHANGE, E.DC_CABLE_CHECK,
                                                   E.POWER_DELIVERY, E.SESSION_STOP),
    (E.DC_CABLE_CHECK, "DC_CableCheckRes"): (E.DC_CABLE_CHECK, E.DC_PRE_CHARGE, E.SESSION_STOP),
    (E.DC_PRE_CHARGE, "DC_PreChargeRes"): (E.DC_PRE_CHARGE, E.POWER_DELIVERY),
    (E.POWER_DELIVERY, "PowerDeliveryRes"): (E.DC_CHARGE_LOOP, E.AC_CHARGE_LOOP, E.SCHEDULE_EXCHANGE,
                                             E.DC_WELDING_DETECTION, E.SESSION_STOP),
    (E.DC_CHARGE_LOOP, "DC_ChargeLoopRes"): (E.DC_CHARGE_LOOP, E.POWER_DELIVERY, E.METERING_CONFIRMATION),
    (E.AC_CHARGE_LOOP, "AC_ChargeLoopRes"): (E.AC_CHARGE_LOOP, E.POWER_DELIVERY, E.METERING_CONFIRMATION),
    # EVSENotification MeteringConfirmation ([V2G20-1083]): confirmed, the loop goes on.
    (E.METERING_CONFIRMATION, "MeteringConfirmationRes"): (E.DC_CHARGE_LOOP, E.AC_CHARGE_LOOP),
    (E.DC_WELDING_DETECTION, "DC_WeldingDetectionRes"): (E.DC_WELDING_DETECTION, E.SESSION_STOP),
    # ServiceRenegotiation: a new ServiceDiscovery in the same session.
    (E.SESSION_STOP, "SessionStopRes"): (E.DONE, E.SERVICE_DISCOVERY),
}


# -- services ------------------------------------------------------------------------------
# Energy transfer service ids (ISO 15118-20 Table 204 as transcribed by the iso15118
# package's ServiceV20; research 0.4).
class Service(enum.IntEnum):
    AC = 1
    DC = 2
    WPT = 3
    DC_ACDP = 4
    AC_BPT = 5
    DC_BPT = 6
    DC_ACDP_BPT = 7


SERVICE_IDS = {"ac": Service.AC, "dc": Service.DC, "ac_bpt": Service.AC_BPT, "dc_bpt": Service.DC_BPT}
SERVICES = tuple(SERVICE_IDS.values())
SCHEDULED, DYNAMIC = 1, 2        # ControlMode parameter values (Tables 205-208)


def parameter_sets(service: int, ac_nominal_voltage: float = 230.0) -> list[tuple[int, dict]]:
    """The ParameterSets this SECC offers for ``service``: [(ParameterSetID, {Name: int})].

    One set per control mode: 1 scheduled, 2 dynamic.  Names and values from Tables
    205 (AC, [V2G20-...] unverified), 206 (AC_BPT, [V2G20-1361]), 207 (DC, [V2G20-1357]),
    208 (DC_BPT, [V2G20-1360]) as quoted in research 1.2.  Connector: AC 2 ThreePhase
    (Table 205 value, EVerest sends 3), DC 2 Extended.  MobilityNeedsMode 1 (the EVCC
    provides the mobility needs) in both sets: 2 is allowed only with dynamic control
    ([V2G20-2663]) and is not offered.  Pricing 0 (no price in the loop).  BPT: channel 1
    Unified, generator mode 1 GridFollowing; AC_BPT islanding detection 1 Active under
    the iso15118 package's parameter name (the Table 206 name is unverified)."""
    sets = []
    for set_id, control in ((1, SCHEDULED), (2, DYNAMIC)):
        ac = service in (Service.AC, Service.AC_BPT)
        p = {"Connector": 2, "ControlMode": control}
        if ac:
            p["EVSENominalVoltage"] = int(ac_nominal_voltage)
        p["MobilityNeedsMode"] = 1
        p["Pricing"] = 0
        if service in (Service.AC_BPT, Service.DC_BPT):
            p["BPTChannel"] = 1
            p["GeneratorMode"] = 1
        if service == Service.AC_BPT:
            p["GridCodeIslandingDetectionMethod"] = 1
        sets.append((set_id, p))
    return sets
