"""Bit-packed EXI streams (EXI 1.0 section 7.1.1): bits are written most significant first.

Pure-Python source compiled by Cython (see _bits.pxd); the same file runs uncompiled.
Every read checks the remaining input first, so a corrupt length can never make us
allocate or loop beyond the input.
"""
import cython


class EndOfStream(Exception):
    """Raised by BitReader when a read goes past the end of the input."""


@cython.cclass
class BitReader:
    def __init__(self, data, start_bit=0):
        self.data = bytes(data)
        self.nbits = len(self.data) * 8
        self.pos = start_bit

    @cython.locals(v=cython.ulonglong, pos=cython.Py_ssize_t, byte=cython.uint,
                   avail=cython.int, take=cython.int, i=cython.Py_ssize_t, k=cython.int)
    def read(self, n):
        """Read n bits (n <= 64) as an unsigned number."""
        pos = self.pos
        if pos + n > self.nbits:
            raise EndOfStream()
        if n == 0:
            return 0
        if cython.compiled and n <= 56 and (pos >> 3) + 8 <= (self.nbits >> 3):
            # fast path: one big-endian 64-bit window holds all n bits
            i = pos >> 3
            v = 0
            for k in range(8):
                v = (v << 8) | cython.cast(cython.uchar, self.data[i + k])
            self.pos = pos + n
            return (v >> (64 - (pos & 7) - n)) & ((cython.cast(cython.ulonglong, 1) << n) - 1)
        v = 0
        while n > 0:
            byte = self.data[pos >> 3]
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
        return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1

    @cython.locals(shift=cython.int, b=cython.uint, small=cython.ulonglong)
    def read_uint(self):
        """EXI Unsigned Integer (7.1.6): 7-bit groups, least significant first."""
        small = 0
        shift = 0
        while True:
            b = self.read(8)
            if shift < 56:
                small |= cython.cast(cython.ulonglong, b & 0x7F) << shift   # 64-bit shift
            else:
                return self._read_big_uint(small, shift, b)
            if not b & 0x80:
                return small
            shift += 7

    def _read_big_uint(self, small, shift, b):
        value = int(small) | ((b & 0x7F) << shift)
        while b & 0x80:
            shift += 7
            b = self.read(8)
            value |= (b & 0x7F) << shift
        return value

    @cython.locals(pos=cython.Py_ssize_t, i=cython.Py_ssize_t, start=cython.Py_ssize_t, shift=cython.int)
    def read_bytes(self, n):
        """n octets, each as 8 bits; n was checked against the remaining input first."""
        pos = self.pos
        if n < 0 or pos + n * 8 > self.nbits:
            raise EndOfStream()
        if pos & 7 == 0:
            self.pos = pos + n * 8
            return self.data[pos >> 3:(pos >> 3) + n]
        if n <= 8:
            out = bytearray(n)
            for i in range(n):
                out[i] = self.read(8)
            return bytes(out)
        # unaligned and long: shift the whole run at once as one big integer
        start = pos >> 3
        shift = 8 - (pos & 7)
        chunk = int.from_bytes(self.data[start:start + n + 1], "big")
        self.pos = pos + n * 8
        # n + 1 octets shifted right keep the run in their low n octets
        return (chunk >> shift).to_bytes(n + 1, "big")[1:]

    def remaining(self):
        return self.nbits - self.pos


@cython.cclass
class BitWriter:
    """Accumulates bits in a machine word and flushes whole octets into a buffer that
    grows by doubling: no per-bit Python calls."""

    def __init__(self):
        self.buf = bytearray(64)
        self.nbytes = 0
        self.acc = 0
        self.nacc = 0

    @cython.locals(k=cython.int)
    def write(self, v, n):
        """Write the n (<= 64) low bits of v."""
        if n > 56:
            self.write(v >> 32, n - 32)
            v = v & 0xFFFFFFFF
            n = 32
        if n <= 0:
            return
        if self.nacc + n > 64:
            self.flush()
        self.acc = (self.acc << n) | (v & ((cython.cast(cython.ulonglong, 1) << n) - 1))   # 64-bit mask
        self.nacc += n

    @cython.locals(k=cython.int)
    def flush(self):
        """Move the whole octets of the accumulator into the buffer."""
        if self.nbytes + 8 > len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        while self.nacc >= 8:
            self.nacc -= 8
            self.buf[self.nbytes] = (self.acc >> self.nacc) & 0xFF
            self.nbytes += 1
        self.acc &= (1 << self.nacc) - 1

    def write_uint(self, v):
        """EXI Unsigned Integer (7.1.6); v >= 0, any size."""
        if v < 0x80:
            self.write(v, 8)
            return
        while v >= 0x80:
            self.write((v & 0x7F) | 0x80, 8)
            v >>= 7
        self.write(v, 8)

    @cython.locals(i=cython.Py_ssize_t, n=cython.Py_ssize_t, k=cython.Py_ssize_t)
    def write_bytes(self, data):
        n = len(data)
        self.flush()
        if self.nacc == 0:
            while self.nbytes + n > len(self.buf):
                self.buf.extend(bytes(len(self.buf)))
            self.buf[self.nbytes:self.nbytes + n] = data
            self.nbytes += n
            return
        if n <= 7:
            self.write(int.from_bytes(data, "big"), n * 8)
            return
        # unaligned and long: prepend the pending bits and shift the whole run as one big
        # integer; the last nacc bits stay pending
        k = self.nacc
        value = (int(self.acc) << (8 * n)) | int.from_bytes(data, "big")
        out = (value >> k).to_bytes(n, "big")
        while self.nbytes + n > len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        self.buf[self.nbytes:self.nbytes + n] = out
        self.nbytes += n
        self.acc = value & ((1 << k) - 1)
        self.nacc = k

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

    def getvalue(self):
        """The stream padded with zero bits to a whole octet (EXI 8.2 / 5)."""
        self.flush()
        if self.nacc:   # pad the last octet with zero bits
            self.write(0, 8 - self.nacc)
            self.flush()
        del self.buf[self.nbytes:]
        return bytes(self.buf)
