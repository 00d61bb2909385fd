"""The one table that ties V2GTP payload types, schema ids, XML namespaces and the
SupportedAppProtocol namespaces together.  Everything above the codec (V2GTP, SDP,
sessions, capture decoding) looks things up here instead of repeating constants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "SchemaInfo", "PayloadType", "SCHEMAS", "PAYLOAD_TYPES",
    "schema_info", "schema_for_payload_type", "schema_for_protocol_namespace",
    "payload_type_for_schema",
]


@dataclass(frozen=True)
class SchemaInfo:
    """One compiled grammar of the codec."""
    id: str                     # schema id used by exi.decode(data, schema)
    directory: str              # folder under schemas/
    entry: str                  # XSD file the grammar is compiled from
    namespace: str              # namespace of the message root element(s)
    title: str
    protocol_namespace: Optional[str] = None   # as offered in SupportedAppProtocolReq
    version_major: Optional[int] = None
    version_minor: Optional[int] = None
    payload_type: Optional[int] = None         # V2GTP payload type carrying it


@dataclass(frozen=True)
class PayloadType:
    code: int
    name: str
    schema: Optional[str]  # None: not EXI (SDP) or schema decided by the session


SCHEMAS: dict[str, SchemaInfo] = {s.id: s for s in (
    SchemaInfo("sap", "app_protocol", "V2G_CI_AppProtocol.xsd",
               "urn:iso:15118:2:2010:AppProtocol", "SupportedAppProtocol",
               payload_type=0x8001),
    SchemaInfo("din", "din70121", "V2G_CI_MsgDef.xsd",
               "urn:din:70121:2012:MsgDef", "DIN SPEC 70121:2014",
               "urn:din:70121:2012:MsgDef", 2, 0, 0x8001),
    SchemaInfo("iso2", "iso15118_2", "V2G_CI_MsgDef.xsd",
               "urn:iso:15118:2:2013:MsgDef", "ISO 15118-2:2014",
               "urn:iso:15118:2:2013:MsgDef", 2, 0, 0x8001),
    SchemaInfo("iso20_cm", "iso15118_20", "V2G_CI_CommonMessages.xsd",
               "urn:iso:std:iso:15118:-20:CommonMessages", "ISO 15118-20 CommonMessages",
               None, None, None, 0x8002),
    SchemaInfo("iso20_ac", "iso15118_20", "V2G_CI_AC.xsd",
               "urn:iso:std:iso:15118:-20:AC", "ISO 15118-20 AC",
               "urn:iso:std:iso:15118:-20:AC", 1, 0, 0x8003),
    SchemaInfo("iso20_dc", "iso15118_20", "V2G_CI_DC.xsd",
               "urn:iso:std:iso:15118:-20:DC", "ISO 15118-20 DC",
               "urn:iso:std:iso:15118:-20:DC", 1, 0, 0x8004),
    SchemaInfo("iso20_acdp", "iso15118_20", "V2G_CI_ACDP.xsd",
               "urn:iso:std:iso:15118:-20:ACDP", "ISO 15118-20 ACDP",
               "urn:iso:std:iso:15118:-20:ACDP", 1, 0, 0x8005),
    SchemaInfo("iso20_wpt", "iso15118_20", "V2G_CI_WPT.xsd",
               "urn:iso:std:iso:15118:-20:WPT", "ISO 15118-20 WPT",
               "urn:iso:std:iso:15118:-20:WPT", 1, 0, 0x8006),
    SchemaInfo("xmldsig", "iso15118_2", "xmldsig-core-schema.xsd",
               "http://www.w3.org/2000/09/xmldsig#", "XML Signature (standalone)"),
)}

# V2GTP payload types: DIN SPEC 70121 Table 9, ISO 15118-2 Table 10, ISO 15118-20 Table 12.
PAYLOAD_TYPES: dict[int, PayloadType] = {p.code: p for p in (
    PayloadType(0x8001, "EXI encoded V2G message (SAP, DIN, ISO 15118-2)", None),
    PayloadType(0x8002, "ISO 15118-20 CommonMessages", "iso20_cm"),
    PayloadType(0x8003, "ISO 15118-20 AC", "iso20_ac"),
    PayloadType(0x8004, "ISO 15118-20 DC", "iso20_dc"),
    PayloadType(0x8005, "ISO 15118-20 ACDP", "iso20_acdp"),
    PayloadType(0x8006, "ISO 15118-20 WPT", "iso20_wpt"),
    PayloadType(0x8101, "ISO 15118-20 Schedule Renegotiation", "iso20_cm"),
    PayloadType(0x8102, "ISO 15118-20 Metering Confirmation", "iso20_cm"),
    PayloadType(0x8103, "ISO 15118-20 ACDP System Status", "iso20_acdp"),
    PayloadType(0x8104, "ISO 15118-20 Parking Status", "iso20_cm"),
    PayloadType(0x9000, "SDP request", None),
    PayloadType(0x9001, "SDP response", None),
    PayloadType(0x9002, "SDP request (wireless)", None),
    PayloadType(0x9003, "SDP response (wireless)", None),
    # 0x9004/0x9005 (EMSP list SDP of ISO 15118-20) as dsV2Gshark's v2gtp.lua names and
    # dissects them; not checked against the standard's text.
    PayloadType(0x9004, "SDP request (EMSP)", None),
    PayloadType(0x9005, "SDP response (EMSP)", None),
)}


def schema_info(schema: str) -> SchemaInfo:
    try:
        return SCHEMAS[schema]
    except KeyError:
        raise ValueError(f"unknown schema id {schema!r}; known: {', '.join(SCHEMAS)}") from None


def schema_for_payload_type(code: int) -> Optional[str]:
    """Schema id a payload type implies, or None when the session decides (0x8001)."""
    p = PAYLOAD_TYPES.get(code)
    return p.schema if p else None


def payload_type_for_schema(schema: str) -> int:
    info = schema_info(schema)
    if info.payload_type is None:
        raise ValueError(f"schema {schema!r} is not carried in V2GTP on its own")
    return info.payload_type


def schema_for_protocol_namespace(namespace: str) -> Optional[str]:
    """Schema id for a ProtocolNamespace offered in SupportedAppProtocolReq."""
    for s in SCHEMAS.values():
        if s.protocol_namespace == namespace:
            return s.id
    return None
