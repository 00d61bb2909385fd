"""One direction of a TCP connection put back in order.

In-order data is passed through without copying; retransmissions and overlaps are
trimmed against the next expected sequence number (first copy wins, as in most
stacks); segments from the future wait in a small dict.  The wait is bounded: when
more than MAX_OOO bytes are held, or at the end of the stream, the hole is declared
lost and reported as a gap (an int) so the framer above can resynchronise.  The peer's
ACK settles it sooner: once the receiver acknowledges bytes beyond a hole, it has them
and the capture does not, so waiting longer is pointless.

Cython pure-Python mode (see _tcp.pxd): compiled by setup.py, also runs as plain Python.
"""
import cython

M = 0xFFFFFFFF
HALF = 0x80000000
MAX_OOO = 1 << 20


@cython.cclass
class Half:
    __slots__ = ("nxt", "ooo", "held")

    def __init__(self):
        self.nxt = -1       # next expected sequence number; -1 until the first segment
        self.ooo = None     # seq -> bytes, allocated on first out-of-order segment
        self.held = 0

    def syn(self, seq):
        self.nxt = (seq + 1) & M

    @cython.locals(nxt=cython.longlong, d=cython.longlong, back=cython.longlong)
    def accept(self, seq, data: bytes):
        """Return a sequence of in-order pieces: bytes, or int = size of a lost gap."""
        nxt = self.nxt
        if nxt < 0:
            self.nxt = nxt = seq
        d = (seq - nxt) & M
        if d:
            if d >= HALF:                        # starts before nxt: retransmission / overlap
                back = (nxt - seq) & M
                if back >= len(data):
                    return ()
                data = data[back:]
            else:                                # a hole before it: hold it back
                ooo = self.ooo
                if ooo is None:
                    ooo = self.ooo = {}
                old = ooo.get(seq)
                if old is None or len(old) < len(data):
                    ooo[seq] = data
                    self.held += len(data) - (len(old) if old is not None else 0)
                if self.held > MAX_OOO:
                    return self._skip()
                return ()
        self.nxt = (nxt + len(data)) & M
        if self.ooo:
            return [data, *self._drain()]
        return (data,)

    @cython.locals(d=cython.longlong, back=cython.longlong)
    def _drain(self) -> list:
        out = []
        ooo = self.ooo
        progress = True
        while ooo and progress:
            progress = False
            for seq in list(ooo):
                d = (seq - self.nxt) & M
                if d == 0 or d >= HALF:
                    data = ooo.pop(seq)
                    self.held -= len(data)
                    if d:
                        back = (self.nxt - seq) & M
                        if back >= len(data):
                            continue
                        data = data[back:]
                    out.append(data)
                    self.nxt = (self.nxt + len(data)) & M
                    progress = True
        return out

    @cython.locals(nxt=cython.longlong, d=cython.longlong, gap=cython.longlong, first=cython.longlong)
    def _skip(self) -> list:
        """Give up on the first hole: jump to the earliest held segment."""
        nxt = self.nxt
        first = gap = -1
        for seq in self.ooo:
            d = (seq - nxt) & M
            if gap < 0 or d < gap:
                first, gap = seq, d
        self.nxt = first
        return [gap, *self._drain()]

    def acked(self, ack) -> list:
        """The peer acknowledged up to `ack`: holes before it are capture losses."""
        out = []
        while self.ooo and 0 < ((ack - self.nxt) & M) < HALF:
            out.extend(self._skip())
        return out

    def finish(self) -> list:
        """End of capture / connection reset: release everything still held."""
        out = []
        while self.ooo:
            out.extend(self._skip())
        return out
