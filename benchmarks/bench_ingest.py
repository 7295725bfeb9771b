"""Comparison 2: capture file -> columns.

Three ways to read the same frames:

* fusioncore's vectorised ``read_capture`` on the can-train-and-test CSV;
* the predecessor's way: ``pandas.read_csv`` then per-row hex parsing
  (``int(x, 16)`` per ID, ``bytes.fromhex`` per payload, via ``.apply``);
* python-can's ``can.LogReader`` on the same frames written as a candump log
  (python-can cannot read the CSV itself), collected into columns.

A second case reads that candump log with fusioncore's own candump reader, so
the python-can figure also has a same-file counterpart.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import can
import numpy as np
import pandas as pd
import pytest

from fusioncore.data.formats import read_capture
from fusioncore.data.frames import Frames

from .common import BenchSizes, describe
from .system import DataSource

COMPARISON = "ingest"
CSV_CASE = "can-train-and-test CSV -> columns"
LOG_CASE = "candump log -> columns"


@attrs.frozen(eq=False)
class IngestFiles:
    csv: Path  #: can-train-and-test CSV (the capture itself, or its first rows in a temp file)
    log: Path  #: the same frames as a candump -L log (temp file)
    frames: Frames  #: what fusioncore reads from ``csv``: the reference for every reader


def _write_candump(frames: Frames, path: Path) -> None:
    """The frames as ``(ts) can0 ID#HEX`` lines; fixture setup, so plain Python is fine here."""
    with path.open("w") as fh:
        for ts, can_id, dlc, row in zip(
            frames.timestamp, frames.can_id, frames.dlc, frames.data, strict=True
        ):
            fh.write(f"({ts:.6f}) can0 {int(can_id):03X}#{bytes(row[:dlc]).hex().upper()}\n")


@pytest.fixture(scope="module")
def ingest_files(source: DataSource, sizes: BenchSizes, tmp_path_factory) -> IngestFiles:
    folder = tmp_path_factory.mktemp("ingest")
    csv = source.capture
    if sizes.ingest_rows is not None:
        csv = folder / source.capture.name
        with source.capture.open() as src, csv.open("w") as dst:
            dst.writelines(itertools.islice(src, sizes.ingest_rows + 1))  # header + rows
    frames = read_capture(csv).frames
    log = folder / "capture.log"
    _write_candump(frames, log)
    return IngestFiles(csv=csv, log=log, frames=frames)


def pandas_per_row(path: Path) -> dict[str, np.ndarray]:
    """The predecessor's reader: pandas for the table, Python for every hex field."""
    df = pd.read_csv(path, dtype={"arbitration_id": str, "data_field": str}, keep_default_na=False)
    payload = df["data_field"].apply(bytes.fromhex)
    return {
        "timestamp": df["timestamp"].to_numpy(np.float64),
        "can_id": df["arbitration_id"].apply(lambda x: int(x, 16)).to_numpy(np.uint32),
        "dlc": payload.map(len).to_numpy(np.uint8),
        "data": np.frombuffer(b"".join(p.ljust(8, b"\0") for p in payload), np.uint8).reshape(-1, 8),
        "label": df["attack"].to_numpy(np.uint8),
    }


def python_can_log(path: Path) -> dict[str, np.ndarray]:
    """python-can's LogReader, one ``Message`` per frame, gathered into columns."""
    ts, ids, dlcs, data = [], [], [], []
    for msg in can.LogReader(path):
        ts.append(msg.timestamp)
        ids.append(msg.arbitration_id)
        dlcs.append(msg.dlc)
        data.append(bytes(msg.data).ljust(8, b"\0"))
    return {
        "timestamp": np.asarray(ts, np.float64),
        "can_id": np.asarray(ids, np.uint32),
        "dlc": np.asarray(dlcs, np.uint8),
        "data": np.frombuffer(b"".join(data), np.uint8).reshape(-1, 8),
    }


def _columns(frames: Frames) -> dict[str, np.ndarray]:
    return {"timestamp": frames.timestamp, "can_id": frames.can_id, "dlc": frames.dlc, "data": frames.data}


def _assert_same(columns: dict[str, np.ndarray], frames: Frames) -> None:
    np.testing.assert_array_equal(columns["can_id"], frames.can_id)
    np.testing.assert_array_equal(columns["dlc"], frames.dlc)
    np.testing.assert_array_equal(columns["data"], frames.data)
    np.testing.assert_allclose(columns["timestamp"], frames.timestamp, rtol=0, atol=1e-6)


PANDAS, PYTHON_CAN, FUSIONCORE = "pandas + per-row hex", "python-can LogReader", "fusioncore read_capture"


def _tags(files: IngestFiles, sizes: BenchSizes) -> dict:
    n = len(files.frames)
    return dict(
        comparison=COMPARISON, items=n, unit="frames",
        work=f"the same {n:,} frames of the largest test capture from disk into columns "
             "(timestamp, ID, DLC, 8 payload bytes)",
        note="" if sizes.ingest_rows is None else f"the capture's first {n:,} rows",
    )


def test_fusioncore_csv(benchmark, ingest_files, source, sizes):
    describe(benchmark, case=CSV_CASE, variant=FUSIONCORE, source=source, baselines=[PANDAS, PYTHON_CAN],
             does="read_capture on the can-train-and-test CSV (vectorised parse; no column cache)",
             **_tags(ingest_files, sizes))
    result = benchmark.pedantic(read_capture, args=(ingest_files.csv,), rounds=sizes.rounds,
                                warmup_rounds=1)
    assert len(result.frames) == len(ingest_files.frames) and result.skipped == 0


def test_pandas_per_row(benchmark, ingest_files, source, sizes):
    describe(benchmark, case=CSV_CASE, variant=PANDAS, source=source,
             does="pandas.read_csv of the same CSV, then int(x, 16) per ID and bytes.fromhex per payload "
                  "(the predecessor's way)",
             **_tags(ingest_files, sizes))
    columns = benchmark.pedantic(pandas_per_row, args=(ingest_files.csv,), rounds=sizes.slow_rounds)
    _assert_same(columns, ingest_files.frames)
    np.testing.assert_array_equal(columns["label"], ingest_files.frames.label)


def test_python_can_logreader(benchmark, ingest_files, source, sizes):
    # python-can cannot read the CSV: it reads the same frames written as a candump log
    describe(benchmark, case=LOG_CASE, variant=PYTHON_CAN, source=source,
             does="can.LogReader over the same frames as a candump -L log, one Message per frame, "
                  "gathered into columns",
             **_tags(ingest_files, sizes))
    columns = benchmark.pedantic(python_can_log, args=(ingest_files.log,), rounds=sizes.slow_rounds)
    _assert_same(columns, ingest_files.frames)


def test_fusioncore_candump(benchmark, ingest_files, source, sizes):
    describe(benchmark, case=LOG_CASE, variant=f"{FUSIONCORE} (candump)", source=source,
             baselines=[PYTHON_CAN], does="read_capture on that candump log (fusioncore's own reader)",
             **_tags(ingest_files, sizes))
    result = benchmark.pedantic(read_capture, args=(ingest_files.log,), rounds=sizes.rounds,
                                warmup_rounds=1)
    _assert_same(_columns(result.frames), ingest_files.frames)
