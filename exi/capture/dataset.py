"""Capture records as rows of one table: the Parquet dataset of `--format parquet`.

One row per record (V2G message, SDP datagram, HomePlug AV/SLAC frame, or problem),
with the values an engineer filters on as typed columns and the full content as JSON
text.  Column types are the plain ones every reader maps the same way (string, int64,
double, timestamp in microseconds UTC; no unsigned or nested types), so DuckDB, Polars,
pandas and Spark read the files as they are:

    SELECT message, count(*) FROM 'out/*.parquet' GROUP BY message

Needs pyarrow (`pip install exi15118[parquet]`).
"""
from __future__ import annotations

import json
from typing import Iterable, Optional

from ._net import join

# column -> (pyarrow type name, description); the order is the table's
COLUMNS = {
    "file": ("string", "capture file, relative to the directory given"),
    "frame": ("int64", "frame number in the capture (1-based, as Wireshark counts)"),
    "time": ("timestamp", "capture time of the frame completing the message (UTC)"),
    "elapsed": ("double", "seconds since the file's first record"),
    "stream": ("int64", "TCP stream number within the file (null: UDP, HomePlug AV)"),
    "session": ("string", "V2G SessionID (hex) of the message header"),
    "direction": ("string", "EVCC->SECC or SECC->EVCC"),
    "transport": ("string", "tcp, tls (decrypted), udp, homeplug"),
    "src": ("string", "source address:port, or MAC address"),
    "dst": ("string", "destination address:port, or MAC address"),
    "payload_type": ("int64", "V2GTP payload type"),
    "schema": ("string", "message set: sap, din, iso2, iso20_dc, ..., homeplug"),
    "message": ("string", "message name (e.g. CurrentDemandReq, CM_SLAC_MATCH.CNF)"),
    "response_code": ("string", "ResponseCode of responses"),
    "evse_processing": ("string", "EVSEProcessing"),
    "target_voltage": ("double", "EVTargetVoltage in V (multiplier applied)"),
    "target_current": ("double", "EVTargetCurrent in A"),
    "present_voltage": ("double", "EVSEPresentVoltage in V"),
    "present_current": ("double", "EVSEPresentCurrent in A"),
    "soc": ("double", "state of charge in % (EVRESSSOC, PresentSOC)"),
    "evccid": ("string", "EVCCID of SessionSetupReq"),
    "evseid": ("string", "EVSEID"),
    "error": ("string", "what went wrong (undecodable message, damaged frame...)"),
    "content": ("string", "the decoded message as JSON (exi.to_dict form)"),
}

# typed columns filled from the message body: column -> element names, first found wins
_FIELDS = {
    "response_code": ("ResponseCode",), "evse_processing": ("EVSEProcessing",),
    "target_voltage": ("EVTargetVoltage",), "target_current": ("EVTargetCurrent",),
    "present_voltage": ("EVSEPresentVoltage",), "present_current": ("EVSEPresentCurrent",),
    "soc": ("EVRESSSOC", "PresentSOC"), "evccid": ("EVCCID",), "evseid": ("EVSEID",),
}
_WANTED = {name: col for col, names in _FIELDS.items() for name in names}
_NUMERIC = {"target_voltage", "target_current", "present_voltage", "present_current", "soc"}
_MAX_US = (1 << 63) - 1


def _json_default(o):
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).hex().upper()
    return str(o)


def physical(v) -> Optional[float]:
    """A number out of a DIN/-2 PhysicalValue (Value x 10^Multiplier), an ISO 15118-20
    RationalNumber (Value x 10^Exponent) or a plain number."""
    if isinstance(v, dict):
        if "Value" not in v:
            return None
        try:
            value = float(v["Value"])
            exp = int(v.get("Multiplier", v.get("Exponent", 0)) or 0)
        except (TypeError, ValueError):
            return None
        return value * 10.0 ** exp if exp >= 0 else value / 10.0 ** -exp
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def key_values(content) -> dict:
    """The typed columns found in a message's dict (first occurrence in document order)."""
    found: dict = {}
    if type(content) is dict:
        _walk(content, found)
    return found


def _walk(node: dict, found: dict) -> None:
    for k, v in node.items():
        col = _WANTED.get(k)
        if col is not None:
            if col not in found:
                found[col] = physical(v) if col in _NUMERIC else (
                    v if type(v) is str else json.dumps(v, default=_json_default))
            continue
        t = type(v)
        if t is dict:
            _walk(v, found)
        elif t is list:
            for x in v:
                if type(x) is dict:
                    _walk(x, found)


