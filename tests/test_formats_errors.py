"""Bad input: every failure mode gives a FormatError with file, line and reason, or a count."""

from __future__ import annotations

import gzip

import can
import pytest

from fusioncore.data.formats import (
    BUILTIN_FORMATS,
    CandumpLog,
    CanTrainAndTestCsv,
    HcrlCarHackingCsv,
    HcrlText,
    detect_format,
    read_capture,
)
from fusioncore.data.formats.pythoncan import PYTHON_CAN_FORMATS
from fusioncore.errors import FormatError, UnknownComponentError

CTT_HEADER = "timestamp,arbitration_id,data_field,attack\n"
CTT_GOOD = "1513920459.745822,2C0,1400000000000000,0\n"
HCRL_GOOD = "1478198386.789894,0545,8,d8,00,00,87,00,00,00,00,R\n"
TEXT_GOOD = "Timestamp:          0.000000        ID: 0316    000    DLC: 8    05 20 ea 0a 20 1a 00 7f\n"
DUMP_GOOD = "(1645994398.626163) can0 0C9#801633163A4008\n"

# (reader, text before the bad line, bad line, reason); the bad line is line 3.
CASES = [
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2G0,14,0", "bad hex in CAN ID"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2C0,14ZZ,0", "bad hex in payload"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2C0,140,0", "odd number of payload"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1.7,2C0," + "00" * 9 + ",0", "payload longer than 8"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "15139x0459.7,2C0,14,0", "non-numeric timestamp"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2C0,14", "wrong field count"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2C0,14,0,1", "wrong field count"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,2C0,14,2", "bad attack flag"),
    (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.7,FFFFFFFF,14,0", "CAN ID above"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545,9,d8,00,00,87,00,00,00,00,00,R", "DLC > 8"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545,8,d8,00,00,87,00,R", "DLC does not match"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545,x,d8,R", "non-numeric DLC"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545,2,d8,0q,R", "bad hex in payload"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545,2,d8,00,X", "bad attack flag"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "abc,0545,2,d8,00,R", "non-numeric timestamp"),
    (HcrlCarHackingCsv(), HCRL_GOOD * 2, "1478198386.7,0545", "wrong field count"),
    (HcrlText(), TEXT_GOOD * 2, "Timestamp: 1.0 ID: 0316 010 DLC: 0", "bad remote flag"),
    (HcrlText(), TEXT_GOOD * 2, "Timestamp: 1.0 ID: 0316 000 DLC: 3 05 20", "DLC does not match"),
    (HcrlText(), TEXT_GOOD * 2, "Timestamp: 1.0 ID: 0316 000 DLC: 9 05 20", "DLC > 8"),
    (HcrlText(), TEXT_GOOD * 2, "Stamp: 1.0 ID: 0316 000 DLC: 1 05", "not a 'Timestamp:"),
    (HcrlText(), TEXT_GOOD * 2, "Timestamp: 1.0 ID: 03z6 000 DLC: 1 05", "bad hex in CAN ID"),
    (HcrlText(), TEXT_GOOD * 2, "Timestamp: 1.0", "wrong field count"),
    (CandumpLog(), DUMP_GOOD * 2, "(1645994398.6) can0 0C9801633", "malformed ID#data"),
    (CandumpLog(), DUMP_GOOD * 2, "(1645994398.6) can0 0C9#8016331", "odd number of payload"),
    (CandumpLog(), DUMP_GOOD * 2, "(1645994398.6) can0 0C9#" + "00" * 9, "payload longer than 8"),
    (CandumpLog(), DUMP_GOOD * 2, "1645994398.6 can0 0C9#80", "non-numeric timestamp"),
    (CandumpLog(), DUMP_GOOD * 2, "(1645994398.6) can0 0C9#80 X", "bad rx/tx flag"),
    (CandumpLog(), DUMP_GOOD * 2, "(1645994398.6) can0", "wrong field count"),
]
IDS = [f"{reader.name}-{reason.split()[0]}-{i}" for i, (reader, _, _, reason) in enumerate(CASES)]


