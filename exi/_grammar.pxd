cimport cython
from cpython.object cimport PyObject

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

# constants of exi/_kinds.py, as C ints in the compiled module
cdef int DT_BASE64, DT_ENUM, DT_HEX, DT_INT, DT_NBIT, DT_STRING, DT_UINT
cdef int P_AT, P_CH, P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS
cpdef int coding_length(Py_ssize_t n)
