from ._bits cimport BitReader, BitWriter

cdef class Datatype:
    cdef public int kind
    cdef public object lo, hi
    cdef public int nbits
    cdef public Py_ssize_t min_len, max_len
    cdef public tuple members
    cdef public dict index_of
    cdef public Datatype item
    cdef public str name

cdef class State:
    cdef public int kind
    cdef public tuple prods
    cdef public Py_ssize_t n1
    cdef public int width, width2
    cdef public Py_ssize_t ee_code, ch_code
    cdef public dict by_field
    cdef public tuple l2
    cdef public tuple next_states

cdef class Grammar:
    cdef public State first, empty_first
    cdef public object cls
    cdef public Datatype dt
    cdef public bint simple
    cdef public tuple fields, names

cdef class Decoder:
    cdef public object schema
    cdef public BitReader r
    cdef public list global_values
    cdef public dict local_values
    cdef public int depth
    cpdef element(self, Grammar g, cls, qname)
    cpdef simple_element(self, Grammar g, qname)
    cpdef complex_element(self, Grammar g, cls, qname)
    cpdef int second_level(self, State st, where) except -1
    cpdef value(self, Datatype dt, qname)
    cpdef string(self, qname)

cdef class Encoder:
    cdef public object schema
    cdef public BitWriter w
    cdef public int depth
    cdef public bint validate
    cpdef element(self, Grammar g, value, qname)
    cpdef simple_element(self, Grammar g, value, qname)
    cpdef complex_element(self, Grammar g, obj, qname)
    cpdef value(self, Datatype dt, v)
