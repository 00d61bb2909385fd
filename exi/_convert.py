# cython: boundscheck=True, wraparound=True
"""Message objects <-> JSON-style dicts and namespace-qualified XML.

The dict form follows the JSON conventions of the `iso15118` package: XSD names as keys,
attributes as plain keys, `value` for simple content beside attributes, hexBinary as
upper-case hex, base64Binary as base64, lists for elements that may repeat.

Plain Python that an install also compiles with Cython (as it is: about twice as fast),
keeping Python's indexing semantics (the directive above).
"""
from __future__ import annotations

import base64
import binascii
import math
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from ._kinds import (DT_BASE64, DT_BOOL, DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT, DT_LIST,
                     DT_NBIT, DT_STRING, DT_UINT, F_ANY, F_ATTRIBUTE, F_CONTENT, F_ELEMENT, F_VALUE)
from ._content import children as _content_children
from ._schema import WHITESPACE, Schema, get_schema
from .errors import DecodeError, EncodeError
from .message import AnyElement, ElementValue, Message

MAX_DEPTH = 200     # nesting bound, the same as decode/encode (exi/_engine.py)

# --- values -------------------------------------------------------------------------------


def _json_value(dt, v):
    k = dt.kind
    if k == DT_HEX:
        return bytes(v).hex().upper()
    if k == DT_BASE64:
        return base64.b64encode(bytes(v)).decode("ascii")
    if k == DT_ENUM:
        return v.value if isinstance(v, Enum) else v
    if k == DT_DECIMAL:
        return str(v)
    if k == DT_LIST:
        return [_json_value(dt.item, x) for x in v]
    return v


def _from_json_value(dt, v, where):
    k = dt.kind
    try:
        if k == DT_HEX:
            if isinstance(v, (bytes, bytearray)):
                return bytes(v)
            return bytes.fromhex(v)
        if k == DT_BASE64:
            if isinstance(v, (bytes, bytearray)):
                return bytes(v)
            return base64.b64decode(v, validate=True)
        if k == DT_ENUM:
            i = dt.index_of.get(v)
            if i is None:
                raise EncodeError(f"{v!r} is not one of the enumeration values", where)
            return dt.members[i]
        if k in (DT_NBIT, DT_UINT, DT_INT):
            if isinstance(v, bool) or not isinstance(v, int):
                if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
                    return int(v)
                raise EncodeError(f"expected an integer, got {v!r}", where)
            return v
        if k == DT_BOOL:
            if isinstance(v, bool):
                return v
            if v in ("true", "1"):
                return True
            if v in ("false", "0"):
                return False
            raise EncodeError(f"expected a boolean, got {v!r}", where)
        if k == DT_DECIMAL:
            return Decimal(str(v))
        if k == DT_FLOAT:
            return float(v)
        if k == DT_LIST:
            return [_from_json_value(dt.item, x, where) for x in v]
        if k == DT_STRING:
            if not isinstance(v, str):
                raise EncodeError(f"expected a string, got {type(v).__name__}", where)
            return v
    except (ValueError, TypeError, binascii.Error, InvalidOperation) as e:
        if isinstance(e, EncodeError):
            raise
        raise EncodeError(f"bad value {v!r}: {e}", where) from None
    return v


def _xml_text(dt, v) -> str:
    k = dt.kind
    if k == DT_BOOL:
        return "true" if v else "false"
    if k == DT_HEX:
        return bytes(v).hex().upper()
    if k == DT_BASE64:
        return base64.b64encode(bytes(v)).decode("ascii")
    if k == DT_ENUM:
        return v.value if isinstance(v, Enum) else str(v)
    if k == DT_LIST:
        return " ".join(_xml_text(dt.item, x) for x in v)
    if k == DT_FLOAT:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "INF" if v > 0 else "-INF"
        return repr(v).replace("e", "E")
    try:
        return str(v)
    except ValueError:      # an integer beyond str()'s 4300 digits (no V2G schema allows one)
        raise EncodeError(f"a {v.bit_length()}-bit integer is too long to write as text") from None


def whitespace_normalized(text: str, facet: str) -> str:
    """XML Schema whiteSpace normalisation (Part 2, 4.3.6) of a lexical value."""
    if facet in ("replace", "collapse"):
        text = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    if facet == "collapse":
        text = " ".join(x for x in text.split(" ") if x)
    return text


