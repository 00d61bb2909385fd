cimport cython
from cpython.object cimport PyObject
from ._bits cimport BitReader, BitWriter

# borrowed-pointer versions of a few checks (no reference count updates)
cdef extern from *:
    """
    #define exi_is_exact_int(o) PyLong_CheckExact(o)
    #define exi_as_longlong(o, overflow) PyLong_AsLongLongAndOverflow(o, overflow)
    #define exi_none() Py_None
    #define exi_true() Py_True
    #define exi_false() Py_False
    """
    bint exi_is_exact_int(PyObject* o) noexcept
    long long exi_as_longlong(PyObject* o, int* overflow) except? -1
    PyObject* exi_none() noexcept
    PyObject* exi_true() noexcept
    PyObject* exi_false() noexcept

# The C mirror of a grammar state and its productions (built by freeze()): what the
# compiled decoder walks.  The PyObject* are borrowed: the schema keeps the objects.
cdef struct CProd

cdef struct CState:
    Py_ssize_t n1
    int width
    CProd* prods
    PyObject* state             # the State

cdef struct CProd:
    int kind
    int dt_kind                 # datatype kind of a simple child element, -1 otherwise
    int nbits
    bint is_list
    long long lo, hi            # value range of n-bit and 64-bit integers (Datatype.lo_c, hi_c)
    Py_ssize_t offset
    CState* next
    PyObject* prod              # the Prod
    PyObject* qname
    PyObject* members           # enumeration members (a tuple) or NULL
    PyObject* child             # the child's Grammar or NULL
    PyObject* child_cls

@cython.final
cdef class Datatype:
    cdef public int kind
    cdef public object lo, hi
    cdef public long long lo_c, hi_c
    cdef public int nbits
    cdef public Py_ssize_t min_len, max_len
    cdef public tuple members
    cdef public dict index_of
    cdef public dict index_of_id
    cpdef Py_ssize_t enum_index(self, v)
    cdef public Datatype item

@cython.final
cdef class Prod:
    cdef public int kind
    cdef public object qname
    cdef public Py_ssize_t field
    cdef public int ref
    cdef public int next_id
    cdef public State next
    cdef public Grammar child
    cdef public Datatype dt
    cdef public bint simple
    cdef public bint is_list
    cdef public Py_ssize_t offset

@cython.final
cdef class State:
    cdef public int kind
    cdef public list prods
    cdef public Py_ssize_t n1
    cdef public int width, width2
    cdef public Py_ssize_t ee_code, ch_code
    cdef public list codes
    cdef Py_ssize_t* c_codes            # `codes` as a C array (compiled engine)
    cdef Py_ssize_t ncodes
    cdef public tuple l2
    cdef CState cs
    cpdef Py_ssize_t code_for(self, Py_ssize_t field)

@cython.final
cdef class Grammar:
    cdef public State first, empty_first
    cdef public object cls
    cdef public Datatype dt
    cdef public bint simple
    cdef public tuple fields, names
    cdef public list kinds, lists, offsets
    cdef public Py_ssize_t nfields
    cdef public bint ordered
    # compiled engine: kinds (| FIELD_LIST) and slot offsets as C arrays, and the slots
    # as one contiguous run [slot_lo, slot_lo + 8 * nfields) when they are (slot_lo < 0: not)
    cdef int* c_kinds
    cdef Py_ssize_t* c_offsets
    cdef Py_ssize_t slot_lo

@cython.final
cdef class Root:
    cdef public object schema
    cdef public list qnames, grammars, classes
    cdef public Py_ssize_t n
    cdef public int width
    cdef public dict index
    cdef public list is_message
    cdef public str message_names

