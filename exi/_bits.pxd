cimport cython

# One unaligned big-endian 64-bit load/store: what the bit reader's and writer's fast
# paths are built on (the compilers turn memcpy + bswap into a single instruction).
cdef extern from *:
    """
    #include <string.h>
    static inline unsigned long long exi_load_be64(const unsigned char *p) {
        unsigned long long v;
        memcpy(&v, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
    #elif !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
        v = 0; for (int k = 0; k < 8; k++) v = (v << 8) | p[k];
    #endif
        return v;
    }
    static inline void exi_store_be64(unsigned char *p, unsigned long long v) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
        memcpy(p, &v, 8);
    #elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        memcpy(p, &v, 8);
    #else
        for (int k = 7; k >= 0; k--) { p[k] = (unsigned char)v; v >>= 8; }
    #endif
    }
    /* The 64 bits from octet i on, zero past the end of the n octets: the fast paths
       serve the last octets of a stream too (the tail out of line, the common case a load). */
    static unsigned long long exi_tail64(const unsigned char *buf, Py_ssize_t n, Py_ssize_t i) {
        unsigned long long v = 0;
        if (n >= 8) {       /* the last 8 octets, shifted: what lies past the end reads 0 */
            Py_ssize_t s = (i + 8 - n) * 8;
            return s >= 64 ? 0 : exi_load_be64(buf + n - 8) << s;
        }
        for (int k = 0; k < 8; k++) v = (v << 8) | (i + k < n ? buf[i + k] : 0);
        return v;
    }
    /* n octets that start sh (0..7) bits into src, to dst, eight per load and store;
       reads src[n] (and, for the last eight, up to src[n + 7]: the reader's copy has 8
       zero octets after the input).  Returns the OR of the octets written, 8 per lane. */
    static inline unsigned long long exi_copy_shifted(unsigned char *dst, const unsigned char *src,
                                                      Py_ssize_t n, int sh) {
        unsigned long long v, all = 0;
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            v = exi_load_be64(src + i) << sh;
            if (sh) v |= src[i + 8] >> (8 - sh);
            all |= v;
            exi_store_be64(dst + i, v);
        }
        for (; i < n; i++) {
            v = (unsigned char)((src[i] << sh) | (sh ? src[i + 1] >> (8 - sh) : 0));
            all |= v;
            dst[i] = (unsigned char)v;
        }
        return all;
    }
    static inline unsigned long long exi_window64(const unsigned char *buf, Py_ssize_t n,
                                                  Py_ssize_t i) {
        if (i + 8 <= n) return exi_load_be64(buf + i);
        return exi_tail64(buf, n, i);
    }
    """
    unsigned long long exi_load_be64(const unsigned char* p) nogil
    unsigned long long exi_copy_shifted(unsigned char* dst, const unsigned char* src, Py_ssize_t n, int sh) nogil
    unsigned long long exi_window64(const unsigned char* buf, Py_ssize_t n, Py_ssize_t i) nogil
    void exi_store_be64(unsigned char* p, unsigned long long v) nogil

cdef unsigned long long SMALL_UINT_MAX

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)

# Integer objects for decoded values: CPython shares -5..256; the values beyond repeat
# too (a schedule's start times, limits, prices), so the last one made for each of 1024
# slots (by a hash of the value) is kept and handed out again: an int object is
# immutable, so sharing one is invisible, and a hit makes and frees no object.
cdef extern from *:
    """
    #define EXI_INT_CACHE_BITS 10
    #ifndef Py_GIL_DISABLED
    static PyObject *exi_int_cache[1 << EXI_INT_CACHE_BITS];
    static long long exi_int_cache_v[1 << EXI_INT_CACHE_BITS];
    #endif
    static PyObject *exi_small_int[262];     /* CPython's shared -5..256, without the call */
    static PyObject *exi_int_made(long long v);
    static inline PyObject *exi_int(long long v) {   /* the hits inline, the rest a call */
    #ifndef Py_GIL_DISABLED
        PyObject *o;
        if (v >= -5 && v <= 256) {
            o = exi_small_int[v + 5];
        } else {
            unsigned idx = (unsigned)(((unsigned long long)v * 0x9E3779B97F4A7C15ULL)
                                      >> (64 - EXI_INT_CACHE_BITS));
            o = exi_int_cache[idx];
            if (o != NULL && exi_int_cache_v[idx] != v) o = NULL;
        }
        if (o != NULL) {
            Py_INCREF(o);
            return o;
        }
    #endif
        return exi_int_made(v);
    }
    static PyObject *exi_int_made(long long v) {
    #ifndef Py_GIL_DISABLED
        if (v >= -5 && v <= 256) {
            PyObject *o = PyLong_FromLongLong(v);
            if (o == NULL) return NULL;
            exi_small_int[v + 5] = o;           /* keeps one reference */
            Py_INCREF(o);
            return o;
        }
        {
            unsigned idx = (unsigned)(((unsigned long long)v * 0x9E3779B97F4A7C15ULL)
                                      >> (64 - EXI_INT_CACHE_BITS));
            PyObject *o = PyLong_FromLongLong(v);
            if (o == NULL) return NULL;
            Py_INCREF(o);
            PyObject *old = exi_int_cache[idx];
            exi_int_cache[idx] = o;
            exi_int_cache_v[idx] = v;
            Py_XDECREF(old);
            return o;
        }
    #endif
        return PyLong_FromLongLong(v);
    }
    """
    object exi_int(long long v)

