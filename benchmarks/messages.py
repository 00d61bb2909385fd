"""The messages the benchmarks encode and decode, built once.

Small messages are real streams (benchmarks/data/messages.json, from public test data and
captures, source noted per line); the large ones are built here to the sizes real
chargers send: a ChargeParameterDiscoveryRes with 3 schedules of 24 entries and sales
tariffs, and a 3.7 kB CertificateInstallationRes with four signature references.
"""
from __future__ import annotations

import json
from pathlib import Path

import exi

DATA = Path(__file__).parent / "data" / "messages.json"


def _real() -> dict:
    out = {}
    for row in json.loads(DATA.read_text()):
        out[(row["schema"], row["message"])] = bytes.fromhex(row["exi_hex"])
    return out


def _pv(mult, unit, value):
    return {"Multiplier": mult, "Unit": unit, "Value": value}


def charge_parameter_discovery_res(tuples=3, entries=24, tariffs=True) -> dict:
    sched = []
    for t in range(tuples):
        tup = {"SAScheduleTupleID": t + 1, "PMaxSchedule": {"PMaxScheduleEntry": [
            {"RelativeTimeInterval": {"start": i * 3600, **({"duration": 3600} if i == entries - 1 else {})},
             "PMax": _pv(0, "W", 11000 - 100 * i)} for i in range(entries)]}}
        if tariffs:
            tup["SalesTariff"] = {
                "Id": f"ST{t + 1}", "SalesTariffID": t + 1, "SalesTariffDescription": "time of use",
                "NumEPriceLevels": 3,
                "SalesTariffEntry": [
                    {"RelativeTimeInterval": {"start": i * 3600, **({"duration": 3600} if i == entries - 1 else {})},
                     "EPriceLevel": i % 3 + 1,
                     "ConsumptionCost": [{"startValue": _pv(0, "W", 0),
                                          "Cost": [{"costKind": "relativePricePercentage", "amount": 100 + i,
                                                    "amountMultiplier": -1}]}]}
                    for i in range(entries)]}
        sched.append(tup)
    return {"V2G_Message": {"Header": {"SessionID": "CBEE8266DB567CFF"}, "Body": {"ChargeParameterDiscoveryRes": {
        "ResponseCode": "OK", "EVSEProcessing": "Finished", "SAScheduleList": {"SAScheduleTuple": sched},
        "DC_EVSEChargeParameter": {
            "DC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None",
                              "EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready"},
            "EVSEMaximumCurrentLimit": _pv(-1, "A", 3000), "EVSEMaximumPowerLimit": _pv(1, "W", 15000),
            "EVSEMaximumVoltageLimit": _pv(-1, "V", 9200), "EVSEMinimumCurrentLimit": _pv(-1, "A", 0),
            "EVSEMinimumVoltageLimit": _pv(-1, "V", 1500), "EVSEPeakCurrentRipple": _pv(-1, "A", 10)}}}}}


def _b64(n, seed):
    import base64
    return base64.b64encode(bytes((seed + i * 7) & 0xFF for i in range(n))).decode()


def certificate_installation_res() -> dict:
    refs = [{"URI": f"#id{i}", "Transforms": {"Transform": [
        {"Algorithm": "http://www.w3.org/TR/canonical-exi/"}]},
        "DigestMethod": {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha256"},
        "DigestValue": _b64(32, i)} for i in range(4)]
    signature = {"SignedInfo": {
        "CanonicalizationMethod": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"},
        "SignatureMethod": {"Algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
        "Reference": refs}, "SignatureValue": {"value": _b64(64, 9)}}
    return {"V2G_Message": {"Header": {"SessionID": "0102030405060708", "Signature": signature},
                            "Body": {"CertificateInstallationRes": {
        "ResponseCode": "OK",
        "SAProvisioningCertificateChain": {"Id": "id0", "Certificate": _b64(640, 1),
                                           "SubCertificates": {"Certificate": [_b64(560, 2)]}},
        "ContractSignatureCertChain": {"Id": "id1", "Certificate": _b64(700, 3),
                                       "SubCertificates": {"Certificate": [_b64(600, 4), _b64(560, 5)]}},
        "ContractSignatureEncryptedPrivateKey": {"Id": "id2", "value": _b64(48, 6)},
        "DHpublickey": {"Id": "id3", "value": _b64(65, 7)},
        "eMAID": {"Id": "id4", "value": "DEABCC123456789"}}}}}


def all_messages() -> dict:
    """name -> (schema id, EXI bytes, message object)"""
    real = _real()
    out = {}
    for (sid, name), data in real.items():
        label = {"sap": "SAP", "din": "DIN", "iso2": "ISO2", "iso20_dc": "ISO20"}[sid] + " " + name
        if name == "supportedAppProtocolReq":
            label += " (3 protocols)"
        if name in ("ChargeParameterDiscoveryRes", "CertificateInstallationRes"):
            label += f" ({len(data)} B)"
        out[label] = (sid, data, exi.decode(data, sid))
    for label, d in (("ISO2 ChargeParameterDiscoveryRes (3x24 + tariffs)", charge_parameter_discovery_res()),
                     ("ISO2 CertificateInstallationRes (3.7 kB)", certificate_installation_res())):
        m = exi.from_dict(d, "iso2")
        data = exi.encode(m)
        out[label + f" [{len(data)} B]"] = ("iso2", data, m)
    return out
