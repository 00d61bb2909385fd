"""Bit-packed EXI streams (EXI 1.0 section 7.1.1): bits are written most significant first.

Pure-Python source compiled by Cython (see _bits.pxd); the same file runs uncompiled.
Every read checks the remaining input first, so a corrupt length can never make us
allocate or loop beyond the input.  Compiled, the reader and writer work on the raw
octets through a pointer and move up to 57 bits with one 64-bit big-endian load or store.
"""
import cython

if cython.compiled:
    from cython.cimports.cpython.bytearray import PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
    from cython.cimports.cpython.bytes import PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
    from cython.cimports.cpython.long import PyLong_AsLongLongAndOverflow
    from cython.cimports.libc.string import memcpy, memset
    from cython.cimports.cpython.unicode import PyUnicode_DATA
    from cython.cimports.exi._bits import PyUnicode_New

SMALL_UINT_MAX = 0x7FFFFFFFFFFFFFFF    # read_small_uint clamps larger values to this


class EndOfStream(Exception):
    """Raised by BitReader when a read goes past the end of the input."""


@cython.cclass
class BitReader:
    def __init__(self, data, start_bit=0):
        self.reset_input(data if type(data) is bytes else bytes(data))
        self.pos = start_bit

    def reset_input(self, data):
        """Read `data` from its first bit (the compiled engine makes readers without __init__)."""
        self.data = data
        self.nbytes = len(data)
        self.nbits = self.nbytes * 8
        self.pos = 0
        if cython.compiled:
            # a private copy with 8 zero octets after the input: every 64-bit window the
            # fast paths load (from an octet before the end) lies inside it, with no test
            need = self.nbytes + 8
            if self.padsize < need:
                self.pad = bytearray(max(need, 256))
                self.padsize = max(need, 256)
            p = cython.cast(cython.p_uchar, PyByteArray_AS_STRING(self.pad))
            memcpy(p, PyBytes_AS_STRING(data), self.nbytes)
            memset(p + self.nbytes, 0, 8)
            self.buf = p
        return 0

    def release(self):
        """Drop the reference to the input (a spare reader keeps no caller's bytes); no
        bit can be read until the next reset_input."""
        self.data = b""
        self.nbytes = 0
        self.nbits = 0
        self.pos = 0
        if cython.compiled and self.padsize > 65536:
            # a large input's copy is not kept by the spare reader (the pointer stays valid)
            self.pad = bytearray(256)
            self.padsize = 256
            self.buf = cython.cast(cython.p_uchar, PyByteArray_AS_STRING(self.pad))
        return 0

    @cython.locals(v=cython.ulonglong, pos=cython.Py_ssize_t, byte=cython.uint,
                   avail=cython.int, take=cython.int, i=cython.Py_ssize_t)
    def read(self, n):
        """Read n bits (n <= 64) as an unsigned number."""
        pos = self.pos
        if pos + n > self.nbits:
            raise EndOfStream()
        if n == 0:
            return 0
        i = pos >> 3
        if cython.compiled and n <= 57:
            # fast path: one big-endian 64-bit window holds all n bits ((pos & 7) + n <= 64)
            self.pos = pos + n
            return (exi_load_be64(self.buf + i) << (pos & 7)) >> (64 - n)
        v = 0
        while n > 0:
            byte = self.buf[pos >> 3] if cython.compiled else self.data[pos >> 3]
            avail = 8 - (pos & 7)
            take = avail if avail < n else n
            v = (v << take) | ((byte >> (avail - take)) & ((1 << take) - 1))
            n -= take
            pos += take
        self.pos = pos
        return v

    @cython.locals(pos=cython.Py_ssize_t)
    def read_bit(self):
        pos = self.pos
        if pos >= self.nbits:
            raise EndOfStream()
        self.pos = pos + 1
        if cython.compiled:
            return (self.buf[pos >> 3] >> (7 - (pos & 7))) & 1
        return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1

    @cython.locals(shift=cython.int, b=cython.uint, small=cython.ulonglong, pos0=cython.Py_ssize_t)
    def read_uint(self):
        """EXI Unsigned Integer (7.1.6): 7-bit groups, least significant first."""
        pos0 = self.pos
        if cython.compiled:
            small = self.read_small_uint()
            if small < SMALL_UINT_MAX:
                return small
            self.pos = pos0                 # 63 bits or more: read it again as a big number
        small = 0
        shift = 0
        try:
            while True:
                b = self.read(8)
                if shift < 56:
                    small |= cython.cast(cython.ulonglong, b & 0x7F) << shift   # 64-bit shift
                else:
                    return self._read_big_uint(small, shift, b)
                if not b & 0x80:
                    return small
                shift += 7
        except EndOfStream:
            # a truncated integer is reported where it starts, as read_small_uint does
            self.pos = pos0
            raise

    def _read_big_uint(self, small, shift, b):
        value = int(small) | ((b & 0x7F) << shift)
        while b & 0x80:
            shift += 7
            b = self.read(8)
            value |= (b & 0x7F) << shift
        return value

    @cython.locals(shift=cython.int, b=cython.uint, small=cython.ulonglong, pos=cython.Py_ssize_t,
                   i=cython.Py_ssize_t, sh=cython.int, overflow=cython.bint, w=cython.ulonglong,
                   k=cython.int)
    def read_small_uint(self):
        """An Unsigned Integer as a C number, clamped to SMALL_UINT_MAX (2**63 - 1)."""
        if not cython.compiled:
            return min(self.read_uint(), SMALL_UINT_MAX)
        pos = self.pos
        if pos + 8 <= self.nbits:
            # the common case, a number below 2**49: its octets from one 64-bit window
            w = exi_load_be64(self.buf + (pos >> 3)) << (pos & 7)
            small = 0
            for k in range(7):
                b = w >> 56
                small |= cython.cast(cython.ulonglong, b & 0x7F) << (7 * k)
                if not b & 0x80:
                    if pos + 8 * (k + 1) > self.nbits:
                        raise EndOfStream()
                    self.pos = pos + 8 * (k + 1)
                    return small
                w <<= 8
        small = 0
        shift = 0
        overflow = False
        pos = self.pos
        i = pos >> 3
        sh = pos & 7
        while True:
            if pos + 8 > self.nbits:
                raise EndOfStream()
            if sh:      # the octet straddles two input octets; both exist (bounds above)
                b = ((self.buf[i] << sh) | (self.buf[i + 1] >> (8 - sh))) & 0xFF
            else:
                b = self.buf[i]
            i += 1
            pos += 8
            if shift <= 56:
                small |= cython.cast(cython.ulonglong, b & 0x7F) << shift
            elif b & 0x7F:
                overflow = True
            if not b & 0x80:
                break
            shift += 7
        self.pos = pos
        return SMALL_UINT_MAX if overflow else small

    @cython.locals(pos=cython.Py_ssize_t, i=cython.Py_ssize_t, start=cython.Py_ssize_t, shift=cython.int,
                   sh=cython.int, p=cython.p_uchar, src=cython.p_const_uchar)
    def read_bytes(self, n):
        """n octets, each as 8 bits; n was checked against the remaining input first."""
        pos = self.pos
        if n < 0 or pos + n * 8 > self.nbits:
            raise EndOfStream()
        start = pos >> 3
        if pos & 7 == 0:
            self.pos = pos + n * 8
            return self.data[start:start + n]
        if cython.compiled:
            # unaligned: every output octet straddles two input octets (start + n exists
            # because the run does not end on an octet boundary)
            sh = pos & 7
            out = PyBytes_FromStringAndSize(cython.NULL, n)
            p = cython.cast(cython.p_uchar, PyBytes_AS_STRING(out))
            exi_copy_shifted(p, self.buf + start, n, sh)
            self.pos = pos + n * 8
            return out
        # unaligned: shift the whole run at once as one big integer
        shift = 8 - (pos & 7)
        chunk = int.from_bytes(self.data[start:start + n + 1], "big")
        self.pos = pos + n * 8
        # n + 1 octets shifted right keep the run in their low n octets
        return (chunk >> shift).to_bytes(n + 1, "big")[1:]

    @cython.locals(pos=cython.Py_ssize_t, p=cython.p_uchar)
    def read_ascii(self, n):
        """n characters that are all below 128 (an octet each, top bit clear) as a str, or
        None (nothing read) if one is not; the caller checked the n octets are there.
        Compiled engine only."""
        if not cython.compiled:
            return None         # (the engine calls it compiled only: the general path reads it)
        pos = self.pos
        out = PyUnicode_New(n, 127)
        p = cython.cast(cython.p_uchar, PyUnicode_DATA(out))
        if exi_copy_shifted(p, self.buf + (pos >> 3), n, pos & 7) & 0x8080808080808080:
            return None
        self.pos = pos + n * 8
        return out

    def remaining(self):
        return self.nbits - self.pos


