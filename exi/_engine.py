"""The EXI interpreter: walks the generated grammar tables to encode and decode.

One hand-written engine serves every schema; the schema-specific knowledge lives in the
generated tables (exi/_tables) and classes (exi/messages).  Written in Cython's pure-Python
mode: `_engine.pxd` gives the C types when compiled, and the file also runs as plain Python.
Where the two paths differ (`cython.compiled`), the compiled one reads and writes the
message objects' __slots__ directly through their member-descriptor offsets instead of
getattr/setattr; both paths do the same thing.

The V2G EXI profile it implements (checked against EXIficient-made vectors):
- header byte 0x80 (no cookie, no options), bit-packed, schema-informed, non-strict;
- every schema-informed grammar state has second-level productions (EXI 8.5.4.4.1), so
  first-level event codes are ceil(log2(n + 1)) bits wide;
- the encoder writes every string value as a literal, like EXIficient configured with
  valuePartitionCapacity = 0; the decoder keeps the value string table of EXI 7.3.3, so
  it also reads streams whose encoder used local or global hits;
- an empty string or binary value, and empty simple content, is written as an undeclared
  EE (second level): what an XML-driven encoder writes for <a></a>.
"""
import cython

from ._bits import BitReader, BitWriter, EndOfStream
from ._grammar import FIELD_LIST, L2_EE, _L2_NAMES, Datatype, Grammar, Prod, Root, State, coding_length
from ._kinds import (DT_BASE64, DT_BOOL, DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT, DT_LIST,
                     DT_NBIT, DT_STRING, DT_UINT, F_ANY, F_ATTRIBUTE, F_CONTENT, F_ELEMENT, F_VALUE,
                     P_AT, P_CH, P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS, S_CONTENT)
from .errors import DecodeError, EncodeError, TrailingDataError
from .message import ElementValue, Message

if cython.compiled:
    from cython.cimports.cpython.long import PyLong_AsLongLongAndOverflow
    from cython.cimports.exi._bits import exi_int, peek_bits, read_bit1, read_bits, read_uint_obj
    from cython.cimports.cpython.tuple import PyTuple_GET_ITEM, PyTuple_GET_SIZE
    from cython.cimports.cpython.list import PyList_GET_ITEM
    from cython.cimports.exi._slots import (exi_new_list1, exi_new_message, exi_next_field, exi_use_message_dealloc, get_slot,
                                            new_instance, set_slot, slot_ptr)

# The layers above the engine register here what the engine hands over to them, when
# they are imported (exi/__init__ imports them all): the schema loader (exi/_schema.py),
# schema-less content (_generic.py), the relaxed fragment grammar (_fragment.py), children
# kept in document order (_content.py) and encode() of what is not a message object
# (_api.py).  The engine imports none of them: every import in the codec core points down.
_load_schema = None
_generic = None
_fragment = None
_content = None
_encode_other = None
_HOOKS = ("_load_schema", "_generic", "_fragment", "_content", "_encode_other")


def adopt_message_class(cls):
    """Give a generated slots-only message class the lean tp_dealloc that keeps freed
    instances as spares for exi_new_message (exi/_slots.pxd).  Called by the schema loader
    for every class it binds.  It must be this module's copy: the C helpers of _slots.pxd
    are static, so each compiled module that cimports them has its own functions and spare
    lists, and exi_new_message recognises only its own dealloc."""
    if cython.compiled:
        exi_use_message_dealloc(cls)


def register(name, handler):
    """Install one of the _HOOKS (called by the module that provides it)."""
    if name not in _HOOKS:
        raise ValueError(f"unknown engine hook {name!r}")
    globals()[name] = handler


SCHEMAS = {}        # schema id -> loaded Schema (exi._schema keeps its cache here)
_SCHEMAS = SCHEMAS  # the same dict, typed for the compiled entry points (see _engine.pxd)
MAX_DEPTH = 200   # far deeper than any V2G schema nests; guards the recursion
LL_FLOOR = -0x7FFFFFFFFFFFFFFF     # lowest 64-bit integer of the fast paths (a C constant when compiled)


@cython.locals(b=cython.int)
def _shown(v) -> str:
    """An integer for an error message: str() refuses those beyond 4300 digits."""
    return str(v) if -(1 << 64) < v < 1 << 64 else f"{'-' if v < 0 else ''}{abs(v).bit_length()}-bit integer"


# ---------------------------------------------------------------------------------------
# decoding

def _levels_below(schema, qpath, d0, depth):
    """The path of the levels (d0, depth] that child_element() recorded in qpath (compiled
    engine only; its C signature is in _engine.pxd)."""
    inner = ""
    for k in range(d0 + 1, depth + 1):
        if qpath[k] != cython.NULL:
            inner += "/" + schema.qname_local(cython.cast(object, qpath[k]))
    return inner


