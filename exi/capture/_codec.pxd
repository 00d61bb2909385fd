cimport cython

cpdef object root_name(msg)
cpdef object name_of(msg)
cdef tuple _body_plan(cls)

@cython.final
cdef class Decoded:
    cdef public object name
    cdef public object message
    cdef public object _content
    cdef public object note             # None, or what the decode accepted (zero padding)

cdef class Decoder:
    cdef public object cache           # dict, or None without the cache
    cdef public Py_ssize_t hits, calls
    cdef public object _impl
    cdef object _dec
    cdef Decoded _decode(self, payload, schema)
    cpdef Decoded decode(self, payload, schema)