@cython.cclass
class BitWriter:
    """Accumulates up to 64 bits in a machine word and flushes whole octets into a buffer
    that grows by doubling: no per-bit Python calls."""

    def __init__(self):
        self.clear()

    def clear(self):
        """Start an empty stream (the compiled engine makes writers without __init__)."""
        if cython.compiled:
            self.buf = PyByteArray_FromStringAndSize(cython.NULL, 128)
        else:
            self.buf = bytearray(128)
        self.nbytes = 0
        self.acc = 0
        self.nacc = 0
        return 0

    def restart(self):
        """An empty stream again, keeping the buffer unless it grew large."""
        if len(self.buf) > 65536:
            return self.clear()
        self.nbytes = 0
        self.acc = 0
        self.nacc = 0
        return 0

    def write(self, v, n):
        """Write the n (<= 64) low bits of v."""
        if n > 56:
            self.write(v >> 32, n - 32)
            v = v & 0xFFFFFFFF
            n = 32
        if n <= 0:
            return 0
        if self.nacc + n > 64:
            self.flush()
        self.acc = (self.acc << n) | (v & ((cython.cast(cython.ulonglong, 1) << n) - 1))   # 64-bit mask
        self.nacc += n
        return 0

    @cython.locals(k=cython.int, p=cython.p_uchar)
    def flush(self):
        """Move the whole octets of the accumulator into the buffer."""
        if self.nbytes + 8 > len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        if cython.compiled:
            k = self.nacc >> 3
            if k:
                # the pending bits left-aligned in one 64-bit store; only k octets count
                p = cython.cast(cython.p_uchar, PyByteArray_AS_STRING(self.buf))
                exi_store_be64(p + self.nbytes, self.acc << (64 - self.nacc))
                self.nbytes += k
                self.nacc -= k * 8
                self.acc &= (cython.cast(cython.ulonglong, 1) << self.nacc) - 1
            return 0
        while self.nacc >= 8:
            self.nacc -= 8
            self.buf[self.nbytes] = (self.acc >> self.nacc) & 0xFF
            self.nbytes += 1
        self.acc &= (1 << self.nacc) - 1
        return 0

    @cython.locals(x=cython.longlong, overflow=cython.int)
    def write_uint(self, v):
        """EXI Unsigned Integer (7.1.6); v >= 0, any size."""
        if cython.compiled and type(v) is int:
            overflow = 0
            x = PyLong_AsLongLongAndOverflow(v, cython.address(overflow))
            if overflow == 0 and x >= 0:
                self.write_small_uint(x)
                return 0
        if v < 0x80:
            self.write(v, 8)
            return 0
        while v >= 0x80:
            self.write((v & 0x7F) | 0x80, 8)
            v >>= 7
        self.write(v, 8)
        return 0

    @cython.locals(groups=cython.ulonglong, nbits=cython.int)
    def write_small_uint(self, v):
        """write_uint for a C number: up to seven 7-bit groups go out in one write."""
        groups = 0
        nbits = 0
        while v >= 0x80 and nbits < 56:
            groups = (groups << 8) | (v & 0x7F) | 0x80
            v >>= 7
            nbits += 8
        if v >= 0x80:                       # more than 49 significant bits
            self.write(groups, nbits)
            while v >= 0x80:
                self.write((v & 0x7F) | 0x80, 8)
                v >>= 7
            self.write(v, 8)
            return 0
        self.write((groups << 8) | v, nbits + 8)
        return 0

    @cython.locals(i=cython.Py_ssize_t, n=cython.Py_ssize_t, k=cython.int, a=cython.uint,
                   b=cython.uint, p=cython.p_uchar, src=cython.p_const_uchar, w=cython.ulonglong,
                   v=cython.ulonglong)
    def write_bytes(self, data):
        """Octets, each as 8 bits, after whatever bits are pending."""
        if cython.compiled:
            if type(data) is not bytes:
                data = bytes(data)
            n = PyBytes_GET_SIZE(data)
        else:
            n = len(data)
        if cython.compiled:
            return self.write_octets(cython.cast(cython.p_const_uchar, PyBytes_AS_STRING(data)), n)
        self.flush()
        while self.nbytes + n + 8 > len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        if self.nacc == 0:
            self.buf[self.nbytes:self.nbytes + n] = data
            self.nbytes += n
            return 0
        # unaligned: prepend the pending bits and shift the whole run as one big integer;
        # the last nacc bits stay pending
        k = self.nacc
        value = (int(self.acc) << (8 * n)) | int.from_bytes(data, "big")
        self.buf[self.nbytes:self.nbytes + n] = (value >> k).to_bytes(n, "big")
        self.nbytes += n
        self.acc = value & ((1 << k) - 1)
        self.nacc = k
        return 0

    @cython.locals(i=cython.Py_ssize_t, k=cython.int,
                   a=cython.uint, b=cython.uint, p=cython.p_uchar, w=cython.ulonglong, v=cython.ulonglong)
    def write_octets(self, src, n):
        """write_bytes of the n octets at src (a C pointer when compiled)."""
        self.flush()
        while self.nbytes + n + 8 > len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        if cython.compiled:
            p = cython.cast(cython.p_uchar, PyByteArray_AS_STRING(self.buf)) + self.nbytes
            k = self.nacc
            if k == 0:
                memcpy(p, src, n)
            else:
                # each output octet: the k pending bits, then the high 8 - k bits of the next
                # input octet, whose low k bits become the pending ones; eight octets at a
                # time through one 64-bit load and store, the rest one by one
                w = self.acc
                i = 0
                while i + 8 <= n:
                    v = exi_load_be64(src + i)
                    exi_store_be64(p + i, (w << (64 - k)) | (v >> k))
                    w = v & ((cython.cast(cython.ulonglong, 1) << k) - 1)
                    i += 8
                a = cython.cast(cython.uint, w)
                while i < n:
                    b = src[i]
                    p[i] = cython.cast(cython.uchar, (a << (8 - k)) | (b >> k))
                    a = b & ((1 << k) - 1)
                    i += 1
                self.acc = a
            self.nbytes += n
            return 0
        return self.write_bytes(bytes(src[:n]))     # uncompiled: src is bytes-like

    def mark(self):
        """A position to reset() to: the bits written so far."""
        self.flush()
        return self.nbytes * 8 + self.nacc

    @cython.locals(nbytes=cython.Py_ssize_t, bits=cython.int)
    def reset(self, mark):
        self.flush()
        nbytes = mark >> 3
        bits = mark & 7
        if nbytes < self.nbytes:
            self.acc = self.buf[nbytes] >> (8 - bits) if bits else 0
            self.nbytes = nbytes
        else:
            self.acc = self.acc >> (self.nacc - bits)
        self.nacc = bits
        return 0

    @cython.locals(p=cython.p_uchar)
    def getvalue(self):
        """The stream padded with zero bits to a whole octet (EXI 8.2 / 5)."""
        self.flush()
        if cython.compiled:
            p = cython.cast(cython.p_uchar, PyByteArray_AS_STRING(self.buf))
            if self.nacc:   # the last octet: its pending bits, then zero bits (flush left room)
                p[self.nbytes] = cython.cast(cython.uchar, self.acc << (8 - self.nacc))
                self.nbytes += 1
                self.nacc = 0
                self.acc = 0
            return PyBytes_FromStringAndSize(cython.cast(cython.p_char, p), self.nbytes)
        if self.nacc:   # pad the last octet with zero bits
            self.write(0, 8 - self.nacc)
            self.flush()
        return bytes(self.buf[:self.nbytes])
