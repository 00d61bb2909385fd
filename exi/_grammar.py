"""The grammar model: EXI grammars (EXI 8) as runtime objects, and their C mirror.

What `exi/_schema.py` builds from a generated table (exi/_tables/<id>.json): datatypes
with their facets (EXI 7.1), states with first-level productions, each production's
reference resolved (`link`), bound to the message class's slots (`bind_fields`) and
mirrored as C structs (`freeze`) that the compiled interpreter (exi/_engine.py) walks
without reference counting.  Below the engine, above the bit streams: it imports neither.
Cython pure-Python mode like the engine: `_grammar.pxd` gives the C types when compiled.
"""
import cython

from ._kinds import (DT_BASE64, DT_ENUM, DT_HEX, DT_INT, DT_NBIT, DT_STRING, DT_UINT, P_AT, P_CH,
                     P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS, S_CONTENT, S_FIRST, S_START)

if cython.compiled:
    from cython.cimports.cpython.mem import PyMem_Free, PyMem_Malloc
    from cython.cimports.exi._slots import slot_offset
else:
    def slot_offset(descriptor):
        return 0

FIELD_LIST = 16     # or-ed into a field kind (Grammar.c_kinds): a repeated element

# second-level events of schema-informed grammars, non-strict, no prefixes/DTD/comments/PIs
# (EXI 8.5.4.4.1; the order and the "AT(invalid)" entry follow EXIficient)
L2_EE, L2_XSI_TYPE, L2_XSI_NIL, L2_AT_ANY, L2_AT_INVALID, L2_SE_ANY, L2_CH = range(7)
_L2_EVENTS = {
    S_FIRST: (L2_XSI_TYPE, L2_XSI_NIL, L2_AT_ANY, L2_AT_INVALID, L2_SE_ANY, L2_CH),
    S_START: (L2_AT_ANY, L2_AT_INVALID, L2_SE_ANY, L2_CH),
    S_CONTENT: (L2_SE_ANY, L2_CH),
}
_L2_NAMES = {L2_EE: "EE", L2_XSI_TYPE: "AT(xsi:type)", L2_XSI_NIL: "AT(xsi:nil)",
             L2_AT_ANY: "AT(*)", L2_AT_INVALID: "AT(untyped)", L2_SE_ANY: "SE(*)",
             L2_CH: "CH(untyped)"}


def coding_length(n) -> cython.int:
    """Bits needed for n distinct event codes (EXI 6.2)."""
    b = 0
    while (1 << b) < n:
        b += 1
    return b


@cython.cclass
class Datatype:
    """One EXI datatype representation (EXI 7.1) with its facets."""

    def __init__(self, row, enum_class):
        self.kind = row[0]
        self.lo = None
        self.hi = None
        self.lo_c = 0
        self.hi_c = 0
        self.nbits = 0
        self.min_len = -1
        self.max_len = -1
        self.members = None
        self.index_of = None
        self.index_of_id = None
        self.item = None
        kind = self.kind
        if kind == DT_NBIT:
            self.lo, self.hi, self.nbits = row[1], row[2], row[3]
            self.lo_c = row[1]
            self.hi_c = row[2]
        elif kind == DT_UINT or kind == DT_INT:
            self.lo, self.hi = row[1], row[2]
            # C copies, clamped to the 64-bit range (values outside it take the slow path)
            self.lo_c = -0x7FFFFFFFFFFFFFFF if self.lo is None else max(self.lo, -0x7FFFFFFFFFFFFFFF)
            self.hi_c = 0x7FFFFFFFFFFFFFFF if self.hi is None else min(self.hi, 0x7FFFFFFFFFFFFFFF)
        elif kind == DT_ENUM:
            self.nbits = row[1]
            self.members = tuple(enum_class(v) for v in row[3])
            self.index_of = {}
            self.index_of_id = {}
            for i, m in enumerate(self.members):
                self.index_of[m] = i
                self.index_of[m.value] = i
                # Enum.__hash__ is Python code: members are singletons, look them up by id
                self.index_of_id[id(m)] = i
        elif kind in (DT_STRING, DT_HEX, DT_BASE64):
            self.min_len = -1 if row[1] is None else row[1]
            self.max_len = -1 if row[2] is None else row[2]


    @cython.locals(i=cython.Py_ssize_t, n=cython.Py_ssize_t)
    def enum_index(self, v):
        """Index of an enumeration member or of its string value, -1 if neither."""
        # members are singletons: an identity scan beats hashing (Enum.__hash__ is Python)
        members = self.members
        n = len(members)
        for i in range(n):
            if members[i] is v:
                return i
        if not isinstance(v, str):
            return -1
        return self.index_of.get(v, -1)


