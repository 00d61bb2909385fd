"""Whole campaigns: `exi15118 decode DIR --recursive --jobs N`, text output in order, and
the Parquet dataset read back with DuckDB (the query the README shows)."""
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

import exi.capture
from exi.capture import campaign as campaign_mod, dataset, render

try:
    import duckdb
except ImportError:         # the test fails (never skips) and says what to install
    duckdb = None

from .conftest import REPO

EXAMPLE = os.path.join(REPO, "examples", "din_dc_session.pcap")
SHARED_FILES = (
    "EVerest+logfiles/Fiat/Scudo/2024-02-20T09:37:13.153Z-2_iso2_dc/ethernet-traffic.dump",
    "EVerest+logfiles/Mercedes-Benz/EQE/2023-04-18T15:18:18.778Z-1_config-dc-dinspec/ethernet-traffic.dump",
    "EVerest+logfiles/VW/id.4/iso_15118-2_DC/2023-04-14T09:53:34.808Z-4_config-dc-iso2-pnc/ethernet-traffic.dump",
)


@pytest.fixture
def duck():
    if duckdb is None:
        pytest.fail("duckdb is needed to read the dataset back: pip install -e '.[test]'")
    return duckdb


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, shared_captures):
    """A campaign directory: the example at the top, shared captures in subdirectories,
    and a file that is not a capture."""
    root = tmp_path_factory.mktemp("campaign")
    shutil.copy(EXAMPLE, root / "din_dc_session.pcap")
    for i, rel in enumerate(SHARED_FILES):
        d = root / f"car{i}" / "day1"
        d.mkdir(parents=True)
        shutil.copy(os.path.join(shared_captures, rel), d / "ethernet-traffic.dump")
    (root / "notes.txt").write_text("not a capture\n")
    return root


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "exi", "decode", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def _files(root):
    names = ["din_dc_session.pcap"] + [f"car{i}/day1/ethernet-traffic.dump" for i in range(len(SHARED_FILES))]
    return [(n, os.path.join(root, n)) for n in names]


