"""DIN SPEC 70121 transition tables of both roles (the cores enforce them; see
:mod:`exi.v2g.session.machine` for what the rows mean).  DC only, EIM only."""
from __future__ import annotations

from ..machine import SAP_REQ, SAP_RES, EVCCState, SECCState, Table, evcc_expects, evcc_state_after

__all__ = ["SECC_TABLE", "EVCC_TABLE", "EVCC_STATE_AFTER", "EVCC_EXPECTS"]

S = SECCState
E = EVCCState

SECC_TABLE: Table = {
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

EVCC_TABLE: Table = {
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

# derived: the waiting state each request puts the EVCC in, the response each state expects
EVCC_STATE_AFTER = evcc_state_after(EVCC_TABLE)
EVCC_EXPECTS = evcc_expects(EVCC_TABLE)