def _parse_text(dt, text: str, where):
    k = dt.kind
    if k == DT_STRING:
        facet = WHITESPACE.get(id(dt))
        return whitespace_normalized(text, facet) if facet else text
    t = text.strip()
    if not t and k not in (DT_HEX, DT_BASE64, DT_LIST):
        return ""          # an empty element of a typed value (see _engine.empty_value)
    try:
        if k in (DT_NBIT, DT_UINT, DT_INT):
            return int(t)
        if k == DT_BOOL:
            if t in ("true", "1"):
                return True
            if t in ("false", "0"):
                return False
            raise ValueError("not a boolean")
        if k == DT_HEX:
            return bytes.fromhex(t)
        if k == DT_BASE64:
            return base64.b64decode("".join(t.split()), validate=True)
        if k == DT_ENUM:
            i = dt.index_of.get(t)
            if i is None:
                raise ValueError("not one of the enumeration values")
            return dt.members[i]
        if k == DT_DECIMAL:
            return Decimal(t)
        if k == DT_FLOAT:
            return float({"INF": "inf", "-INF": "-inf", "NaN": "nan"}.get(t, t))
        if k == DT_LIST:
            return [_parse_text(dt.item, x, where) for x in t.split()]
    except (ValueError, binascii.Error, InvalidOperation) as e:
        raise EncodeError(f"bad value {text!r}: {e}", where) from None
    return t


def _too_deep(where: str = ""):
    """Nesting is bounded as in decode/encode: deeper content would exhaust the C stack."""
    return EncodeError(f"content nested deeper than {MAX_DEPTH} levels", where)


# --- dicts --------------------------------------------------------------------------------


def to_dict(message: Message) -> dict:
    """{root element name: content} in the iso15118 package's JSON conventions."""
    return _to_dict(message, 0)


def _to_dict(message, depth):
    if not isinstance(message, Message):
        raise TypeError(f"expected a message object, got {type(message).__name__}")
    if depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(message, AnyElement):
        return {message.name[1]: _any_to_dict(message, depth)}
    s = get_schema(message._schema_id)
    if isinstance(message, ElementValue):
        return {message.name: _json_value(_element_value_dt(s, message), message.value)}
    q = type(message)._element
    content = _obj_to_dict(s, message, depth)
    if q is None:
        return content
    return {s.qnames[q][1]: content}


def _any_to_dict(el, depth) -> dict:
    """An undeclared element: namespace, xsi:type, attributes by local name, content list."""
    out = {}
    if el.name[0]:
        out["namespace"] = el.name[0]
    if el.type is not None:
        out["type"] = el.type[1]
    for (uri, local), v in el.attributes:
        out[f"{{{uri}}}{local}" if uri else local] = v
    items = [x if isinstance(x, str) else _to_dict(x, depth + 1) for x in el.content]
    if items:
        out["content"] = items
    return out


def _value_converter(dt):
    """A function turning a decoded value into its JSON form, or None where it already is."""
    k = dt.kind
    if k == DT_HEX:
        return lambda v: bytes(v).hex().upper()
    if k == DT_BASE64:
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    if k == DT_ENUM:
        return lambda v: getattr(v, "_value_", v)
    if k == DT_DECIMAL:
        return str
    if k == DT_LIST:
        item = _value_converter(dt.item)
        return (lambda v: [item(x) for x in v]) if item else list
    return None


def _dict_plan(s: Schema, cls) -> list:
    """Per class, once: (field, is list, value converter, nested class or None, is any
    (True) or ordered content (F_CONTENT))."""
    plan = cls.__dict__.get("_dict_plan_")
    if plan is None:
        plan = []
        for (name, kind, is_list, q, ref), g in zip(cls._field_rows, cls._field_grammars):
            if kind == F_ELEMENT:
                if g.simple:
                    plan.append((name, is_list, _value_converter(g.dt), False, False))
                else:
                    plan.append((name, is_list, None, True, False))
            elif kind == F_ANY:
                plan.append((name, True, None, False, True))
            elif kind == F_CONTENT:
                plan.append((name, True, None, False, F_CONTENT))
            else:
                plan.append((name, False, _value_converter(s.datatypes[ref]), False, False))
        cls._dict_plan_ = plan
    return plan


