"""One direction of a TCP connection put back in order.

In-order data is passed through without copying; retransmissions and overlaps are
trimmed against the next expected sequence number (first copy wins, as in most
stacks); segments from the future wait in a dict, ordered by a heap of their places
(so that a capture of many small segments in reverse order costs N log N, not N squared:
32,000 one-byte segments took a minute with a scan of the dict).  The wait is bounded: when
more than MAX_OOO bytes are held, or at the end of the stream, the hole is declared
lost and reported as a gap (an int) so the framer above can resynchronise.  The peer's
ACK settles it sooner: once the receiver acknowledges bytes beyond a hole, it has them
and the capture does not, so waiting longer is pointless.

Cython pure-Python mode (see _tcp.pxd): compiled by setup.py, also runs as plain Python.
"""
import cython
from heapq import heapify, heappop, heappush

M = 0xFFFFFFFF
HALF = 0x80000000
MAX_OOO = 1 << 20


@cython.cclass
class Half:
    __slots__ = ("nxt", "ooo", "held", "order", "base")

    def __init__(self):
        self.nxt = -1       # next expected sequence number; -1 until the first segment
        self.ooo = None     # seq -> bytes, allocated on first out-of-order segment
        self.order = None   # heap of (place, seq) of the held segments; place = seq - base
        self.base = 0       # at or before nxt and every held seq (modulo 2**32)
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
                    self.order = []
                if not ooo:
                    self.base = nxt
                old = ooo.get(seq)
                if old is None:
                    ooo[seq] = data
                    heappush(self.order, ((seq - self.base) & M, seq))
                    self.held += len(data)
                elif len(old) < len(data):
                    ooo[seq] = data
                    self.held += len(data) - len(old)
                if self.held > MAX_OOO:
                    return self._skip()
                return ()
        self.nxt = (nxt + len(data)) & M
        if self.ooo:
            return [data, *self._drain()]
        return (data,)

    @cython.locals(back=cython.longlong, here=cython.longlong)
    def _drain(self) -> list:
        """The held segments that now start at or before nxt, in order (trimmed)."""
        out = []
        ooo = self.ooo
        order = self.order
        if ((self.nxt - self.base) & M) >= HALF:
            self._rebase()                      # 2 GiB past base: places are measured anew
        here = (self.nxt - self.base) & M
        while order and order[0][0] <= here:
            seq = heappop(order)[1]
            data = ooo.pop(seq)
            self.held -= len(data)
            back = (self.nxt - seq) & M         # how far it starts before nxt (0: at it)
            if back >= len(data):
                continue
            if back:
                data = data[back:]
            out.append(data)
            self.nxt = (self.nxt + len(data)) & M
            here = (self.nxt - self.base) & M
        return out

    def _rebase(self):
        self.base = self.nxt
        self.order = [((seq - self.base) & M, seq) for seq in self.ooo]
        heapify(self.order)

    @cython.locals(gap=cython.longlong, first=cython.longlong)
    def _skip(self) -> list:
        """Give up on the first hole: jump to the earliest held segment (every held one
        starts after nxt: whatever nxt reached was drained)."""
        first = self.order[0][1]
        gap = (first - self.nxt) & M
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