@cython.final
cdef class BitReader:
    cdef readonly bytes data
    cdef const unsigned char* buf       # the octets of `data`, copied into pad
    cdef bytearray pad                  # the copy, 8 zero octets after the end
    cdef Py_ssize_t padsize             # len(pad)
    cdef Py_ssize_t nbytes
    cdef readonly Py_ssize_t nbits
    cdef public Py_ssize_t pos
    cpdef int reset_input(self, bytes data) except -1
    cpdef int release(self) except -1
    cpdef unsigned long long read(self, int n) except? 0xFFFFFFFFFFFFFFFF
    cpdef int read_bit(self) except -1
    cpdef read_uint(self)
    cpdef unsigned long long read_small_uint(self) except? 0xFFFFFFFFFFFFFFFF
    cpdef read_bytes(self, Py_ssize_t n)
    cdef object read_ascii(self, Py_ssize_t n)
    cpdef Py_ssize_t remaining(self)

@cython.final
cdef class BitWriter:
    cdef bytearray buf
    cdef Py_ssize_t nbytes
    cdef unsigned long long acc
    cdef int nacc
    cpdef int clear(self) except -1
    cpdef int restart(self) except -1
    cpdef int write(self, unsigned long long v, int n) except -1
    cpdef int flush(self) except -1
    cpdef int write_uint(self, v) except -1
    cpdef int write_small_uint(self, unsigned long long v) except -1
    cpdef int write_bytes(self, data) except -1
    cdef int write_octets(self, const unsigned char* src, Py_ssize_t n) except -1
    cpdef Py_ssize_t mark(self)
    cpdef int reset(self, Py_ssize_t mark) except -1
    cpdef getvalue(self)

# The reader's fast paths inlined into the compiled engine (no call through the vtable):
# the same results as BitReader.read / read_bit / read_uint, which they fall back to for
# what they do not handle (past the end, more than 57 bits, numbers of 2**49 or more).
cdef inline unsigned long long read_bits(BitReader r, int n) except? 0xFFFFFFFFFFFFFFFF:
    # 0 <= n: a state of one production has a 0-bit event code, read here as well (the
    # two shifts make n = 0 give 0); the load stays in the copy's zero octets (reset_input)
    cdef Py_ssize_t pos = r.pos
    if n <= 57 and pos + n <= r.nbits:
        r.pos = pos + n
        return ((exi_load_be64(r.buf + (pos >> 3)) << (pos & 7)) >> 1) >> (63 - n)
    return r.read(n)

cdef inline unsigned long long peek_bits(BitReader r, int n) noexcept:
    # the next n (<= 57) bits without moving: the caller checked r.pos + n <= r.nbits
    cdef Py_ssize_t pos = r.pos
    return ((exi_load_be64(r.buf + (pos >> 3)) << (pos & 7)) >> 1) >> (63 - n)

cdef inline int read_bit1(BitReader r) except -1:
    cdef Py_ssize_t pos = r.pos
    if pos < r.nbits:
        r.pos = pos + 1
        return (r.buf[pos >> 3] >> (7 - (pos & 7))) & 1
    return r.read_bit()

cdef inline object read_uint_obj(BitReader r):
    # an Unsigned Integer (7.1.6) of up to seven 7-bit groups, from one 64-bit window
    cdef Py_ssize_t pos = r.pos
    cdef unsigned long long w, b, v = 0
    cdef int k
    if pos < r.nbits:
        w = exi_load_be64(r.buf + (pos >> 3)) << (pos & 7)     # >= 57 bits: 7 octets
        for k in range(7):
            b = w >> 56
            v |= (b & 0x7F) << (7 * k)
            if not b & 0x80:
                if pos + 8 * (k + 1) > r.nbits:
                    break       # the zeros past the end: let read_uint raise
                r.pos = pos + 8 * (k + 1)
                return exi_int(<long long>v)      # below 2**49
            w <<= 8
    return r.read_uint()