def _obj_to_dict(s: Schema, obj, depth) -> dict:
    if depth > MAX_DEPTH:
        raise _too_deep()
    out = {}
    for name, is_list, conv, nested, is_any in _dict_plan(s, type(obj)):
        v = getattr(obj, name)
        if v is None:
            continue
        if is_any == F_CONTENT:
            v = [_content_item_to_dict(s, type(obj), x, depth) for x in v]
        elif nested:
            v = [_obj_to_dict(s, x, depth + 1) for x in v] if is_list else _obj_to_dict(s, v, depth + 1)
        elif is_any:
            v = [x if isinstance(x, str) else _to_dict(x, depth + 1) for x in v]
        elif conv is not None:
            v = [conv(x) for x in v] if is_list else conv(v)
        elif is_list:
            v = list(v)
        out[name] = v
    return out


def _content_child(s: Schema, cls, item):
    """(qname index, Grammar, item class) of a declared child of ordered content, or None."""
    kids = _content_children(s, cls)
    if isinstance(item, ElementValue) and item._qname >= 0 and item._schema == s.id:
        return kids.get(s.qnames[item._qname])
    local = item.name if isinstance(item, ElementValue) else item
    return next((v for qn, v in kids.items() if qn[1] == local), None)


def _content_item_to_dict(s: Schema, cls, item, depth):
    """An item of ordered content: text as a string, an element as {name: content}."""
    if isinstance(item, str):
        return item
    if isinstance(item, ElementValue):
        if isinstance(item.value, Message):
            return {item.name: _obj_to_dict(s, item.value, depth + 1)}
        kid = _content_child(s, cls, item)
        if kid is not None:
            return {item.name: _json_value(kid[1].dt, item.value)}
    if not isinstance(item, Message):
        raise EncodeError(f"content items are element objects, exi.ElementValue, exi.AnyElement "
                          f"or str, not {type(item).__name__}")
    return _to_dict(item, depth + 1)


def _dict_to_content_item(s: Schema, cls, x, where, depth):
    if isinstance(x, str):
        return x
    if isinstance(x, dict) and len(x) == 1:
        (name, v), = x.items()
        kid = _content_child(s, cls, name)
        if kid is not None:
            q, g, icls = kid
            path = f"{where}/{name}"
            if g.simple:
                return ElementValue(name, _from_json_value(g.dt, v, path), s.id, q)
            obj = _dict_to_obj(s, icls or g.cls, v, path, depth + 1)
            return obj if icls is not None else ElementValue(name, obj, s.id, q)
    return _dict_to_any(s, x, where, depth + 1)


def from_dict(d, schema: str) -> Message:
    """Build a message object from its dict form ({root element name: content})."""
    return _from_dict(d, schema, 0)


def _from_dict(d, schema, depth):
    s = get_schema(schema)
    if not isinstance(d, dict) or len(d) != 1:
        raise EncodeError("expected a dict with exactly one key, the root element name")
    (name, content), = d.items()
    for q, gi, c in s.doc_elements:
        if s.qnames[q][1] == name and s.grammars[gi].simple:
            return ElementValue(name, _from_json_value(s.grammars[gi].dt, content, "/" + name), s.id, q)
    cls = _root_class(s, name)
    return _dict_to_obj(s, cls, content, "/" + name, depth)


def _dict_to_any(s: Schema, d, where, depth):
    """Wildcard content: a global element of the schema, or an undeclared AnyElement."""
    if not isinstance(d, dict) or len(d) != 1:
        raise EncodeError("wildcard items are strings or {element name: content}", where)
    if depth > MAX_DEPTH:
        raise _too_deep(where)
    (name, content), = d.items()
    if not isinstance(name, str):
        raise EncodeError(f"element names are strings, got {type(name).__name__}", where)
    if isinstance(content, dict) and ("namespace" in content or "type" in content or
                                      "content" in content or not _is_global(s, name)):
        attrs, items = [], []
        for k, v in content.items():
            if not isinstance(k, str) or not (isinstance(v, str) or k == "content" and isinstance(v, list)):
                raise EncodeError(f"undeclared element {name}: {k!r} must be a string"
                                  f"{' or a list' if k == 'content' else ''}", where)
            if k == "content":
                items = [x if isinstance(x, str) else _dict_to_any(s, x, f"{where}/{name}", depth + 1)
                         for x in v]
            elif k not in ("namespace", "type"):
                uri, local = (k[1:].split("}", 1) if k.startswith("{") and "}" in k else ("", k))
                attrs.append(((uri, local), v))
        typ = content.get("type")
        return AnyElement((content.get("namespace", ""), name),
                          ("http://www.w3.org/2001/XMLSchema", typ) if typ else None, attrs, items)
    return _from_dict(d, s.id, depth + 1)


