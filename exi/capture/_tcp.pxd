cimport cython

@cython.final
cdef class Half:
    cdef public long long nxt
    cdef public dict ooo
    cdef public Py_ssize_t held
    cdef list order
    cdef long long base
    cpdef syn(self, long long seq)
    cpdef accept(self, long long seq, bytes data)
    cpdef list _drain(self)
    cpdef list _skip(self)
    cdef _rebase(self)
    cpdef list acked(self, long long ack)
    cpdef list finish(self)

cdef long long M, HALF              # C constants when compiled
