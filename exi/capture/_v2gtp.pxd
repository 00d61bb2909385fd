cimport cython

cdef Py_ssize_t HEADER_LEN          # C constants when compiled
cdef int VERSION, INV_VERSION

cpdef bint plausible_at(bytes buf, Py_ssize_t i)
cpdef Py_ssize_t find_header(bytes buf, Py_ssize_t start=*) except -2

@cython.final
cdef class Framer:
    cdef public bytearray buf
    cdef public Py_ssize_t need
    cdef public Py_ssize_t pos
    cdef public bint sync
    cdef public Py_ssize_t skipped
    cdef public Py_ssize_t skip_at
    cpdef list feed(self, bytes data)
    cdef _skip(self, Py_ssize_t count, Py_ssize_t at)
    cpdef list gap(self, Py_ssize_t size)
    cpdef list flush(self)
