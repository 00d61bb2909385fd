"""Numeric codes shared by the schema compiler (codegen/) and the runtime tables.

Changing a number here changes every generated table: regenerate with `python -m codegen`.
"""
# production kinds, in EXIficient's event order (the order of first-level event codes)
P_AT, P_AT_NS, P_AT_ANY, P_SE, P_SE_NS, P_SE_ANY, P_EE, P_CH, P_CH_MIXED = range(9)
# SE(qname) of a child kept in an ordered content list (same event code as P_SE)
P_SE_ITEM = 9

# state kinds: they fix the non-strict second-level productions (EXI 8.5.4.4.1)
S_FIRST, S_START, S_CONTENT = range(3)

# datatype kinds (EXI 7.1)
(DT_BOOL, DT_UINT, DT_INT, DT_NBIT, DT_ENUM, DT_STRING, DT_HEX, DT_BASE64,
 DT_DECIMAL, DT_FLOAT, DT_DATETIME, DT_LIST, DT_QNAME) = range(13)

# field kinds of message classes
F_ATTRIBUTE, F_ELEMENT, F_VALUE, F_ANY = range(4)
# the ordered children of a type whose document order carries information (codegen/order.py)
F_CONTENT = 4
