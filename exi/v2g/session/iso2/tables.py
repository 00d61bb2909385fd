"""ISO 15118-2 transition tables of both roles (AC and DC, EIM; the cores enforce them;
see :mod:`exi.v2g.session.machine` for what the rows mean).  Plug & Charge adds its rows
here (PaymentDetails between PaymentServiceSelection and Authorization, Certificate*)."""
from __future__ import annotations

from ..machine import SAP_REQ, SAP_RES, EVCCState, SECCState, Table, evcc_expects, evcc_state_after

__all__ = ["SECC_TABLE", "EVCC_TABLE", "EVCC_STATE_AFTER", "EVCC_EXPECTS"]

S = SECCState
E = EVCCState

SECC_TABLE: Table = {
    (S.SUPPORTED_APP_PROTOCOL, SAP_REQ): (S.SESSION_SETUP,),
    (S.SESSION_SETUP, "SessionSetupReq"): (S.SERVICE_DISCOVERY,),
    (S.SERVICE_DISCOVERY, "ServiceDiscoveryReq"): (S.PAYMENT_SELECTION,),
    (S.PAYMENT_SELECTION, "ServiceDetailReq"): (S.PAYMENT_SELECTION,),
    # Contract payment (Plug & Charge) goes to PaymentDetails, optionally after a
    # CertificateInstallation or CertificateUpdate
    (S.PAYMENT_SELECTION, "PaymentServiceSelectionReq"): (S.AUTHORIZATION, S.PAYMENT_DETAILS),
    (S.PAYMENT_DETAILS, "CertificateInstallationReq"): (S.PAYMENT_DETAILS,),
    (S.PAYMENT_DETAILS, "CertificateUpdateReq"): (S.PAYMENT_DETAILS,),
    (S.PAYMENT_DETAILS, "PaymentDetailsReq"): (S.AUTHORIZATION,),
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

EVCC_TABLE: Table = {
    (E.IDLE, "start"): (E.SUPPORTED_APP_PROTOCOL,),
    (E.SUPPORTED_APP_PROTOCOL, SAP_RES): (E.SESSION_SETUP,),
    (E.SESSION_SETUP, "SessionSetupRes"): (E.SERVICE_DISCOVERY,),
    (E.SERVICE_DISCOVERY, "ServiceDiscoveryRes"): (E.SERVICE_DETAIL, E.PAYMENT_SELECTION),
    (E.SERVICE_DETAIL, "ServiceDetailRes"): (E.SERVICE_DETAIL, E.PAYMENT_SELECTION),
    (E.PAYMENT_SELECTION, "PaymentServiceSelectionRes"):
        (E.AUTHORIZATION, E.CERTIFICATE_INSTALLATION, E.CERTIFICATE_UPDATE, E.PAYMENT_DETAILS),
    (E.CERTIFICATE_INSTALLATION, "CertificateInstallationRes"): (E.PAYMENT_DETAILS,),
    (E.CERTIFICATE_UPDATE, "CertificateUpdateRes"): (E.PAYMENT_DETAILS,),
    (E.PAYMENT_DETAILS, "PaymentDetailsRes"): (E.AUTHORIZATION,),
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

# derived: the waiting state each request puts the EVCC in, the response each state expects
EVCC_STATE_AFTER = evcc_state_after(EVCC_TABLE)
EVCC_EXPECTS = evcc_expects(EVCC_TABLE)