def _is_global(s: Schema, name: str) -> bool:
    return any(s.qnames[q][1] == name for q, _, _ in s.doc_elements)


def _root_class(s: Schema, name: str):
    for q, gi, cls in s.doc_elements + s.fragment_elements:
        if s.qnames[q][1] == name and cls is not None:
            return cls
    raise EncodeError(f"{name!r} is not a global element of schema {s.id!r}")


def _dict_to_obj(s: Schema, cls, content, where, depth):
    if not isinstance(content, dict):
        raise EncodeError(f"expected an object for {cls.__name__}, got {type(content).__name__}", where)
    if depth > MAX_DEPTH:
        raise _too_deep(where)
    obj = cls.__new__(cls)
    known = set()
    for (name, kind, is_list, q, ref), g in zip(cls._field_rows, cls._field_grammars):
        known.add(name)
        v = content.get(name)
        if v is not None:
            path = f"{where}/{name}"
            if kind == F_ELEMENT:
                if g.simple:
                    conv = (lambda x, dt=g.dt, p=path: _from_json_value(dt, x, p))
                else:
                    conv = (lambda x, c=g.cls, p=path: _dict_to_obj(s, c, x, p, depth + 1))
                if is_list:
                    if not isinstance(v, list):
                        v = [v]
                    v = [conv(x) for x in v]
                else:
                    v = conv(v)
            elif kind == F_ANY:
                if not isinstance(v, list):
                    raise EncodeError("wildcard content is a list of strings and elements", path)
                v = [x if isinstance(x, str) else _dict_to_any(s, x, path, depth + 1) for x in v]
            elif kind == F_CONTENT:
                if not isinstance(v, list):
                    raise EncodeError("content must be a list", path)
                v = [_dict_to_content_item(s, cls, x, path, depth) for x in v]
            else:
                v = _from_json_value(s.datatypes[ref], v, path)
        object.__setattr__(obj, name, v)
    unknown = set(content) - known
    if unknown:
        raise EncodeError(f"unknown key(s) for {cls.__name__}: {', '.join(sorted(unknown))}", where)
    return obj


# --- XML ----------------------------------------------------------------------------------

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def to_xml(message: Message, *, pretty: bool = False) -> str:
    """Namespace-qualified XML of a message (validates against the schema's XSD)."""
    from lxml import etree
    if isinstance(message, AnyElement):
        root = _any_to_xml(message, None, 0)
        return etree.tostring(root, encoding="unicode", pretty_print=pretty)
    s = get_schema(message._schema_id)
    if isinstance(message, ElementValue):
        root = etree.Element(_tag(s, message._qname))
        _set_text(root, _xml_text(_element_value_dt(s, message), message.value), message.name)
        return etree.tostring(root, encoding="unicode")
    q = type(message)._element
    if q is None:
        raise EncodeError(f"{type(message).__name__} is a type, not an element")
    nsmap = {}
    for i, uri in enumerate(u for u in s.uris[4:]):
        nsmap[f"ns{i + 1}"] = uri
    root = etree.Element(_tag(s, q), nsmap=nsmap)
    _fill_xml(s, root, message, 0)
    return etree.tostring(root, encoding="unicode", pretty_print=pretty)


def _element_value_dt(s: Schema, message):
    i = s.root.index.get(message._qname)
    if i is not None:
        return s.root.grammars[i].dt
    _, gi, _ = s.fragment_elements[s.fragment_index[message._qname]]
    return s.grammars[gi].dt


def _set_text(el, text: str, where: str) -> None:
    try:
        el.text = text
    except ValueError:
        # EXI carries any Unicode code point; XML 1.0 has no way to write some (U+0000 ...)
        bad = next((f"U+{ord(c):04X}" for c in text if not _xml_char(c)), "?")
        raise EncodeError(f"the value contains {bad}, which XML 1.0 cannot represent", where) from None