@cython.cclass
class Decoder:
    """Decodes one EXI stream against a compiled schema."""

    def __init__(self, schema, data):
        self.schema = schema
        self.root = schema.root
        self.r = BitReader(data)
        self.global_values = None   # the value string tables (7.3.3), made at the first string
        self.local_values = None
        self.depth = 0
        self.generic = None     # qname tables and built-in grammars, made when first needed
        self.any_root = False   # document(): only the message roots of the set

    def error(self, msg):
        return DecodeError(msg, "", self.r.pos)

    def header(self):
        r = self.r
        if r.nbytes and r.data[0] == 0x80:     # the V2G header: 10, no options, version 1
            r.pos = 8
            return None
        if r.remaining() >= 32 and r.data[0] == 0x24 and r.data.startswith(b"$EXI"):
            r.pos = 32
        if r.read(2) != 2:
            raise self.error("not an EXI stream: distinguishing bits are not 10")
        if r.read_bit():
            raise self.error("EXI options in the header are not supported (the V2G profile has none)")
        if r.read_bit():
            raise self.error("preview versions of EXI are not supported")
        if r.read(4) != 0:
            raise self.error("unsupported EXI version (only 1.0)")

    @cython.locals(code=cython.ulonglong, root=Root, g=Grammar)
    def document(self):
        root = self.root
        code = self.r.read(root.width)
        if code >= root.n:
            if code == root.n:
                raise self.error("SE(*) at document level: the root element is not declared in the schema")
            raise self.error(f"invalid event code {code} in DocContent")
        if not self.any_root and not root.is_message[code]:
            raise self.error(f"the root element {self.schema.qname_local(root.qnames[code])} is not a "
                             f"message of {self.schema.id!r} (expected {root.message_names}); "
                             "any_root=True decodes any global element")
        # DocEnd has only ED: zero bits
        g = root.grammars[code]
        v = self.element(g, root.classes[code], root.qnames[code])
        if g.simple:            # a root element of simple type
            q = root.qnames[code]
            return ElementValue(self.schema.qnames[q][1], v, self.schema.id, q)
        return v

    def fragment(self):
        schema = self.schema
        n = len(schema.fragment_elements)
        width = coding_length(n + 2)
        items = []
        while True:
            code = self.r.read(width)
            if code == n + 1:
                break
            if code == n:
                # SE(*): an element the schema does not declare
                items.append(_generic.decode_any(self))
                continue
            if code > n:
                raise self.error(f"invalid event code {code} in FragmentContent")
            qname, gi, cls = schema.fragment_elements[code]
            if gi < 0:
                # declared with several types: the relaxed Element Fragment grammar (8.5.3)
                items.append(_fragment.decode(self, qname))
                continue
            v = self.element(schema.grammars[gi], cls, qname)
            if schema.grammars[gi].simple:
                v = ElementValue(schema.qnames[qname][1], v, schema.id, qname)
            items.append(v)
        return items

    def located(self, e, qname):
        e.path = "/" + self.schema.qname_local(qname) + e.path
        e.args = (f"{e.path}: {e.reason}" + (f" at bit {e.bit_offset}" if e.bit_offset >= 0 else ""),)
        return e

    @cython.locals(d0=cython.int)
    def element(self, g: Grammar, cls, qname):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise self.error("elements nested too deeply")
        d0 = self.depth
        try:
            if g.simple:
                v = self.simple_element(g, qname)
            else:
                v = self.complex_element(g, cls, qname)
        except DecodeError as e:
            e.path = "/" + self.schema.qname_local(qname) + self.inner_path(d0) + e.path
            e.args = (f"{e.path}: {e.reason}" + (f" at bit {e.bit_offset}" if e.bit_offset >= 0 else ""),)
            raise
        except EndOfStream:
            err = DecodeError("unexpected end of the stream",
                              "/" + self.schema.qname_local(qname) + self.inner_path(d0), self.r.pos)
            raise err from None
        self.depth -= 1
        return v

    @cython.locals(d0=cython.int)
    def inner_path(self, d0):
        """On an error in element() at depth d0: the names of the levels the compiled walk
        entered below it through child_element() (which have no handler of their own), as
        a path; the depth goes back to d0's parent."""
        inner = _levels_below(self.schema, self.qpath, d0, self.depth) if cython.compiled else ""
        self.depth = d0 - 1
        return inner

    def child_element(self, g: Grammar, cls, qname):
        """element() of a complex child for the compiled walk, without an exception
        handler of its own: its name is kept at its depth (qpath) for the handler of the
        nearest element() above, which puts it in the error's path (inner_path)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise self.error("elements nested too deeply")
        if cython.compiled:
            self.qpath[self.depth] = cython.cast(cython.pointer(PyObject), qname)
        v = self.complex_element(g, cls, qname)
        self.depth -= 1
        return v

    def simple_element(self, g: Grammar, qname):
        r: BitReader = self.r
        # FirstStartTag: CH is the only first-level production (1 bit with the escape)
        if r.read_bit() == 0:
            v = self.value(g.dt, qname)
            if r.read_bit() != 0:
                st: State = g.first.prods[0].next
                ev = self.second_level(st)
                raise self.error(f"undeclared {_L2_NAMES[ev]} after a simple value is not supported")
            return v
        ev = self.second_level(g.first)
        if ev == L2_EE:
            return self.empty_value(g.dt)
        raise self.error(f"undeclared {_L2_NAMES[ev]} in a simple-typed element is not supported")

    def second_level(self, st: State):
        code = self.r.read(st.width2)
        if code >= len(st.l2):
            raise self.error(f"invalid second-level event code {code}")
        return st.l2[code]

    def empty_value(self, dt: Datatype):
        if dt.kind == DT_HEX or dt.kind == DT_BASE64:
            return b""
        if dt.kind == DT_LIST:
            return []
        # <a></a> for a string, or for a non-string type (which EXIficient also writes and
        # reads as an undeclared EE): an empty lexical value, so it re-encodes identically
        return ""

    @cython.locals(r=BitReader, st=State, p=Prod, code=cython.ulonglong, i=cython.Py_ssize_t,
                   dt=Datatype, kind=cython.int, dk=cython.int, x=cython.ulonglong,
                   fast=cython.bint)
    def complex_element(self, g: Grammar, cls, qname):
        r = self.r
        if cython.compiled:
            if g.slot_lo >= 0:
                obj = exi_new_message(cls, g.slot_lo, g.nfields)
            else:
                obj = new_instance(cls)
                for i in range(g.nfields):
                    set_slot(obj, g.c_offsets[i], None)
            # the same walk as below, over the C mirror of the grammar (see freeze())
            cst: cython.pointer(CState) = cython.address(g.first.cs)
            cp: cython.pointer(CProd)
            while True:
                code = read_bits(r, cst.width)
                if code >= cst.n1:
                    self.undeclared(obj, g, cython.cast(State, cst.state), code)
                    return obj
                cp = cst.prods + code
                kind = cp.kind
                if kind == P_SE:
                    dk = cp.dt_kind
                    fast = False
                    if (dk == DT_NBIT or dk == DT_ENUM) and cp.nbits <= 55 and r.pos + cp.nbits + 2 <= r.nbits:
                        # an n-bit or enumeration leaf: CH, the value and EE in one read
                        x = peek_bits(r, cp.nbits + 2)
                        if x >> (cp.nbits + 1) == 0 and x & 1 == 0:
                            x = (x >> 1) & ((cython.cast(cython.ulonglong, 1) << cp.nbits) - 1)
                            if dk == DT_NBIT:
                                v = exi_int(cp.lo + cython.cast(cython.longlong, x))
                                fast = True
                            elif cp.nbits > 0 and x < PyTuple_GET_SIZE(cython.cast(tuple, cp.members)):
                                v = cython.cast(tuple, cp.members)[x]
                                fast = True
                            if fast:
                                r.pos += cp.nbits + 2
                    if fast:
                        pass        # (anything else, errors included, the general way)
                    elif dk >= 0 and read_bit1(r) == 0:
                        # the common leaf: CH (1 bit), the value, EE (1 bit), inlined
                        if dk == DT_NBIT:
                            v = exi_int(cp.lo + cython.cast(cython.longlong, read_bits(r, cp.nbits)))
                        elif dk == DT_ENUM and cp.nbits > 0:
                            code = read_bits(r, cp.nbits)
                            if code >= len(cython.cast(tuple, cp.members)):
                                raise self.located(self.error(
                                    f"enumeration index {code} out of range "
                                    f"({len(cython.cast(tuple, cp.members))} values)"),
                                                   cython.cast(object, cp.qname))
                            v = cython.cast(tuple, cp.members)[code]
                        elif dk == DT_BOOL:
                            v = read_bit1(r) == 1
                        elif dk == DT_UINT:
                            v = read_uint_obj(r)
                        elif dk == DT_INT:
                            if read_bit1(r):
                                v = -read_uint_obj(r) - 1
                            else:
                                v = read_uint_obj(r)
                        else:
                            try:
                                v = self.value(cython.cast(Prod, cp.prod).dt, cython.cast(object, cp.qname))
                            except DecodeError as e:
                                raise self.located(e, cython.cast(object, cp.qname))
                        if read_bit1(r) != 0:
                            r.pos -= 1
                            raise self.located(self.error(
                                "undeclared content after a simple value is not supported"),
                                cython.cast(object, cp.qname))
                    elif dk >= 0:
                        r.pos -= 1
                        v = self.element(cython.cast(Grammar, cp.child), None, cython.cast(object, cp.qname))
                    else:
                        # child_element(), inlined: a complex child, its name kept at its depth
                        self.depth += 1
                        if self.depth > MAX_DEPTH:
                            self.depth -= 1
                            raise self.error("elements nested too deeply")
                        self.qpath[self.depth] = cp.qname
                        v = self.complex_element(cython.cast(Grammar, cp.child), cython.cast(object, cp.child_cls),
                                                 cython.cast(object, cp.qname))
                        self.depth -= 1
                    if cp.is_list:
                        lst = get_slot(obj, cp.offset)
                        if lst is None:
                            set_slot(obj, cp.offset, exi_new_list1(v))
                        else:
                            lst.append(v)
                    else:
                        set_slot(obj, cp.offset, v)
                elif kind == P_EE:
                    return obj
                else:
                    self.production(obj, g, cython.cast(Prod, cp.prod), qname)
                cst = cp.next
        obj = cls.__new__(cls)
        for name in g.names:
            object.__setattr__(obj, name, None)
        st = g.first
        while True:
            code = r.read(st.width)
            if code >= st.n1:
                self.undeclared(obj, g, st, code)
                return obj
            p = st.prods[code]
            if p.kind == P_SE:
                if p.simple and r.read_bit() == 0:
                    try:
                        v = self.value(p.dt, p.qname)
                    except DecodeError as e:
                        raise self.located(e, p.qname)
                    if r.read_bit() != 0:
                        r.pos -= 1
                        raise self.located(self.error(
                            "undeclared content after a simple value is not supported"), p.qname)
                elif p.simple:
                    r.pos -= 1
                    v = self.element(p.child, None, p.qname)
                else:
                    v = self.element(p.child, p.child.cls, p.qname)
                self.store(obj, g, p, v)
            elif p.kind == P_EE:
                return obj
            else:
                self.production(obj, g, p, qname)
            st = p.next

    def production(self, obj, g: Grammar, p: Prod, qname):
        """The productions other than SE and EE of a schema-informed element."""
        if p.kind == P_AT:
            self.store(obj, g, p, self.value(p.dt, p.qname))
        elif p.kind == P_CH:
            self.store(obj, g, p, self.value(p.dt, qname))
        elif p.kind == P_SE_ANY or p.kind == P_SE_NS:
            # a wildcard element: into the `any` list
            self.store(obj, g, p, _generic.decode_any(self))
        elif p.kind == P_CH_MIXED:
            self.store(obj, g, p, self.string(qname))   # mixed content: untyped
        elif p.kind == P_SE_ITEM:
            # a declared child kept in document order
            self.store(obj, g, p, _content.decode_item(self, p))
        else:
            raise self.error("attribute wildcards (AT(*)) are not supported by this decoder")

    @cython.locals(ev=cython.int)
    def undeclared(self, obj, g: Grammar, st: State, code):
        """An event code past the first level: only the undeclared EE is supported."""
        if code == st.n1:
            ev = self.second_level(st)
            if ev == L2_EE:
                if st.ch_code >= 0:      # <a Id="x"></a>: empty simple content
                    p: Prod = st.prods[st.ch_code]
                    self.store(obj, g, p, self.empty_value(p.dt))
                return
            raise self.error(f"undeclared {_L2_NAMES[ev]} is not supported by this decoder")
        raise self.error(f"invalid event code {code}")

    def store(self, obj, g: Grammar, p: Prod, v):
        if cython.compiled:
            if p.is_list:
                lst = get_slot(obj, p.offset)
                if lst is None:
                    set_slot(obj, p.offset, exi_new_list1(v))
                else:
                    lst.append(v)
            else:
                set_slot(obj, p.offset, v)
        else:
            name = g.names[p.field]
            if g.lists[p.field]:
                lst = getattr(obj, name)
                if lst is None:
                    object.__setattr__(obj, name, [v])
                else:
                    lst.append(v)
            else:
                object.__setattr__(obj, name, v)

    @cython.locals(r=BitReader, kind=cython.int, i=cython.ulonglong, n=cython.ulonglong)
    def value(self, dt: Datatype, qname):
        r = self.r
        kind = dt.kind
        if kind == DT_NBIT:
            return dt.lo_c + cython.cast(cython.longlong, r.read(dt.nbits))
        if kind == DT_ENUM:
            i = r.read(dt.nbits)
            if i >= len(dt.members):
                raise self.error(f"enumeration index {i} out of range ({len(dt.members)} values)")
            return dt.members[i]
        if kind == DT_BOOL:
            return r.read_bit() == 1
        if kind == DT_UINT:
            return r.read_uint()
        if kind == DT_INT:
            if r.read_bit():
                return -r.read_uint() - 1
            return r.read_uint()
        if kind == DT_HEX or kind == DT_BASE64:
            n = r.read_small_uint()
            if n > (r.nbits - r.pos) >> 3:
                raise self.error(f"binary length {n} exceeds the remaining input")
            return r.read_bytes(n)
        if kind == DT_STRING:
            return self.string(qname)
        if kind == DT_DECIMAL:
            return self.decimal()
        if kind == DT_FLOAT:
            return self.float_value()
        if kind == DT_LIST:
            n = r.read_small_uint()
            if n > r.nbits - r.pos:
                raise self.error(f"list length {n} exceeds the remaining input")
            item = dt.item
            return [self.value(item, qname) for _ in range(n)]
        raise self.error(f"datatype {kind} is not supported")

    @cython.locals(r=BitReader, n=cython.ulonglong, c=cython.ulonglong, k=cython.Py_ssize_t,
                   i=cython.ulonglong, chars=bytearray)
    def string(self, qname):
        r = self.r
        n = r.read_small_uint()
        if n == 0:      # local value hit (7.3.3)
            lst = self.local_values.get(qname) if self.local_values is not None else None
            if not lst:
                raise self.error("local string table hit, but the table is empty")
            i = r.read(coding_length(len(lst)))
            if i >= len(lst):
                raise self.error(f"local string table index {i} out of range")
            return lst[i]
        if n == 1:      # global value hit
            gv = self.global_values
            if not gv:
                raise self.error("global string table hit, but the table is empty")
            i = r.read(coding_length(len(gv)))
            if i >= len(gv):
                raise self.error(f"global string table index {i} out of range")
            return gv[i]
        n -= 2
        if n > (r.nbits - r.pos) >> 3:
            raise self.error(f"string length {n} exceeds the remaining input")
        if cython.compiled and n:
            s = r.read_ascii(n)         # the common case: every code point below 128
            if s is not None:
                self.remember(s, qname)
                return s
        # code points: a run of ASCII ones is collected as octets, the rest one by one
        chars = bytearray(n)
        k = 0
        c = 0
        while k < n:
            c = r.read_small_uint()
            if c >= 0x80:
                break
            chars[k] = c
            k += 1
        if k == n:
            s = chars.decode("ascii")
        else:
            parts = [chars[:k].decode("ascii")]
            while True:
                if c > 0x10FFFF or 0xD800 <= c <= 0xDFFF:
                    raise self.error(f"invalid character code point {c}")
                parts.append(chr(c))
                k += 1
                if k == n:
                    break
                c = r.read_small_uint()
            s = "".join(parts)
        if n:   # zero-length strings are not added to the table (EXI 7.3.3)
            self.remember(s, qname)
        return s

    def remember(self, s, qname):
        """A string value decoded as a literal, added to the global and local tables."""
        if self.global_values is None:
            self.global_values = []
            self.local_values = {}
        self.global_values.append(s)
        lst = self.local_values.get(qname)
        if lst is None:
            self.local_values[qname] = [s]
        else:
            lst.append(s)
        return 0

    def decimal(self):
        from decimal import Decimal
        r = self.r
        neg = r.read_bit()
        integral = r.read_uint()
        frac = r.read_uint()
        text = ("-" if neg else "") + str(integral)
        if frac:
            text += "." + str(frac)[::-1]
        return Decimal(text)

    def float_value(self):
        r = self.r
        m = -r.read_uint() - 1 if r.read_bit() else r.read_uint()
        e = -r.read_uint() - 1 if r.read_bit() else r.read_uint()
        if e == -(1 << 14):
            if m == 1:
                return float("inf")
            if m == -1:
                return float("-inf")
            return float("nan")
        if abs(e) > 400:
            raise self.error(f"float exponent {e} out of range")
        return float(m) * (10.0 ** e)


def _accepts(st: State, i, kind, item):
    """The next state if st accepts this child (element field i, or a wildcard item)."""
    if kind == F_ELEMENT:
        code = st.code_for(i)
        return st.prods[code].next if code >= 0 else None
    text = isinstance(item, str)
    for pp in st.prods:
        p: Prod = pp
        if (text and p.kind == P_CH_MIXED) or (not text and (p.kind == P_SE_NS or p.kind == P_SE_ANY)):
            if p.kind == P_SE_NS:
                name = getattr(item, "name", None)
                if not isinstance(name, tuple) or name[0] != p.qname:
                    continue
            return p.next
    return None


def _plan(st: State, pending, pos, seen):
    """Order of the pending children (indexes into pending) from state st to an end."""
    key = (id(st), tuple(pos))
    if key in seen:
        return None
    seen[key] = True
    if all(pos[k] >= len(pending[k][2]) for k in range(len(pending))):
        return [] if st.ee_code >= 0 or st.n1 < 0 else None
    for k in range(len(pending)):
        i, kind, items = pending[k]
        if pos[k] >= len(items):
            continue
        nxt = _accepts(st, i, kind, items[pos[k]])
        if nxt is None:
            continue
        pos[k] += 1
        rest = _plan(nxt, pending, pos, seen)
        pos[k] -= 1
        if rest is not None:
            return [k] + rest
    return None


# One decoder and one encoder are kept for reuse: a decode or encode is short and making
# them (with their reader or writer) is a noticeable part of it.  Whoever runs takes the
# spare and gives it back when done; a decode that starts meanwhile (another thread, a
# re-entrant call) finds none and makes its own.  Taking and giving back are single C
# statements under the GIL, with no Python code in between.
_spare_decoder = None
_spare_encoder = None
# the last schema id given to decode() and its Schema, the last class given to encode()
# and its (Schema, qname): a loop over one kind of message skips the dict look-ups
_last_sid = None
_last_schema = None
_last_type = None
_last_root = None


@cython.locals(d=Decoder, r=BitReader, end=cython.Py_ssize_t)
def decode_document(schema, data, any_root, padding):
    """Decode a whole document; bytes after its end raise TrailingDataError (zero bytes
    are accepted with padding=True)."""
    global _spare_decoder
    d = _spare_decoder
    _spare_decoder = None
    if d is None:
        # made without __init__: the Python-level constructor call costs more than this
        d = Decoder.__new__(Decoder)
        d.schema = None
        d.r = BitReader.__new__(BitReader)
    r = d.r
    r.reset_input(data)
    if d.schema is not schema:          # the spare keeps the schema it last decoded
        d.schema = schema
        d.root = schema.root
    d.global_values = None
    d.local_values = None
    d.depth = 0
    d.generic = None
    d.any_root = any_root
    try:
        d.header()
        result = d.document()
    except EndOfStream:
        raise DecodeError("unexpected end of the stream", "", d.r.pos) from None
    except RecursionError:
        raise DecodeError("elements nested too deeply", "", d.r.pos) from None
    end = (r.pos + 7) >> 3          # the last octet's unused bits are padding (EXI 7.1.1)
    r.release()                 # keep no reference to the input or the tables
    d.global_values = None
    d.local_values = None
    d.generic = None
    _spare_decoder = d
    if end < len(data) and (not padding or data.count(0, end) != len(data) - end):
        raise TrailingDataError(f"{len(data) - end} byte(s) left after the end of the EXI document"
                                + (" (not all zero)" if padding else ""), "", end * 8,
                                document=result, end=end)
    return result


def decode(data, schema, *, any_root=False, padding=False):
    """Decode an EXI document (V2G profile) into a typed message object.

    The root element must be a message of the set (V2G_Message for din/iso2, a Req/Res
    element of a -20 set, supportedAppProtocolReq/Res for sap; any element of xmldsig)
    unless any_root=True.  Bytes after the end of the document raise TrailingDataError;
    padding=True accepts zero bytes there (some encoders pad their output).
    Raises DecodeError (a ValueError) with the element path and bit offset on bad input."""
    global _last_sid, _last_schema
    if schema is _last_sid:             # the same id object as the last call: its Schema
        s = _last_schema
    else:
        s = _SCHEMAS.get(schema)
        if s is None:
            s = _load_schema(schema)
        _last_sid = schema              # loaded schemas are never replaced: safe to keep
        _last_schema = s
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
    return decode_document(s, data, any_root, padding)


# ---------------------------------------------------------------------------------------
# encoding

def _empty_is_valid(dt: Datatype) -> bool:
    """Whether <a></a> is schema-valid for simple content of this datatype: "" is a value
    of strings, binary data and lists without a minimum length, and of an enumeration
    that lists it; never of numbers, booleans, dates or QNames (the decoder still reads
    such an element, non-strict EXI allows it; validation refuses it)."""
    kind = dt.kind
    if kind == DT_STRING or kind == DT_HEX or kind == DT_BASE64:
        return dt.min_len <= 0
    if kind == DT_ENUM:
        return dt.enum_index("") >= 0
    return kind == DT_LIST


_ENDED = State(S_CONTENT, ())   # marker: the element was already closed
_ENDED.n1 = -1


@cython.cclass
class Encoder:
    def __init__(self, schema, validate=True):
        self.schema = schema
        self.root = schema.root
        self.w = BitWriter()
        self.depth = 0
        self.validate = validate
        self.generic = None

    def header(self):
        self.w.write(0x80, 8)
        return 0

    @cython.locals(root=Root, idx=cython.Py_ssize_t)
    def document(self, obj, qname):
        global _doc_root, _doc_qname, _doc_idx
        root = self.root
        if root is _doc_root and qname is _doc_qname:     # the root element of the last call
            idx = _doc_idx
        else:
            idx = root.index.get(qname, -1)
            if idx >= 0:
                _doc_root, _doc_qname, _doc_idx = root, qname, idx
        if idx < 0:
            raise EncodeError(f"{self.schema.qname_text(qname)} is not a global element of schema {self.schema.id!r}")
        if cython.compiled:
            emit(self, idx, root.width)
        else:
            self.w.write(idx, root.width)
        self.element(root.grammars[idx], obj, qname)
        return 0

    def fragment(self, items):
        schema = self.schema
        n = len(schema.fragment_elements)
        width = coding_length(n + 2)
        for obj, qname in items:
            if qname is None:               # an undeclared element: SE(*) and its qname
                self.w.write(n, width)
                _generic.write_qname(self, obj.name)
                _generic.encode_any(self, obj)
                continue
            idx = schema.fragment_index.get(qname)
            if idx is None:
                raise EncodeError(f"{schema.qname_text(qname)} cannot be encoded as a fragment element")
            self.w.write(idx, width)
            if schema.fragment_elements[idx][1] < 0:
                # declared with several types (8.5.3)
                _fragment.encode(self, obj, qname)
                continue
            self.element(schema.grammars[schema.fragment_elements[idx][1]], obj, qname)
        self.w.write(n + 1, width)

    @cython.locals(d0=cython.int)
    def element(self, g: Grammar, value, qname):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise EncodeError("elements nested too deeply (a cycle in the message?)")
        d0 = self.depth
        try:
            if g.simple:
                self.simple_element(g, value, qname)
            else:
                self.complex_element(g, value, qname)
        except EncodeError as e:
            e.path = self.inner_path(d0) + e.path
            raise self.located(e, qname)
        self.depth -= 1
        return 0

    @cython.locals(d0=cython.int)
    def inner_path(self, d0):
        """On an error in element() at depth d0: the names of the levels entered below it
        through child_element() (which have no handler of their own), as a path; the
        depth goes back to d0's parent."""
        inner = _levels_below(self.schema, self.qpath, d0, self.depth) if cython.compiled else ""
        self.depth = d0 - 1
        return inner

    def child_element(self, g: Grammar, value, qname):
        """element() of a child for the compiled child_c, without an exception handler of
        its own: its name is kept at its depth (qpath) for the handler of the nearest
        element() above, which puts it in the error's path (inner_path)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise EncodeError("elements nested too deeply (a cycle in the message?)")
        if cython.compiled:
            self.qpath[self.depth] = cython.cast(cython.pointer(PyObject), qname)
        if g.simple:
            self.simple_element(g, value, qname)
        else:
            self.complex_element(g, value, qname)
        self.depth -= 1
        return 0

    def simple_element(self, g: Grammar, value, qname):
        w: BitWriter = self.w
        dt: Datatype = g.dt
        if (isinstance(value, (str, bytes, bytearray)) and len(value) == 0
                and (dt.kind != DT_ENUM or "" not in dt.index_of)):
            # undeclared EE at the second level of the FirstStartTag; schema-valid only
            # where the empty string is a value of the datatype
            if self.validate and not _empty_is_valid(dt):
                raise EncodeError("empty content is not a valid value here")
            w.write(1, 1)
            w.write(0, g.first.width2)
            return 0
        if cython.compiled:
            emit(self, 0, 1)         # CH
            self.value(dt, value)
            emit(self, 0, 1)         # EE
            return 0
        w.write(0, 1)                # CH
        self.value(dt, value)
        w.write(0, 1)                # EE
        return 0

    def read_field(self, obj, g: Grammar, i):
        if cython.compiled:
            return get_slot(obj, g.offsets[i])
        return getattr(obj, g.names[i])

    @cython.locals(st=State, mark=cython.Py_ssize_t)
    def complex_element(self, g: Grammar, obj, qname):
        if type(obj) is not g.cls and not isinstance(obj, g.cls):
            if isinstance(obj, dict):
                raise EncodeError(f"expected a {g.cls.__name__} object, got a dict "
                                  "(use exi.from_dict to build messages from dicts)")
            raise EncodeError(f"expected a {g.cls.__name__}, got {type(obj).__name__}")
        if g.ordered:
            # children can only come in field order: one pass, no rewind point needed
            st = self.fields_in_order(g, obj, qname)
            if st is None:
                scratch = Encoder(self.schema, self.validate)
                try:
                    scratch.interleaved(g, obj)     # not encodable: this raises with the reason
                except EncodeError as e:
                    # the levels the scratch entered below this element, as this encoder's
                    # element() above would have named them (a rare path: a handler here)
                    e.path = scratch.inner_path(0) + e.path
                    raise
                raise EncodeError("the children are not in an order the content model allows")
        else:
            mark = self.w.mark()
            snapshot = None
            if self.generic is not None:
                snapshot = _generic.snapshot(self)
            st = self.fields_in_order(g, obj, qname)
            if st is None:
                # a repeated group needs its items interleaved: redo this element the general way
                self.w.reset(mark)
                _generic.restore(self, snapshot)    # forget qnames the discarded attempt added
                st = self.interleaved(g, obj)
        if st.n1 < 0:
            return 0        # ended by an undeclared EE (empty simple content)
        if st.ee_code < 0:
            raise EncodeError(f"missing required content: expected {self.expected(st, g.names)}")
        if cython.compiled:
            emit(self, st.ee_code, st.width)
        else:
            self.w.write(st.ee_code, st.width)
        return 0

    @cython.locals(w=BitWriter, st=State, p=Prod, i=cython.Py_ssize_t, n=cython.Py_ssize_t,
                   code=cython.Py_ssize_t, kind=cython.int)
    def fields_in_order(self, g: Grammar, obj, qname):
        """Encode attributes, children and value in field order; None when a child is not
        accepted where field order puts it."""
        w = self.w
        st = g.first
        raw: cython.pointer(PyObject)
        n = g.nfields
        i = -1
        while True:
            # the next field that holds a value: most are None (a choice of 35 in a Body),
            # skipped by a tight scan of the slot pointers, with no reference taken
            if cython.compiled:
                i = exi_next_field(obj, g.c_offsets, i + 1, n)
                if i >= n:
                    break
                raw = slot_ptr(obj, g.c_offsets[i])
                v = cython.cast(object, raw)
            else:
                i += 1
                while i < n and getattr(obj, g.names[i]) is None:
                    i += 1
                if i >= n:
                    break
                v = getattr(obj, g.names[i])
            if cython.compiled:
                kind = g.c_kinds[i]
            else:
                kind = g.kinds[i] | (FIELD_LIST if g.lists[i] else 0)
            if kind == F_ELEMENT:
                if i >= st.ncodes:
                    return None
                code = st.c_codes[i] if cython.compiled else st.codes[i]
                if code < 0:
                    return None
                if cython.compiled:
                    st = self.child_c(st, code, raw)
                else:
                    st = self.child(st, code, v)
            elif kind == F_ELEMENT | FIELD_LIST:
                if type(v) is not list and not isinstance(v, (list, tuple)):
                    raise EncodeError(f"{g.names[i]} must be a list")
                if cython.compiled and type(v) is list:
                    for j in range(len(v)):     # borrowed items (the list is not changed meanwhile)
                        if i >= st.ncodes or st.c_codes[i] < 0:
                            return None
                        st = self.child_c(st, st.c_codes[i], PyList_GET_ITEM(v, j))
                    continue
                for item in v:
                    if i >= st.ncodes:
                        return None
                    code = st.c_codes[i] if cython.compiled else st.codes[i]
                    if code < 0:
                        return None
                    st = self.child(st, code, item)
            elif (kind & ~FIELD_LIST) == F_ATTRIBUTE:
                code = st.code_for(i)
                if code < 0:
                    raise EncodeError(f"attribute {g.names[i]} is not allowed here")
                p = st.prods[code]
                w.write(code, st.width)
                self.value(p.dt, v)
                st = p.next
            elif (kind & ~FIELD_LIST) == F_VALUE:
                code = st.ch_code
                if code < 0:
                    raise EncodeError("character content is not allowed here")
                if isinstance(v, (str, bytes, bytearray)) and len(v) == 0:
                    # empty simple content: an undeclared EE (second level), as for <a></a>;
                    # schema-valid only where the empty string is a value of the datatype
                    if self.validate and not _empty_is_valid(cython.cast(Prod, st.prods[code]).dt):
                        raise EncodeError("empty content is not a valid value here")
                    w.write(st.n1, st.width)
                    w.write(0, st.width2)
                    return _ENDED
                p = st.prods[code]
                w.write(code, st.width)
                self.value(p.dt, v)
                st = p.next
            elif (kind & ~FIELD_LIST) == F_ANY:
                if not isinstance(v, (list, tuple)):
                    raise EncodeError(f"{g.names[i]} must be a list")
                if len(v):
                    # wildcard elements and mixed text, in list order
                    for item in v:
                        if _accepts(st, i, F_ANY, item) is None:
                            return None         # needs interleaving with declared children
                        st = _generic.encode_wildcard_items(self, st, [item], qname)
            elif (kind & ~FIELD_LIST) == F_CONTENT:
                # children in document order
                st = _content.encode_items(self, g, st, v, qname)
        return st

    @cython.locals(w=BitWriter, x=cython.longlong, overflow=cython.int, k=cython.Py_ssize_t,
                   n=cython.Py_ssize_t, dk=cython.int, width=cython.int)
    def child_c(self, st: State, code, item):
        """child() for the compiled engine, over the C mirror of the state, with the item
        as a borrowed pointer: no reference counting on the hot path (the values are
        mostly shared objects: small ints, enumeration members, whose counts would
        otherwise be updated back to back)."""
        cp: cython.pointer(CProd) = st.cs.prods + code
        dk = cp.dt_kind
        width = st.width
        if dk == DT_NBIT:
            if exi_is_exact_int(item):
                overflow = 0
                x = exi_as_longlong(item, cython.address(overflow))
                # validate=False writes every value the n bits hold (what the decoder
                # accepts, e.g. PhasesInUse=4 from a real car), not only the facet range.
                if overflow or x < cp.lo or x > (cp.hi if self.validate else cp.lo + (1 << cp.nbits) - 1):
                    raise self.located(EncodeError(f"value {cython.cast(object, item)} out of range "
                                                   f"[{cp.lo}, {cp.hi}]"), cython.cast(object, cp.qname))
                if width + cp.nbits + 2 <= 56:
                    emit(self, (code << (cp.nbits + 2)) | ((x - cp.lo) << 1), width + cp.nbits + 2)
                else:
                    emit(self, code, width)
                    emit(self, (x - cp.lo) << 1, cp.nbits + 2)
                return cython.cast(State, cp.next.state)
        elif dk == DT_ENUM:
            k = -1
            n = PyTuple_GET_SIZE(cython.cast(tuple, cp.members))
            for i in range(n):      # members are singletons: compare pointers first
                if PyTuple_GET_ITEM(cython.cast(tuple, cp.members), i) == item:
                    k = i
                    break
            if k < 0:
                k = cython.cast(Prod, cp.prod).dt.enum_index(cython.cast(object, item))
            if k >= 0:
                emit(self, (code << (cp.nbits + 2)) | (k << 1), width + cp.nbits + 2)
                return cython.cast(State, cp.next.state)
        elif dk == DT_BOOL:
            if item == exi_true() or item == exi_false():
                emit(self, (code << 3) | (2 if item == exi_true() else 0), width + 3)
                return cython.cast(State, cp.next.state)
        elif (dk == DT_INT or dk == DT_UINT) and exi_is_exact_int(item):
            overflow = 0
            x = exi_as_longlong(item, cython.address(overflow))
            if overflow == 0 and x > LL_FLOOR and cp.lo <= x <= cp.hi:
                if dk == DT_UINT:
                    emit(self, code << 1, width + 1)                   # CH
                    emit_uint(self, x)
                elif x < 0:
                    emit(self, (code << 2) | 1, width + 2)             # CH, minus
                    emit_uint(self, -x - 1)
                else:
                    emit(self, code << 2, width + 2)                   # CH, plus
                    emit_uint(self, x)
                emit(self, 0, 1)                                       # EE
                return cython.cast(State, cp.next.state)
        emit(self, code, width)
        if cython.cast(Grammar, cp.child).simple:
            self.child_element(cython.cast(Grammar, cp.child), cython.cast(object, item), cython.cast(object, cp.qname))
        else:
            # child_element(), inlined for a complex child: its name kept at its depth
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.depth -= 1
                raise EncodeError("elements nested too deeply (a cycle in the message?)")
            self.qpath[self.depth] = cp.qname
            self.complex_element(cython.cast(Grammar, cp.child), cython.cast(object, item), cython.cast(object, cp.qname))
            self.depth -= 1
        return cython.cast(State, cp.next.state)

    @cython.locals(p=Prod, w=BitWriter, dt=Datatype, k=cython.Py_ssize_t)
    def child(self, st: State, code, item):
        """Write child element `item` through production `code` of `st`; the next state."""
        if cython.compiled:
            return self.child_c(st, code, cython.cast(cython.pointer(PyObject), item))
        w = self.w
        p = st.prods[code]
        if p.simple:
            dt = p.dt
            if dt.kind == DT_NBIT and type(item) is int:
                if not dt.lo_c <= item <= (dt.hi_c if self.validate else dt.lo_c + (1 << dt.nbits) - 1):
                    raise self.located(EncodeError(f"value {item} out of range [{dt.lo}, {dt.hi}]"), p.qname)
                w.write((code << (dt.nbits + 2)) | ((item - dt.lo_c) << 1), st.width + dt.nbits + 2)
                return p.next
            if dt.kind == DT_ENUM:
                k = dt.enum_index(item)
                if k >= 0:
                    w.write((code << (dt.nbits + 2)) | (k << 1), st.width + dt.nbits + 2)
                    return p.next
            elif dt.kind == DT_BOOL and (item is True or item is False):
                w.write((code << 3) | (2 if item is True else 0), st.width + 3)
                return p.next
            elif (dt.kind == DT_INT or dt.kind == DT_UINT) and type(item) is int and dt.lo_c <= item <= dt.hi_c:
                if dt.kind == DT_UINT:
                    w.write(code << 1, st.width + 1)
                    w.write_uint(item)
                elif item < 0:
                    w.write((code << 2) | 1, st.width + 2)
                    w.write_uint(-item - 1)
                else:
                    w.write(code << 2, st.width + 2)
                    w.write_uint(item)
                w.write(0, 1)
                return p.next
        w.write(code, st.width)
        self.element(p.child, item, p.qname)
        return p.next

    def located(self, e, qname):
        e.path = "/" + self.schema.qname_local(qname) + e.path
        e.args = (f"{e.path}: {e.reason}",)
        return e

    def interleaved(self, g: Grammar, obj):
        """Children whose order field order does not give, as in (a, b?)+ or wildcard
        content between declared elements: find an order the content model accepts (a
        depth-first search over the grammar states; the lists involved are short) and
        write it."""
        w = self.w
        st: State = g.first
        pending = []
        for i in range(g.nfields):
            v = self.read_field(obj, g, i)
            if v is None:
                continue
            kind = g.kinds[i]
            if kind == F_ATTRIBUTE:
                code = st.code_for(i)
                if code < 0:
                    raise EncodeError(f"attribute {g.names[i]} is not allowed here")
                p: Prod = st.prods[code]
                w.write(code, st.width)
                self.value(p.dt, v)
                st = p.next
            elif kind == F_ELEMENT or kind == F_ANY:
                items = v if (g.lists[i] or kind == F_ANY) else (v,)
                if not isinstance(items, (list, tuple)):
                    raise EncodeError(f"{g.names[i]} must be a list")
                if len(items):
                    pending.append((i, kind, list(items)))
            elif kind == F_VALUE:
                raise EncodeError("character content is not allowed here")
        try:
            plan = _plan(st, pending, [0] * len(pending), {})
        except RecursionError:          # thousands of children: no order was found in depth
            plan = None
        if plan is None:
            names = ", ".join(g.names[i] for i, _, _ in pending)
            missing = self.missing_first(st, {i for i, _, _ in pending}, g.names)
            if missing:
                raise EncodeError(f"missing required element {missing} (given: {names or 'nothing'})")
            raise EncodeError(f"the children ({names}) cannot be put in an order the content "
                              f"model allows; expected first: {self.expected(st, g.names)}")
        for k in plan:
            i, kind, items = pending[k]
            item = items.pop(0)
            if kind == F_ELEMENT:
                st = self.child(st, st.code_for(i), item)
            else:
                st = _generic.encode_wildcard_items(self, st, [item], None)
        return st

    def missing_first(self, st: State, given, names) -> str:
        """The element(s) this state needs next when none of them is given and the element
        cannot end here ("" otherwise): what a missing required field looks like."""
        firsts = []
        for pp in st.prods:
            p: Prod = pp
            if p.kind == P_EE:
                return ""
            if p.kind == P_SE and p.field >= 0:
                if p.field in given:
                    return ""
                firsts.append(names[p.field])
        return " or ".join(dict.fromkeys(firsts))

    def expected(self, st: State, names):
        out = []
        for pp in st.prods:
            p: Prod = pp
            if p.kind == P_SE or p.kind == P_AT:
                out.append(names[p.field])
            elif p.kind == P_SE_ITEM:
                out.append(self.schema.qname_local(p.qname))
            elif p.kind == P_CH:
                out.append("character content")
            elif p.kind == P_EE:
                out.append("end of element")
        return ", ".join(out) or "nothing"

    @cython.locals(w=BitWriter, kind=cython.int, n=cython.Py_ssize_t, c=cython.long)
    def value(self, dt: Datatype, v):
        w = self.w
        kind = dt.kind
        if kind == DT_NBIT:
            if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):
                raise EncodeError(f"expected an integer, got {v!r}")
            if v < dt.lo or v > (dt.hi if self.validate else dt.lo + (1 << dt.nbits) - 1):
                raise EncodeError(f"value {_shown(v)} out of range [{dt.lo}, {dt.hi}]")
            w.write(v - dt.lo_c, dt.nbits)
        elif kind == DT_ENUM:
            i = dt.enum_index(v)
            if i < 0:
                raise EncodeError(f"{v!r} is not one of the enumeration values")
            w.write(i, dt.nbits)
        elif kind == DT_BOOL:
            if v is True:
                w.write(1, 1)
            elif v is False:
                w.write(0, 1)
            else:
                raise EncodeError(f"expected a boolean, got {v!r}")
        elif kind == DT_UINT or kind == DT_INT:
            if not isinstance(v, int) or isinstance(v, bool):
                raise EncodeError(f"expected an integer, got {v!r}")
            if self.validate and ((dt.lo is not None and v < dt.lo) or (dt.hi is not None and v > dt.hi)):
                raise EncodeError(f"value {_shown(v)} out of range [{dt.lo}, {dt.hi}]")
            if kind == DT_UINT:
                if v < 0:
                    raise EncodeError(f"value {_shown(v)} cannot be represented as an unsigned integer")
                w.write_uint(v)
            elif v < 0:
                w.write(1, 1)
                w.write_uint(-v - 1)
            else:
                w.write(0, 1)
                w.write_uint(v)
        elif kind == DT_HEX or kind == DT_BASE64:
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise EncodeError(f"expected bytes, got {type(v).__name__}")
            n = len(v)
            if self.validate and (dt.max_len >= 0 and n > dt.max_len or dt.min_len >= 0 and n < dt.min_len):
                raise EncodeError(f"length {n} outside [{max(dt.min_len, 0)}, {dt.max_len}]")
            w.write_small_uint(n)
            w.write_bytes(v)
        elif kind == DT_STRING:
            if not isinstance(v, str):
                raise EncodeError(f"expected a string, got {type(v).__name__}")
            n = len(v)
            if self.validate and (dt.max_len >= 0 and n > dt.max_len or dt.min_len >= 0 and n < dt.min_len):
                raise EncodeError(f"string length {n} outside [{max(dt.min_len, 0)}, {dt.max_len}]")
            w.write_small_uint(n + 2)
            if cython.compiled and exi_is_ascii(v):
                # a code point below 128 is one octet of the same value: the string as is
                w.write_octets(exi_ascii_data(v), n)
                return 0
            for ch in v:
                c = ord(ch)
                if 0xD800 <= c <= 0xDFFF:
                    raise EncodeError("lone surrogate in string")
                if cython.compiled:
                    emit_uint(self, c)      # a C number: no int object per character
                else:
                    w.write_small_uint(c)
        elif kind == DT_DECIMAL:
            self.decimal(v)
        elif kind == DT_FLOAT:
            self.float_value(v)
        elif kind == DT_LIST:
            if not isinstance(v, (list, tuple)):
                raise EncodeError("expected a list")
            w.write_uint(len(v))
            for item in v:
                self.value(dt.item, item)
        else:
            raise EncodeError(f"datatype {kind} is not supported")
        return 0

    def decimal(self, v):
        from decimal import Decimal, InvalidOperation
        try:
            d = Decimal(v) if not isinstance(v, float) else Decimal(repr(v))
        except (InvalidOperation, TypeError, ValueError):
            raise EncodeError(f"expected a decimal, got {v!r}") from None
        if not d.is_finite():
            raise EncodeError("decimal values must be finite")
        sign, digits, exp = d.as_tuple()
        s = "".join(map(str, digits))
        if exp >= 0:
            integral, frac = s + "0" * exp, ""
        else:
            s = s.rjust(-exp + 1, "0")
            integral, frac = s[:exp], s[exp:]
        frac = frac.rstrip("0")
        self.w.write(1 if sign else 0, 1)
        self.w.write_uint(int(integral or "0"))
        self.w.write_uint(int(frac[::-1]) if frac else 0)

    def float_value(self, v):
        import math
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise EncodeError(f"expected a number, got {v!r}")
        v = float(v)
        if math.isnan(v) or math.isinf(v):
            m = 0 if math.isnan(v) else (1 if v > 0 else -1)
            e = -(1 << 14)
        else:
            from decimal import Decimal
            sign, digits, exp = Decimal(repr(v)).as_tuple()
            m = int("".join(map(str, digits)) or "0")
            while m and m % 10 == 0:
                m //= 10
                exp += 1
            if sign:
                m = -m
            e = exp if m else 0
        for x in (m, e):
            if x < 0:
                self.w.write(1, 1)
                self.w.write_uint(-x - 1)
            else:
                self.w.write(0, 1)
                self.w.write_uint(x)

    def getvalue(self):
        return self.w.getvalue()


@cython.locals(e=Encoder, w=BitWriter)
def encode_document(schema, obj, qname, validate):
    global _spare_encoder
    e = _spare_encoder
    _spare_encoder = None
    if e is None:
        e = Encoder.__new__(Encoder)
        e.schema = None
        e.w = BitWriter.__new__(BitWriter)
        e.w.clear()
    w = e.w
    w.restart()
    if e.schema is not schema:          # the spare keeps the schema it last encoded
        e.schema = schema
        e.root = schema.root
    e.depth = 0
    e.validate = validate
    e.generic = None
    if cython.compiled:
        emit(e, 0x80, 8)            # the header
    else:
        w.write(0x80, 8)
    e.document(obj, qname)
    result = w.getvalue()
    e.generic = None
    _spare_encoder = e
    return result


def encode(message, *, validate=True):
    """Encode a message object of a global element class (e.g. din.V2G_Message).

    Values that cannot be represented (an n-bit integer beyond its n bits, a value that is
    not one of the enumeration's) are always refused.  With validate=True (the default)
    the facets are checked too (length and range facets of strings, binaries and
    integers, the range of n-bit integers); validate=False writes what a non-validating
    reference encoder writes -- whatever the decoder accepts -- which is how real-world
    streams with out-of-facet values re-encode byte for byte."""
    global _last_type, _last_root
    t = type(message)
    if t is _last_type:                 # the same class as the last call
        return encode_document(_last_root[0], message, _last_root[1], validate)
    root = _ROOTS.get(t)
    if root is None:
        if isinstance(message, Message) and not isinstance(message, ElementValue) and \
                type(message)._element is not None:
            root = _ROOT_OF_CLASS[type(message)] = (_load_schema(message._schema_id), type(message)._element)
        else:
            # simple-typed roots, and the errors for what is not a root
            return _encode_other(message, validate)
    _last_type = t
    _last_root = root
    return encode_document(root[0], message, root[1], validate)


_doc_root = None        # Encoder.document's one-entry cache: root, qname -> event code
_doc_qname = None
_doc_idx = -1
_ROOT_OF_CLASS = {}     # message class of a global element -> (Schema, qname index)
_ROOTS = _ROOT_OF_CLASS     # the same dict, typed for the compiled entry point
