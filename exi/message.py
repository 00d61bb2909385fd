"""Base class of every generated message class."""
from __future__ import annotations

from enum import Enum


class V2GEnum(str, Enum):
    """Base of the generated enumerations: str subclasses whose str() is the XSD value."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Message:
    """A decoded or hand-built EXI element.  Subclasses are generated from the XSDs:
    fields are the XSD attribute and element names, `value` holds simple content."""

    __slots__ = ()
    _fields: tuple = ()
    _schema_id: str = ""
    _element = None          # qname index, set on classes of global elements

    def __eq__(self, other):
        if type(other) is not type(self) and not (
                isinstance(other, Message) and other._fields == self._fields
                and other._schema_id == self._schema_id):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None

    def __repr__(self):
        parts = [f"{f}={getattr(self, f)!r}" for f in self._fields if getattr(self, f) is not None]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __getstate__(self):
        return tuple(getattr(self, f) for f in self._fields)

    def __setstate__(self, state):
        for f, v in zip(self._fields, state):
            object.__setattr__(self, f, v)


class ElementValue(Message):
    """A document or fragment whose root element has a simple type: its name and value."""

    __slots__ = ("name", "value", "_schema", "_qname")
    _fields = ("name", "value")

    def __init__(self, name: str, value, schema: str = "", qname: int = -1):
        self.name = name
        self.value = value
        self._schema = schema
        self._qname = qname

    @property
    def _schema_id(self):
        return self._schema


class AnyElement(Message):
    """An element the schema does not declare, reached through a wildcard (SE(*)).

    name and type are (namespace, local name) pairs (type: the xsi:type, if any);
    attributes is a list of ((namespace, local name), value) in stream order; content a
    list of strings (character content) and elements."""

    __slots__ = ("name", "type", "attributes", "content")
    _fields = ("name", "type", "attributes", "content")

    def __init__(self, name, type=None, attributes=None, content=None):
        self.name = tuple(name)
        self.type = tuple(type) if type is not None else None
        self.attributes = list(attributes or [])
        self.content = list(content or [])