def _set_tail(el, text: str, where: str) -> None:
    """Text after ``el`` (mixed content), refused like _set_text when XML 1.0 cannot hold it."""
    try:
        el.tail = text
    except ValueError:
        bad = next((f"U+{ord(c):04X}" for c in text if not _xml_char(c)), "?")
        raise EncodeError(f"the text contains {bad}, which XML 1.0 cannot represent", where) from None


def _xml_char(c: str) -> bool:
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def _any_to_xml(el, parent, depth):
    from lxml import etree
    if depth > MAX_DEPTH:
        raise _too_deep()
    tag = f"{{{el.name[0]}}}{el.name[1]}" if el.name[0] else el.name[1]
    nsmap = {"xsi": XSI, "xs": "http://www.w3.org/2001/XMLSchema"} if parent is None else None
    try:        # EXI carries any name and text; XML does not (control characters, "1a" ...)
        node = etree.Element(tag, nsmap=nsmap) if parent is None else etree.SubElement(parent, tag)
        if el.type is not None:
            prefix = "xs" if el.type[0] == "http://www.w3.org/2001/XMLSchema" else None
            node.set(f"{{{XSI}}}type", f"{prefix}:{el.type[1]}" if prefix else el.type[1])
        for (uri, local), v in el.attributes:
            node.set(f"{{{uri}}}{local}" if uri else local, v)
    except (ValueError, TypeError) as e:
        raise EncodeError(f"undeclared element {el.name[1]!r} cannot be written as XML: {e}") from None
    last = None
    for item in el.content:
        if isinstance(item, str):
            if last is None:
                _set_text(node, (node.text or "") + item, el.name[1])
            else:
                _set_tail(last, (last.tail or "") + item, el.name[1])
        elif isinstance(item, AnyElement):
            last = _any_to_xml(item, node, depth + 1)
        else:
            last = _schema_element_to_xml(item, node, depth + 1, el.name[1])
    return node


def _schema_element_to_xml(item, parent, depth, where):
    """A schema element inside undeclared content (what SE(qname) of anyType content
    decodes to: a message object or an ElementValue of a global element)."""
    from lxml import etree
    if not isinstance(item, Message):
        raise EncodeError(f"content of an undeclared element must be text, AnyElement or "
                          f"messages, not {type(item).__name__}", where)
    s = get_schema(item._schema_id)
    if isinstance(item, ElementValue):
        if item._qname < 0:
            raise EncodeError(f"{item.name} is not a global element of schema {s.id!r}", where)
        child = etree.SubElement(parent, _tag(s, item._qname))
        _set_text(child, _xml_text(_element_value_dt(s, item), item.value), item.name)
        return child
    q = type(item)._element
    if q is None:
        raise EncodeError(f"{type(item).__name__} is a type, not an element", where)
    child = etree.SubElement(parent, _tag(s, q))
    _fill_xml(s, child, item, depth)
    return child


def _tag(s: Schema, q: int) -> str:
    uri, local = s.qnames[q]
    return f"{{{uri}}}{local}" if uri else local


def _fill_xml(s: Schema, el, obj, depth):
    from lxml import etree
    if depth > MAX_DEPTH:
        raise _too_deep()
    cls = type(obj)
    for (name, kind, is_list, q, ref), g in zip(cls._field_rows, cls._field_grammars):
        v = getattr(obj, name)
        if v is None:
            continue
        if kind == F_ATTRIBUTE:
            text = _xml_text(s.datatypes[ref], v)
            try:
                el.set(_tag(s, q), text)
            except ValueError:
                raise EncodeError("the attribute value cannot be represented in XML 1.0", name) from None
        elif kind == F_VALUE:
            _set_text(el, _xml_text(s.datatypes[ref], v), name)
        elif kind == F_ELEMENT:
            for item in (v if is_list else (v,)):
                child = etree.SubElement(el, _tag(s, q))
                if g.simple:
                    _set_text(child, _xml_text(g.dt, item), name)
                else:
                    _fill_xml(s, child, item, depth + 1)
        elif kind == F_CONTENT:
            for item in v:
                _content_item_to_xml(s, cls, el, item, name, depth)
        elif kind == F_ANY:
            for item in v:
                if isinstance(item, str):
                    last = el[-1] if len(el) else None
                    if last is None:
                        _set_text(el, (el.text or "") + item, name)
                    else:
                        _set_tail(last, (last.tail or "") + item, name)
                elif isinstance(item, AnyElement):
                    _any_to_xml(item, el, depth + 1)
                else:
                    child = etree.SubElement(el, _tag(s, type(item)._element))
                    _fill_xml(s, child, item, depth + 1)