@cython.final
cdef class Decoder:
    cdef public object schema
    cdef public Root root
    cdef public BitReader r
    cdef public list global_values
    cdef public dict local_values
    cdef public int depth
    cdef public object generic
    cdef public bint any_root
    cdef PyObject* qpath[202]      # qname of each depth entered by child_element (MAX_DEPTH + 2)
    cpdef header(self)
    cpdef document(self)
    cpdef element(self, Grammar g, cls, qname)
    cpdef simple_element(self, Grammar g, qname)
    cpdef complex_element(self, Grammar g, cls, qname)
    cdef str inner_path(self, int d0)
    cdef child_element(self, Grammar g, cls, qname)
    cpdef int second_level(self, State st) except -1
    cpdef store(self, obj, Grammar g, Prod p, v)
    cpdef production(self, obj, Grammar g, Prod p, qname)
    cpdef undeclared(self, obj, Grammar g, State st, unsigned long long code)
    cpdef value(self, Datatype dt, qname)
    cpdef string(self, qname)
    cpdef empty_value(self, Datatype dt)
    cpdef located(self, e, qname)

@cython.final
cdef class Encoder:
    cdef public object schema
    cdef public Root root
    cdef public BitWriter w
    cdef public int depth
    cdef public bint validate
    cdef public object generic
    cdef PyObject* qpath[202]      # qname of each depth entered by child_element (MAX_DEPTH + 2)
    cpdef int header(self) except -1
    cpdef int document(self, obj, qname) except -1
    cpdef int element(self, Grammar g, value, qname) except -1
    cpdef int simple_element(self, Grammar g, value, qname) except -1
    cpdef int complex_element(self, Grammar g, obj, qname) except -1
    cdef str inner_path(self, int d0)
    cdef int child_element(self, Grammar g, value, qname) except -1
    cpdef read_field(self, obj, Grammar g, Py_ssize_t i)
    cpdef State child(self, State st, Py_ssize_t code, item)
    cdef State child_c(self, State st, Py_ssize_t code, PyObject* item)
    cpdef fields_in_order(self, Grammar g, obj, qname)
    cpdef int value(self, Datatype dt, v) except -1
    cpdef located(self, e, qname)

# constants of exi/_kinds.py and of this module, as C ints in the compiled engine
cdef int P_AT, P_CH, P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS, S_CONTENT, S_FIRST, S_START
cdef int DT_BASE64, DT_BOOL, DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT, DT_LIST
cdef int DT_NBIT, DT_STRING, DT_UINT, F_ANY, F_ATTRIBUTE, F_CONTENT, F_ELEMENT, F_VALUE
cdef int L2_EE, L2_XSI_TYPE, L2_XSI_NIL, L2_AT_ANY, L2_AT_INVALID, L2_SE_ANY, L2_CH
cdef int MAX_DEPTH, FIELD_LIST
cdef long long LL_FLOOR
cpdef int coding_length(Py_ssize_t n)
cpdef decode_document(schema, bytes data, bint any_root, bint padding)
cpdef encode_document(schema, obj, qname, bint validate)

# BitWriter.write's common case for the encoder, reached through the Encoder (an argument,
# so no reference count update on the writer, which every write would otherwise touch)
cdef inline int emit(Encoder e, unsigned long long v, int n) except -1:
    if 0 < n <= 56 and e.w.nacc + n <= 64:
        e.w.acc = (e.w.acc << n) | (v & ((<unsigned long long>1 << n) - 1))
        e.w.nacc += n
        return 0
    return e.w.write(v, n)

cdef inline int emit_uint(Encoder e, unsigned long long v) except -1:
    # an Unsigned Integer below 2**49: at most seven 7-bit groups, written at once
    cdef unsigned long long groups = 0
    cdef int nbits = 0
    if v >= (<unsigned long long>1 << 49):
        return e.w.write_small_uint(v)
    while v >= 0x80:
        groups = (groups << 8) | (v & 0x7F) | 0x80
        v >>= 7
        nbits += 8
    return emit(e, (groups << 8) | v, nbits + 8)

cdef Decoder _spare_decoder
cdef dict _SCHEMAS
cdef dict _ROOTS
cdef Encoder _spare_encoder
cdef object _last_sid, _last_schema, _last_type
cdef tuple _last_root