@pytest.mark.parametrize(("reader", "before", "bad", "reason"), CASES, ids=IDS)
def test_bad_row_raises_with_line_and_reason(tmp_path, reader, before, bad, reason):
    path = tmp_path / "DoS-case.txt"
    good = before.splitlines(keepends=True)[-1]
    path.write_text(before + bad + "\n" + good)
    with pytest.raises(FormatError) as info:
        reader.read(path)
    assert info.value.line == 3
    assert info.value.reason.startswith(reason)
    assert f"{path}:3: {reason}" in str(info.value)
    assert repr(bad[:20])[1:-1] in str(info.value)  # the offending text is quoted


@pytest.mark.parametrize(("reader", "before", "bad", "reason"), CASES, ids=IDS)
def test_bad_row_is_skipped_and_counted(tmp_path, reader, before, bad, reason):
    path = tmp_path / "DoS-case.txt"
    good = before.splitlines(keepends=True)[-1]
    path.write_text(before + bad + "\n\n" + bad + "\n" + good)
    result = reader.read(path, errors="skip")
    n_good = len([ln for ln in before.splitlines() if ln and not ln.startswith("timestamp,")]) + 1
    assert len(result.frames) == n_good
    assert result.skipped == 2
    [(key, count)] = result.skipped_reasons.items()
    assert key.startswith(reason.split(" (")[0]) and count == 2


def test_line_numbers_count_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "fuzzing-x.csv"
    path.write_bytes(
        (CTT_HEADER + "\n" + CTT_GOOD + "   \n" + CTT_GOOD + "1.0,2C0,14,7\n").replace("\n", "\r\n").encode()
    )
    with pytest.raises(FormatError, match="bad attack flag") as info:
        read_capture(path)
    assert info.value.line == 6


def test_first_bad_row_wins_across_kinds(tmp_path):
    path = tmp_path / "DoS-x.csv"
    path.write_text(CTT_HEADER + CTT_GOOD + "1.0,2C0,1Z,0\n" + "1.0,2C0\n")
    with pytest.raises(FormatError, match="bad hex in payload") as info:
        read_capture(path)
    assert info.value.line == 3
    path.write_text(CTT_HEADER + CTT_GOOD + "1.0,2C0\n" + "1.0,2C0,1Z,0\n")
    with pytest.raises(FormatError, match="wrong field count") as info:
        read_capture(path)
    assert info.value.line == 3


@pytest.mark.parametrize("reader", [r for r in BUILTIN_FORMATS], ids=lambda r: r.name)
def test_empty_file(tmp_path, reader):
    for content in (b"", b"  \n\n"):
        path = tmp_path / "empty.log"
        path.write_bytes(content)
        with pytest.raises(FormatError, match="empty file"):
            reader.read(path)
    with pytest.raises(FormatError, match="empty file"):
        detect_format(path)


def test_empty_gz_file(tmp_path):
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(FormatError, match="empty file"):
        read_capture(path)


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(FormatError, match="unknown capture format; tried: can-train-and-test, "):
        read_capture(path)
    for reader in BUILTIN_FORMATS:
        with pytest.raises(FormatError):
            reader.read(path, errors="skip")