def _content_item_to_xml(s: Schema, cls, el, item, where, depth):
    from lxml import etree
    if isinstance(item, str):
        last = el[-1] if len(el) else None
        if last is None:
            _set_text(el, (el.text or "") + item, where)
        else:
            _set_tail(last, (last.tail or "") + item, where)
    elif isinstance(item, AnyElement):
        _any_to_xml(item, el, depth + 1)
    elif isinstance(item, ElementValue):
        kid = _content_child(s, cls, item)
        if kid is not None:
            q, g = kid[0], kid[1]
        elif item._qname >= 0 and item._schema == s.id:
            q, g = item._qname, None
        else:
            raise EncodeError(f"{item.name} is not a child element here", where)
        child = etree.SubElement(el, _tag(s, q))
        if isinstance(item.value, Message):
            _fill_xml(s, child, item.value, depth + 1)
        else:
            dt = g.dt if g is not None else _element_value_dt(s, item)
            _set_text(child, _xml_text(dt, item.value), item.name)
    elif isinstance(item, Message) and type(item)._element is not None:
        child = etree.SubElement(el, _tag(s, type(item)._element))
        _fill_xml(s, child, item, depth + 1)
    else:
        raise EncodeError(f"content items are element objects, exi.ElementValue, exi.AnyElement "
                          f"or str, not {type(item).__name__}", where)


def from_xml(text, schema: str) -> Message:
    """Parse namespace-qualified XML (str or bytes) into a message object."""
    from lxml import etree
    s = get_schema(schema)
    data = text.encode("utf-8") if isinstance(text, str) else text
    # V2G messages have no DTD; entity declarations would read local files (external
    # entities) or expand without bound (billion laughs): refuse them, saying why.
    refused = EncodeError("XML with a DOCTYPE is refused: V2G messages have no DTD, and its entity "
                          "declarations could read local files or expand without bound")
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        if b"<!DOCTYPE" in data:
            raise refused from None
        raise EncodeError(f"not well-formed XML: {e}") from None
    if root.getroottree().docinfo.internalDTD is not None or root.getroottree().docinfo.doctype:
        raise refused
    try:
        return _xml_root_to_obj(s, schema, root)
    except EncodeError:
        raise
    except ValueError as e:     # lxml refuses some names it parsed (e.g. "a:b:c", "xmlns:") as QNames
        raise EncodeError(f"not a valid XML name: {e}") from None


def _xml_root_to_obj(s: Schema, schema: str, root) -> Message:
    from lxml import etree
    qn = etree.QName(root)
    key = (qn.namespace or "", qn.localname)
    q = s.qname_index.get(key)
    cls = None
    if q is not None:
        for dq, gi, c in s.doc_elements + s.fragment_elements:
            if dq == q:
                cls = c
                break
    if cls is None:
        raise EncodeError(f"{{{key[0]}}}{key[1]} is not a global element of schema {schema!r}")
    return _xml_to_obj(s, cls, root, "/" + key[1])


def _xml_to_any(el) -> AnyElement:
    from lxml import etree
    q = etree.QName(el)
    typ = None
    attrs = []
    for k, v in el.attrib.items():
        try:
            aq = etree.QName(k)
        except ValueError:              # lxml keeps some malformed names (e.g. "xmlns:") as attributes
            raise EncodeError(f"unexpected attribute {k!r} in {q.localname}") from None
        if aq.namespace == XSI and aq.localname == "type":
            prefix, _, local = v.rpartition(":")
            typ = (el.nsmap.get(prefix or None, ""), local)
            continue
        attrs.append(((aq.namespace or "", aq.localname), v))
    content = [el.text] if el.text else []
    for child in el:
        if isinstance(child.tag, str):
            content.append(_xml_to_any(child))
        if child.tail:
            content.append(child.tail)
    return AnyElement((q.namespace or "", q.localname), typ, attrs, content)


