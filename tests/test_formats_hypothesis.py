"""Property tests: mutated captures give a clean FormatError or an exact row account.

Every line-based reader gets valid lines with byte flips, truncation, dropped /
extra fields and garbage lines. With ``errors="raise"`` it either parses or
raises ``FormatError``; with ``errors="skip"`` every non-blank data line is
either a frame or a counted skip. The python-can formats get corrupted files
and must fail cleanly (they cannot count rows they cannot parse).
"""

from __future__ import annotations

import re

import can
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fusioncore.data.formats import (
    CandumpLog,
    CanTrainAndTestCsv,
    HcrlCarHackingCsv,
    HcrlText,
)
from fusioncore.data.formats.pythoncan import PYTHON_CAN_FORMATS
from fusioncore.errors import FormatError

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# (reader, header line or None, valid data lines, field separator)
LINE_FORMATS = {
    "can-train-and-test": (
        CanTrainAndTestCsv(),
        b"timestamp,arbitration_id,data_field,attack",
        [
            b"1513920459.745822,2C0,1400000000000000,0",
            b"1513920459.746063,002,0000000000030B11,1",
            b"1513920459.7461,4C7,100000,0",
            b"1513920459.7462,18FEF100,,1",
        ],
        rb",",
    ),
    "hcrl-car-hacking": (
        HcrlCarHackingCsv(),
        None,
        [
            b"1478198386.789894,0545,8,d8,00,00,87,00,00,00,00,R",
            b"1478191040.623358,0316,8,45,29,24,ff,29,24,00,ff,T",
            b"1478191040.7,0316,5,45,29,24,ff,29,T",
            b"1478191040.8,02b0,2,45,29,R",
        ],
        rb",",
    ),
    "hcrl-text": (
        HcrlText(),
        None,
        [
            b"Timestamp:          0.000000        ID: 0316    000    DLC: 8    05 20 ea 0a 20 1a 00 7f",
            b"Timestamp:          0.001684        ID: 0153    100    DLC: 0",
            b"Timestamp:          0.002000        ID: 02c0    000    DLC: 3    05 20 ea",
        ],
        rb"\s+",
    ),
    "candump": (
        CandumpLog(),
        None,
        [
            b"(1645994398.626163) can0 0C9#801633163A4008",
            b"(1645994398.626387) can0 191#07CA",
            b"(1645994398.627625) can0 12345678#R",
            b"(1645994398.627700) vcan1 3ED# T",
        ],
        rb"\s+",
    ),
}

no_nul = st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\0", b"?"))
mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 120), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 120)),
    st.tuples(st.just("drop_field"), st.integers(0, 15)),
    st.tuples(st.just("extra_field"), st.integers(0, 15), no_nul),
    st.tuples(st.just("garbage"), no_nul),
)
# NUL bytes are refused for the whole file ("binary data"), tested separately.


def mutate(line: bytes, op: tuple, sep: bytes) -> bytes:
    kind = op[0]
    if kind == "flip" and line:
        i = op[1] % len(line)
        return line[:i] + bytes([op[2]]) + line[i + 1 :]
    if kind == "truncate":
        return line[: op[1] % (len(line) + 1)]
    fields = re.split(sep, line)
    joiner = b"," if sep == rb"," else b" "
    if kind == "drop_field" and len(fields) > 1:
        del fields[op[1] % len(fields)]
        return joiner.join(fields)
    if kind == "extra_field":
        fields.insert(op[1] % (len(fields) + 1), op[2])
        return joiner.join(fields)
    if kind == "garbage":
        return op[1]
    return line


capture = st.tuples(
    st.lists(st.tuples(st.integers(0, 10), st.lists(mutation, max_size=2)), min_size=1, max_size=10),
    st.booleans(),  # final newline present
    st.sampled_from([b"\n", b"\r\n"]),
)


@pytest.mark.parametrize("fmt", sorted(LINE_FORMATS))
@SETTINGS
@given(spec=capture)
def test_mutated_lines_fail_cleanly_or_are_counted(fmt, spec, tmp_path_factory):
    reader, header, valid, sep = LINE_FORMATS[fmt]
    rows, final_newline, eol = spec
    lines = []
    for pick, ops in rows:
        line = valid[pick % len(valid)]
        for op in ops:
            line = mutate(line, op, sep)
        lines.append(line)
    content = eol.join(([header] if header else []) + lines) + (eol if final_newline else b"")
    assume(not content.startswith(b"\x1f\x8b"))  # gzip magic: a corrupt-gzip file error
    # a UTF-16 byte-order mark: the file is decoded as UTF-16, not as the mutated UTF-8 lines
    assume(not content.startswith((b"\xfe\xff", b"\xff\xfe")))
    path = tmp_path_factory.mktemp(fmt) / "fuzzing-case.dat"
    path.write_bytes(content)
    data_lines = [ln for ln in content.splitlines()[1 if header else 0 :] if ln.strip()]

    try:
        result = reader.read(path)
    except FormatError as exc:
        assert exc.reason and str(path) in str(exc)
    else:
        assert result.skipped == sum(result.skipped_reasons.values())
        assert len(result.frames) + result.skipped == len(data_lines)

    if not content.strip():
        with pytest.raises(FormatError, match="empty file"):
            reader.read(path, errors="skip")
        return
    result = reader.read(path, errors="skip")
    assert len(result.frames) + result.skipped == len(data_lines) == result.records, result.skipped_reasons
    assert set(result.first_lines) == set(result.skipped_reasons)
    assert result.skipped == sum(result.skipped_reasons.values())


def _write_sample(fmt, path) -> None:
    msgs = [
        can.Message(timestamp=1.0 + i / 10, arbitration_id=0x100 + i, data=bytes(range(i % 9)))
        for i in range(30)
    ]
    with can.Logger(str(path)) as log:
        for msg in msgs:
            log.on_message_received(msg)


PYCAN = {f.name: f for f in PYTHON_CAN_FORMATS}
SUFFIX = {"vector-asc": ".asc", "vector-blf": ".blf", "pcan-trc": ".trc", "python-can-csv": ".csv"}


@pytest.mark.parametrize("name", sorted(SUFFIX))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4),
    cut=st.floats(0.05, 1.0),
)
def test_python_can_formats_fail_cleanly(name, flips, cut, tmp_path_factory):
    fmt = PYCAN[name]
    path = tmp_path_factory.mktemp(name) / f"sample{SUFFIX[name]}"
    _write_sample(fmt, path)
    blob = bytearray(path.read_bytes())
    for where, value in flips:
        blob[int(where * len(blob))] = value
    path.write_bytes(bytes(blob[: max(1, int(cut * len(blob)))]))
    for errors in ("raise", "skip"):
        try:
            result = fmt.read(path, errors=errors)
        except FormatError as exc:
            assert exc.reason
        else:
            assert len(result.frames) <= 30
            assert len(result.frames) + result.skipped == result.records
