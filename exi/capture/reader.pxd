cimport cython

from exi.capture._codec cimport Decoded, Decoder
from exi.capture._net cimport parse
from exi.capture._tcp cimport Half
from exi.capture._v2gtp cimport Framer, find_header

cdef int _SYN, _FIN, _RST, _ACK                 # C constants when compiled
cdef int _UNKNOWN, _V2G, _TLS, _OTHER


cdef class MessageRecord:
    cdef public object time, frame, stream, direction, src, sport, dst, dport, transport
    cdef public object payload_type, schema, schema_guessed, name, _content, error, offset
    cdef public object exi, message, note


@cython.final
cdef class _Stream:
    cdef public Py_ssize_t id
    cdef public tuple ep, text, halves
    cdef public object framers          # None, or (Framer, Framer)
    cdef public int kind
    cdef public object evcc             # None, or the direction index in which the EVCC sends
    cdef public bint syn, closed
    cdef public Py_ssize_t scanned
    cdef public list sap_seen
    cdef public dict offer
    cdef public object schema, guess, first_ts
    cdef public tuple key
    cpdef tuple endpoint_text(self, int d)


cdef class CaptureReader:
    cdef public object keylog, decoder, progress, tls, homeplug
    cdef public dict streams
    cdef public Py_ssize_t nstreams
    cdef public set secc_endpoints
    cdef public list keylog_lines, tls_streams, tls_sessions
    cdef public dict stats
    cdef dict _ptype_schema
    cdef object _last_ts
    cdef list _finish(self, _Stream st, frame)
    cdef tuple _new_stream(self, src, sport, dst, dport, ts)
    cdef list _pieces(self, _Stream st, int d, pieces, ts, frame)
    cdef bint _classify(self, _Stream st, bytes data) except -1
    cdef list _events(self, _Stream st, int d, list events, ts, frame, str transport=*)
    cdef tuple _decode(self, _Stream st, int d, ptype, bytes payload)
    cdef _sap(self, _Stream st, name, dict content)
    cdef tuple _guess(self, _Stream st, bytes payload)
    cdef MessageRecord _sdp(self, ts, frame, src, sport, dst, dport, bytes payload)
    cdef MessageRecord _tls_problem(self, _Stream st, str msg)
