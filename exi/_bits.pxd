cimport cython
@cython.final
cdef class BitReader:
    cdef readonly bytes data
    cdef readonly Py_ssize_t nbits
    cdef public Py_ssize_t pos
    cpdef unsigned long long read(self, int n) except? 0xFFFFFFFFFFFFFFFF
    cpdef int read_bit(self) except -1
    cpdef read_uint(self)
    cpdef read_bytes(self, Py_ssize_t n)
    cpdef Py_ssize_t remaining(self)

@cython.final
cdef class BitWriter:
    cdef bytearray buf
    cdef Py_ssize_t nbytes
    cdef unsigned long long acc
    cdef int nacc
    cpdef write(self, unsigned long long v, int n)
    cpdef flush(self)
    cpdef write_uint(self, v)
    cpdef write_bytes(self, data)
    cpdef Py_ssize_t mark(self)
    cpdef reset(self, Py_ssize_t mark)
    cpdef getvalue(self)