@cython.cclass
class Prod:
    """A first-level production with every reference resolved (no table look-ups)."""

    def __init__(self, row):
        self.kind = row[0]
        self.qname = row[1]
        self.field = row[2]
        self.ref = row[3]
        self.next_id = row[4]
        self.next = None
        self.child = None
        self.dt = None
        self.simple = False
        self.is_list = False
        self.offset = 0


@cython.cclass
class State:
    """A grammar state: first-level productions plus what the encoder needs to find them."""

    def __init__(self, kind, rows):
        self.kind = kind
        self.prods = [Prod(r) for r in rows]
        self.n1 = len(rows)
        self.width = coding_length(self.n1 + 1)
        self.ee_code = -1
        self.ch_code = -1
        nf = 0
        for p in self.prods:
            if p.field + 1 > nf:
                nf = p.field + 1
        self.codes = [-1] * nf
        for code, r in enumerate(rows):
            if r[0] == P_EE:
                self.ee_code = code
            elif r[0] == P_CH:
                self.ch_code = code
            elif r[0] == P_SE or r[0] == P_AT:
                self.codes[r[2]] = code
        self.ncodes = nf
        if cython.compiled:
            self.c_codes = cython.cast(cython.pointer(cython.Py_ssize_t),
                                       PyMem_Malloc((nf + 1) * cython.sizeof(cython.Py_ssize_t)))
            if not self.c_codes:
                raise MemoryError()
            for i in range(nf):
                self.c_codes[i] = self.codes[i]
        has_ee = 1 if self.ee_code >= 0 else 0
        events = _L2_EVENTS[kind]
        self.l2 = events if has_ee else (L2_EE,) + events
        self.width2 = coding_length(len(self.l2))

    def __dealloc__(self):
        if cython.compiled:
            PyMem_Free(self.c_codes)
            PyMem_Free(self.cs.prods)

    def code_for(self, field):
        if field < len(self.codes):
            return self.codes[field]
        return -1


@cython.cclass
class Grammar:
    def __init__(self, first, empty_first, cls, dt):
        self.first = first
        self.empty_first = empty_first
        self.cls = cls
        self.dt = dt
        self.simple = dt is not None
        self.fields = ()
        self.names = ()
        self.kinds = []
        self.lists = []
        self.offsets = []
        self.nfields = 0
        self.ordered = False
        self.slot_lo = -1

    def __dealloc__(self):
        if cython.compiled:
            PyMem_Free(self.c_kinds)
            PyMem_Free(self.c_offsets)

    @cython.locals(i=cython.Py_ssize_t, n=cython.Py_ssize_t)
    def bind_class(self, cls, rows):
        """Attach the message class; compiled code accesses its slots by offset."""
        self.fields = rows
        self.names = tuple(r[0] for r in rows)
        self.kinds = [r[1] for r in rows]
        self.lists = [bool(r[2]) for r in rows]
        self.nfields = n = len(rows)
        self.offsets = [slot_offset(getattr(cls, r[0])) for r in rows]
        if cython.compiled:
            self.c_kinds = cython.cast(cython.p_int, PyMem_Malloc((n + 1) * cython.sizeof(cython.int)))
            self.c_offsets = cython.cast(cython.pointer(cython.Py_ssize_t),
                                         PyMem_Malloc((n + 1) * cython.sizeof(cython.Py_ssize_t)))
            if not self.c_kinds or not self.c_offsets:
                raise MemoryError()
            for i in range(n):
                self.c_kinds[i] = self.kinds[i] | (FIELD_LIST if self.lists[i] else 0)
                self.c_offsets[i] = self.offsets[i]
            # CPython lays __slots__ out side by side (sorted by name): one run to clear
            if n and max(self.offsets) - min(self.offsets) == (n - 1) * cython.sizeof(cython.p_void):
                self.slot_lo = min(self.offsets)