def _xml_to_obj(s: Schema, cls, el, where):
    from lxml import etree
    obj = cls.__new__(cls)
    vals = {}
    by_tag = {}
    for (name, kind, is_list, q, ref), g in zip(cls._field_rows, cls._field_grammars):
        if kind == F_ATTRIBUTE:
            raw = el.get(_tag(s, q))
            if raw is not None:
                vals[name] = _parse_text(s.datatypes[ref], raw, f"{where}/@{name}")
        elif kind == F_VALUE:
            vals[name] = _parse_text(s.datatypes[ref], el.text or "", where)
        elif kind == F_ELEMENT:
            by_tag[s.qnames[q]] = (name, is_list, g)
    for attr in el.attrib:
        try:
            aq = etree.QName(attr)
        except ValueError:              # lxml keeps some malformed names (e.g. "xmlns:") as attributes
            raise EncodeError(f"unexpected attribute {attr!r}", where) from None
        if aq.namespace == XSI:
            continue
        if not any(f[1] == F_ATTRIBUTE and s.qnames[f[3]] == (aq.namespace or "", aq.localname)
                   for f in cls._field_rows):
            raise EncodeError(f"unexpected attribute {attr}", where)
    content_field = next((f[0] for f in cls._field_rows if f[1] == F_CONTENT), None)
    if content_field is not None:
        vals[content_field] = _xml_to_content(s, cls, el, where) or None
        for name in cls._fields:
            object.__setattr__(obj, name, vals.get(name))
        return obj
    any_field = next((f[0] for f in cls._field_rows if f[1] == F_ANY), None)
    if any_field is not None and el.text and el.text.strip():
        vals.setdefault(any_field, []).append(el.text)
    for child in el:
        if not isinstance(child.tag, str):
            continue   # comments, processing instructions
        cq = etree.QName(child)
        ent = by_tag.get((cq.namespace or "", cq.localname))
        if ent is None and any_field is not None:
            # wildcard content: a global element of the schema, else an AnyElement
            q = s.qname_index.get((cq.namespace or "", cq.localname))
            c = next((c for dq, _, c in s.doc_elements if dq == q and c is not None), None)
            vals.setdefault(any_field, []).append(
                _xml_to_obj(s, c, child, f"{where}/{cq.localname}") if c is not None else _xml_to_any(child))
            if child.tail and child.tail.strip():
                vals[any_field].append(child.tail)
            continue
        if ent is None:
            raise EncodeError(f"unexpected element {child.tag}", where)
        name, is_list, g = ent
        if any_field is not None and child.tail and child.tail.strip():
            vals.setdefault(any_field, []).append(child.tail)   # mixed text after a declared child
        path = f"{where}/{cq.localname}"
        if g.simple:
            v = _parse_text(g.dt, child.text or "", path)
        else:
            v = _xml_to_obj(s, g.cls, child, path)
        if is_list:
            vals.setdefault(name, []).append(v)
        elif name in vals:
            raise EncodeError(f"element {cq.localname} given twice", where)
        else:
            vals[name] = v
    for name in cls._fields:
        object.__setattr__(obj, name, vals.get(name))
    return obj


def _xml_to_content(s: Schema, cls, el, where) -> list:
    """The children and text of an element with ordered content, in document order.
    Whitespace-only text is formatting, not content (as in element-only content)."""
    from lxml import etree
    kids = _content_children(s, cls)
    out = []
    if el.text and el.text.strip():
        out.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            cq = etree.QName(child)
            qn = (cq.namespace or "", cq.localname)
            path = f"{where}/{cq.localname}"
            kid = kids.get(qn)
            if kid is not None:
                q, g, icls = kid
                if g.simple:
                    out.append(ElementValue(qn[1], _parse_text(g.dt, child.text or "", path), s.id, q))
                else:
                    obj = _xml_to_obj(s, icls or g.cls, child, path)
                    out.append(obj if icls is not None else ElementValue(qn[1], obj, s.id, q))
            else:
                out.append(_xml_to_wildcard(s, child, path))
        if child.tail and child.tail.strip():
            out.append(child.tail)
    return out


def _xml_to_wildcard(s: Schema, child, where):
    """Wildcard content: a global element of the schema (its object, or an ElementValue
    of a simple-typed one), else an AnyElement."""
    from lxml import etree
    cq = etree.QName(child)
    q = s.qname_index.get((cq.namespace or "", cq.localname))
    i = s.root.index.get(q, -1) if q is not None else -1
    if i < 0:
        return _xml_to_any(child)
    g = s.root.grammars[i]
    if g.simple:
        return ElementValue(cq.localname, _parse_text(g.dt, child.text or "", where), s.id, q)
    return _xml_to_obj(s, s.root.classes[i], child, where)