def test_unknown_text_lists_the_formats_tried(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("hello,world\n")
    with pytest.raises(FormatError) as info:
        detect_format(path)
    for reader in BUILTIN_FORMATS:
        assert reader.name in str(info.value)


def test_unknown_format_name_and_missing_file(tmp_path):
    path = tmp_path / "x.log"
    path.write_text(DUMP_GOOD)
    with pytest.raises(UnknownComponentError, match="Did you mean 'candump'"):
        read_capture(path, format="candumpp")
    with pytest.raises(FormatError, match="no such file"):
        read_capture(tmp_path / "missing.log")
    with pytest.raises(ValueError, match="errors must be one of"):
        read_capture(path, errors="ignore")


def test_missing_ctt_header(tmp_path):
    path = tmp_path / "DoS-x.csv"
    path.write_text(CTT_GOOD)
    with pytest.raises(FormatError, match="missing header") as info:
        CanTrainAndTestCsv().read(path)
    assert info.value.line == 1


@pytest.mark.parametrize(
    ("reader", "before", "truncated"),
    [
        (CanTrainAndTestCsv(), CTT_HEADER + CTT_GOOD, "1513920459.745822,2C0,14000"),
        (HcrlCarHackingCsv(), HCRL_GOOD, "1478198386.789894,0545,8,d8,00,00"),
        (HcrlText(), TEXT_GOOD, "Timestamp:          0.000000        ID: 0316    000    DLC: 8    05 2"),
        (CandumpLog(), DUMP_GOOD, "(1645994398.626163) can0 0C9#80163"),
    ],
    ids=lambda v: getattr(v, "name", "x"),
)
def test_truncated_last_line(tmp_path, reader, before, truncated):
    path = tmp_path / "DoS-cut.txt"
    path.write_text(before + truncated)
    with pytest.raises(FormatError, match=r"truncated file\?") as info:
        reader.read(path)
    assert info.value.line == len(before.splitlines()) + 1
    result = reader.read(path, errors="skip")
    assert (len(result.frames), result.skipped) == (1, 1)


def test_nul_bytes_mean_binary(tmp_path):
    path = tmp_path / "x.log"
    path.write_bytes(DUMP_GOOD.encode() + b"\x00\x01\x02\n")
    with pytest.raises(FormatError, match="binary data"):
        CandumpLog().read(path, errors="skip")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.log.gz"
    path.write_bytes(gzip.compress(DUMP_GOOD.encode() * 100)[:40])
    with pytest.raises(FormatError, match="corrupt gzip stream"):
        CandumpLog().read(path)


def test_error_frames_are_counted_not_raised(tmp_path):
    path = tmp_path / "x.log"
    path.write_text(DUMP_GOOD + "(1645994398.7) can0 20000004#0004000000000000\n" + DUMP_GOOD)
    result = CandumpLog().read(path)  # errors="raise": error frames are not bad rows
    assert (len(result.frames), result.skipped, result.skipped_reasons) == (2, 1, {"error frame": 1})


def test_corrupt_blf_is_a_format_error_or_counted(tmp_path):
    path = tmp_path / "x.blf"
    with can.Logger(str(path)) as log:
        for i in range(50):
            log.on_message_received(can.Message(timestamp=float(i), arbitration_id=i, data=b"\x01"))
    blob = path.read_bytes()
    blf = next(f for f in PYTHON_CAN_FORMATS if f.name == "vector-blf")
    path.write_bytes(blob[:144] + b"\xff" * 4 + blob[148:])  # a broken container header
    with pytest.raises(FormatError, match="corrupt BLF container header"):
        blf.read(path)
    result = blf.read(path, errors="skip")  # nothing else to resynchronise on: all 50 counted
    assert len(result.frames) + result.skipped == 50
    path.write_bytes(blob[:150] + b"\xff" * 20 + blob[170:])  # python-can stopped quietly here
    with pytest.raises(FormatError):
        blf.read(path)
    result = blf.read(path, errors="skip")
    assert len(result.frames) + result.skipped == 50


def test_forced_reader_on_foreign_content_accounts_for_every_line(tmp_path):
    path = tmp_path / "x.asc"
    path.write_text(DUMP_GOOD)
    asc = next(f for f in PYTHON_CAN_FORMATS if f.name == "vector-asc")
    with pytest.raises(FormatError, match="non-numeric timestamp") as info:
        asc.read(path)
    assert info.value.line == 1
    result = asc.read(path, errors="skip")
    assert (len(result.frames), result.skipped, result.first_lines) == (0, 1, {"non-numeric timestamp": (1,)})