def _session(content) -> Optional[str]:
    if not isinstance(content, dict) or not content:
        return None
    root = next(iter(content.values()))
    if not isinstance(root, dict):
        return None
    header = root.get("Header") or {}
    sid = header.get("SessionID") if isinstance(header, dict) else None
    return None if sid is None else str(sid)


def rows(records: Iterable, file: str) -> dict:
    """Column lists (COLUMNS order) for the records of one capture."""
    cols: dict = {c: [] for c in COLUMNS}
    first = None
    for r in records:
        c = r.content
        t = r.time or None
        if t is not None and first is None:
            first = t
        kv = key_values(c) if c else {}
        cols["file"].append(file)
        cols["frame"].append(r.frame)
        us = None if t is None else int(round(t * 1e6))
        # a damaged or odd capture clock (pcapng if_tsresol/if_tsoffset) can put a frame
        # beyond the int64 microseconds of the column: that time is left empty, the row kept
        cols["time"].append(us if us is not None and -_MAX_US <= us <= _MAX_US else None)
        cols["elapsed"].append(None if t is None else round(t - first, 6))
        cols["stream"].append(r.stream)
        cols["session"].append(_session(c) if r.transport != "homeplug" else None)
        cols["direction"].append(r.direction)
        cols["transport"].append(r.transport or None)
        if r.transport == "homeplug":
            cols["src"].append(r.src or None)
            cols["dst"].append(r.dst or None)
        else:
            cols["src"].append(join(r.src, r.sport) if r.src else None)
            cols["dst"].append(join(r.dst, r.dport) if r.dst else None)
        cols["payload_type"].append(r.payload_type)
        cols["schema"].append(r.schema)
        cols["message"].append(r.name)
        for col in _FIELDS:
            cols[col].append(kv.get(col))
        cols["error"].append(r.error)
        cols["content"].append(None if c is None else json.dumps(c, default=_json_default, ensure_ascii=False))
    return cols


def _pa():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingPyarrow("--format parquet needs pyarrow: pip install 'exi15118[parquet]'") from None
    return pyarrow


class MissingPyarrow(RuntimeError):
    pass


def arrow_schema():
    pa = _pa()
    types = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(c, types[t], metadata={"description": d}) for c, (t, d) in COLUMNS.items()])


def table(cols: dict):
    pa = _pa()
    schema = arrow_schema()
    return pa.Table.from_arrays([pa.array(cols[f.name], type=f.type) for f in schema], schema=schema)


class DatasetWriter:
    """Writes tables as part-NNNNN.parquet files of one dataset directory, in row groups
    of about ROW_GROUP rows (small per-capture tables are gathered first)."""

    ROW_GROUP = 128 * 1024
    PART_ROWS = 4 * 1024 * 1024

    def __init__(self, directory: str):
        import os
        self.pa = _pa()
        self.pq = __import__("pyarrow.parquet", fromlist=["parquet"])
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        existing = [n for n in os.listdir(directory) if n.endswith(".parquet")]
        if existing:
            raise FileExistsError(f"{directory} already holds a Parquet dataset ({existing[0]}, ...): "
                                  "remove it or give another --out")
        self.schema = arrow_schema()
        self.pending: list = []
        self.pending_rows = 0
        self.writer = None
        self.part = 0
        self.part_rows = 0
        self.rows = 0
        self.files: list = []

    def add(self, t) -> None:
        if t.num_rows == 0:
            return
        self.pending.append(t)
        self.pending_rows += t.num_rows
        if self.pending_rows >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        import os
        t = self.pa.concat_tables(self.pending)
        self.pending, self.pending_rows = [], 0
        if self.writer is None or self.part_rows >= self.PART_ROWS:
            if self.writer is not None:
                self.writer.close()
                self.part += 1
            path = os.path.join(self.dir, f"part-{self.part:05d}.parquet")
            self.writer = self.pq.ParquetWriter(path, self.schema, compression="snappy")
            self.files.append(path)
            self.part_rows = 0
        self.writer.write_table(t, row_group_size=self.ROW_GROUP)
        self.part_rows += t.num_rows
        self.rows += t.num_rows

    def close(self) -> None:
        self._flush()
        if self.writer is None:        # no rows at all: still one (empty) file with the schema
            import os
            path = os.path.join(self.dir, f"part-{self.part:05d}.parquet")
            self.pq.write_table(self.schema.empty_table(), path, compression="snappy")
            self.files.append(path)
        else:
            self.writer.close()