def test_parquet_dataset_read_back_with_duckdb(campaign, tmp_path, duck):
    out = tmp_path / "ds"
    r = _cli(str(campaign), "--recursive", "--jobs", "2", "--format", "parquet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    parts = sorted(os.listdir(out))
    assert parts == ["part-00000.parquet"]
    con = duck.connect()
    glob = str(out / "*.parquet")
    cols = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM '{glob}'").fetchall()}
    assert list(cols) == list(dataset.COLUMNS)
    assert cols["time"].startswith("TIMESTAMP") and cols["target_voltage"] == "DOUBLE" and cols["frame"] == "BIGINT"
    # every record of every capture is a row, in file order, with the record's values
    total = 0
    for name, path in _files(campaign):
        recs = list(exi.capture.read(path))
        rows = con.execute(f"SELECT frame, message, direction, schema, error, content, epoch_us(time) "
                           f"FROM read_parquet('{glob}', file_row_number = true) WHERE file = ? "
                           "ORDER BY file_row_number", [name]).fetchall()
        assert len(rows) == len(recs), name
        for rec, (frame, message, direction, schema, error, content, t) in zip(recs, rows):
            assert (frame, message, direction, schema, error) == (rec.frame, rec.name, rec.direction,
                                                                 rec.schema, rec.error)
            want = json.loads(json.dumps(rec.content, default=render._json_default)) if rec.content else None
            assert (json.loads(content) if content else None) == want
            assert t == (round(rec.time * 1e6) if rec.time else None)
        total += len(recs)
    assert con.execute(f"SELECT count(*) FROM '{glob}'").fetchone()[0] == total
    # pyarrow (what pandas.read_parquet and Polars use) reads the directory as one dataset
    import pyarrow.parquet as pq
    t = pq.read_table(str(out))
    assert t.num_rows == total and t.schema.names == list(dataset.COLUMNS)
    assert str(t.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert "notes.txt" not in {row[0] for row in con.execute(f"SELECT DISTINCT file FROM '{glob}'").fetchall()}
    # typed columns: the values a DIN CurrentDemandReq/Res carries, multipliers applied
    req = con.execute(f"SELECT target_voltage, target_current, soc, session FROM '{glob}' WHERE "
                      "file = 'din_dc_session.pcap' AND message = 'CurrentDemandReq' ORDER BY frame LIMIT 1").fetchone()
    first = next(r for r in exi.capture.read(EXAMPLE) if r.name == "CurrentDemandReq")
    body = first.content["V2G_Message"]["Body"]["CurrentDemandReq"]
    tv = body["EVTargetVoltage"]
    assert req[0] == pytest.approx(tv["Value"] * 10 ** tv["Multiplier"])
    assert req[2] == body["DC_EVStatus"]["EVRESSSOC"]
    assert req[3] == first.content["V2G_Message"]["Header"]["SessionID"]
    codes = con.execute(f"SELECT DISTINCT response_code FROM '{glob}' WHERE message LIKE '%Res' "
                        "AND schema = 'din'").fetchall()
    assert ("OK",) in codes
    slac = con.execute(f"SELECT count(*) FROM '{glob}' WHERE transport = 'homeplug' AND file LIKE 'car0/%'").fetchone()
    assert slac[0] == 65


def test_readme_duckdb_query_runs_as_written(tmp_path, duck):
    """The README's two commands, run in a copy of the repository's examples folder."""
    readme = open(os.path.join(REPO, "README.md")).read()
    block = re.search(r"```sh\n(exi15118 decode examples/din_dc_session\.pcap --format parquet [^\n]*\n"
                      r"python -c [^\n]*\n)```", readme)
    assert block, "README: the Parquet + DuckDB example is missing"
    shutil.copytree(os.path.join(REPO, "examples"), tmp_path / "examples")
    script = block.group(1).replace("exi15118 ", f"{sys.executable} -m exi ", 1) \
        .replace("python -c", f"{sys.executable} -c", 1)
    r = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode == 0, r.stderr
    assert re.search(r"CurrentDemandRes\s*│\s*5\s*│", r.stdout), r.stdout


def test_jsonl_campaign_in_file_order_with_the_file_name(campaign):
    r = _cli(str(campaign), "-r", "-j", "2", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    expected = [(n, rec.frame, rec.name) for n, p in _files(campaign) for rec in exi.capture.read(p)]
    assert [(d["file"], d["frame"], d["message"]) for d in lines] == expected


def test_directory_without_recursive_takes_its_own_files_only(campaign):
    r = _cli(str(campaign), "--format", "table", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("== din_dc_session.pcap\n") and "car0" not in r.stdout


def test_summary_per_capture_and_several_files(campaign):
    files = [p for _n, p in _files(campaign)][:2]
    r = _cli(*files, "--summary", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("== ") == 2 and "Session: stream 0" in r.stdout


def _run(*inputs, **kw):
    out, err = io.StringIO(), io.StringIO()
    opts = dict(recursive=False, jobs=1, fmt=None, out_dir=None)
    opts.update(kw)
    code = campaign_mod.run(list(inputs), out=out, err=err, **opts)
    return code, out.getvalue(), err.getvalue()


def test_existing_dataset_is_not_overwritten(tmp_path):
    out = str(tmp_path / "ds")
    assert _run(EXAMPLE, fmt="parquet", out_dir=out)[0] == 0
    code, _out, err = _run(EXAMPLE, fmt="parquet", out_dir=out)
    assert code == 2 and "already holds a Parquet dataset" in err
    code, _out, err = _run(EXAMPLE, fmt="parquet")
    assert code == 2 and "--out" in err



def _pcapng_block(btype, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def test_time_out_of_the_timestamp_range_keeps_the_rows(tmp_path, duck):
    """A capture clock in whole seconds (if_tsresol 0) counting from 2^62: the rows are
    written with an empty time instead of the whole capture failing on the column."""
    import dpkt
    with open(EXAMPLE, "rb") as fh:
        frames = [buf for _ts, buf in dpkt.pcap.Reader(fh)]
    data = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += _pcapng_block(1, struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HHB3x", 9, 1, 0)
                          + struct.pack("<HH", 0, 0))
    for i, buf in enumerate(frames):
        ts = (1 << 62) + i
        data += _pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                             len(buf), len(buf)) + buf)
    capture = tmp_path / "far_future.pcapng"
    capture.write_bytes(data)
    out = str(tmp_path / "ds")
    code, _out, err = _run(str(capture), fmt="parquet", out_dir=out)
    assert code == 0, err
    [(n, timed, messages)] = duck.sql(f"SELECT count(*), count(time), count(DISTINCT message) "
                                      f"FROM '{out}/*.parquet'").fetchall()
    assert (n, timed) == (64, 0) and messages > 10

def test_empty_directory_says_so(tmp_path):
    code, _out, err = _run(str(tmp_path))
    assert code == 1 and "no capture files" in err and "--recursive" in err


def test_key_values_of_each_schema():
    assert dataset.physical({"Multiplier": -1, "Unit": "V", "Value": 3540}) == pytest.approx(354.0)
    assert dataset.physical({"Exponent": 2, "Value": 4}) == 400.0
    kv = dataset.key_values({"DC_ChargeLoopRes": {"ResponseCode": "OK", "EVSEPresentVoltage":
                                                  {"Exponent": 0, "Value": 400},
                                                  "EVSEPresentCurrent": {"Exponent": -1, "Value": 1234}}})
    assert kv == {"response_code": "OK", "present_voltage": 400.0, "present_current": pytest.approx(123.4)}


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_only_on_a_terminal(campaign):
    err = _Terminal()
    code = campaign_mod.run([str(campaign)], recursive=True, jobs=2, fmt="jsonl", out_dir=None,
                            out=io.StringIO(), err=err)
    assert code == 0
    assert "\r[" in err.getvalue() and f"{len(SHARED_FILES) + 1}/{len(SHARED_FILES) + 1} captures" in err.getvalue()
    code, _out, err = _run(str(campaign), recursive=True, fmt="jsonl")
    assert code == 0 and err == ""               # not a terminal: no progress line
