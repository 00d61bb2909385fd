cimport cython
from cpython.object cimport PyObject
from ._bits cimport BitReader, BitWriter
from ._grammar cimport CProd, CState, Datatype, Grammar, Prod, Root, State, coding_length

# borrowed-pointer versions of a few checks (no reference count updates)
cdef extern from *:
    """
    #define exi_is_exact_int(o) PyLong_CheckExact(o)
    #define exi_is_ascii(o) (PyUnicode_CheckExact(o) && PyUnicode_IS_ASCII(o))
    #define exi_ascii_data(o) ((const unsigned char *)PyUnicode_DATA(o))
    /* an exact int's value; a one-digit int (most values) read in place, without the call */
    static inline long long exi_as_longlong(PyObject *o, int *overflow) {
    #if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
            *overflow = 0;
            return (long long)PyUnstable_Long_CompactValue((PyLongObject *)o);
        }
    #elif !defined(PYPY_VERSION)
        Py_ssize_t size = Py_SIZE(o);
        if (size >= -1 && size <= 1) {
            *overflow = 0;
            return (long long)size * (long long)((PyLongObject *)o)->ob_digit[0];
        }
    #endif
        return PyLong_AsLongLongAndOverflow(o, overflow);
    }
    #define exi_none() Py_None
    #define exi_true() Py_True
    #define exi_false() Py_False
    """
    bint exi_is_exact_int(PyObject* o) noexcept
    bint exi_is_ascii(object o) noexcept
    const unsigned char* exi_ascii_data(object o) noexcept
    long long exi_as_longlong(PyObject* o, int* overflow) except? -1
    PyObject* exi_none() noexcept
    PyObject* exi_true() noexcept
    PyObject* exi_false() noexcept

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
    cpdef int remember(self, s, qname) except -1
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
cdef int P_AT, P_CH, P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS, S_CONTENT
cdef int DT_BASE64, DT_BOOL, DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT, DT_LIST
cdef int DT_NBIT, DT_STRING, DT_UINT, F_ANY, F_ATTRIBUTE, F_CONTENT, F_ELEMENT, F_VALUE
cdef int L2_EE
cdef int MAX_DEPTH, FIELD_LIST
cdef long long LL_FLOOR
cdef str _levels_below(schema, PyObject** qpath, int d0, int depth)
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
cdef Root _doc_root
cdef object _doc_qname
cdef Py_ssize_t _doc_idx