@cython.cclass
class Root:
    """DocContent of a schema: the global elements (EXI 8.5.1), for the compiled entry points."""

    def __init__(self, schema, qnames, grammars, classes, messages):
        self.schema = schema
        self.qnames = list(qnames)
        self.grammars = list(grammars)
        self.classes = list(classes)
        self.n = len(self.qnames)
        self.width = coding_length(self.n + 1)
        self.index = {q: i for i, q in enumerate(self.qnames)}
        # which global elements are messages of the set (decode() accepts only these
        # unless asked for any root), and their names for the error
        self.is_message = [q in messages for q in self.qnames]
        self.message_names = ", ".join(sorted(schema.qnames[q][1] for q in messages)) or "none"


def link(states, grammars, datatypes):
    """Resolve production references once the whole schema is loaded."""
    for st in states:
        s: State = st
        for pp in s.prods:
            p: Prod = pp
            if p.next_id >= 0:
                p.next = states[p.next_id]
            if p.kind == P_SE or p.kind == P_SE_ITEM:
                p.child = grammars[p.ref]
                p.simple = p.child.simple
                p.dt = p.child.dt
            elif p.kind == P_AT or p.kind == P_CH:
                p.dt = datatypes[p.ref]


def bind_fields(states, grammar):
    """Set the slot offset and list flag of every production of a complex grammar, and
    whether its children always come in field order (no edge leads back to an earlier
    child field, as (a, b)+ does): then the encoder needs no rewind point."""
    g: Grammar = grammar
    g.ordered = True
    for st in states:
        s: State = st
        for pp in s.prods:
            p: Prod = pp
            if p.field >= 0 and p.field < g.nfields:
                p.offset = g.offsets[p.field]
                p.is_list = g.lists[p.field]
            if (p.kind == P_SE or p.kind == P_SE_ANY or p.kind == P_SE_NS or p.kind == P_CH_MIXED) \
                    and p.next is not None:
                for qq in p.next.prods:
                    q: Prod = qq
                    if (q.kind == P_SE or q.kind == P_SE_ANY or q.kind == P_SE_NS or
                            q.kind == P_CH_MIXED) and q.field < p.field:
                        g.ordered = False


@cython.locals(s=State, p=Prod, i=cython.Py_ssize_t)
def freeze(states):
    """Build the C mirror of the states that the compiled decoder walks: every reference
    is a borrowed pointer (the schema keeps the objects alive), so the walk does no
    reference counting.  Called once the productions are linked and bound."""
    if not cython.compiled:
        return
    cp: cython.pointer(CProd)
    for st in states:
        s = st
        s.cs.n1 = s.n1
        s.cs.width = s.width
        s.cs.state = cython.cast(cython.pointer(PyObject), s)
        s.cs.prods = cython.cast(cython.pointer(CProd), PyMem_Malloc((s.n1 + 1) * cython.sizeof(CProd)))
        if not s.cs.prods:
            raise MemoryError()
        for i in range(s.n1):
            p = s.prods[i]
            cp = s.cs.prods + i
            cp.kind = p.kind
            cp.offset = p.offset
            cp.is_list = p.is_list
            cp.next = cython.address(p.next.cs) if p.next is not None else cython.NULL
            cp.prod = cython.cast(cython.pointer(PyObject), p)
            cp.qname = cython.cast(cython.pointer(PyObject), p.qname)
            cp.dt_kind = p.dt.kind if p.kind == P_SE and p.simple else -1
            cp.nbits = p.dt.nbits if p.dt is not None else 0
            cp.lo = p.dt.lo_c if p.dt is not None else 0
            cp.hi = p.dt.hi_c if p.dt is not None else 0
            cp.members = cython.cast(cython.pointer(PyObject), p.dt.members) \
                if p.dt is not None and p.dt.members is not None else cython.NULL
            cp.child = cython.cast(cython.pointer(PyObject), p.child) if p.child is not None else cython.NULL
            cp.child_cls = cython.cast(cython.pointer(PyObject), p.child.cls) \
                if p.child is not None else cython.NULL
