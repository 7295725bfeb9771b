"""Dirty real-world text: whitespace, CR line ends, UTF-16, exponents, cut lines, CAN FD candump."""

from __future__ import annotations

import pytest

from fusioncore.cli import main
from fusioncore.data.formats import CandumpLog, CanTrainAndTestCsv, HcrlCarHackingCsv, read_capture
from fusioncore.data.frames import FLAG_BRS, FLAG_ESI, FLAG_FD
from fusioncore.errors import FormatError

HEADER = "timestamp,arbitration_id,data_field,attack"


def test_the_trailing_tab_row_and_whitespace_around_every_field_read(tmp_path):
    path = tmp_path / "fuzzing-3.csv"
    rows = [
        "1672531200.003554,1ED,614008F208E870DE\t,1",  # the real row that failed
        " 1672531200.1 ,\t2C0 , 1400 ,0 ",
        "1672531200.2,2C0,\t,0\t",
        "1672531200.3\t,  7FF,FF,  1",
    ]
    path.write_bytes(("\r\n".join([" " + HEADER + " ", *rows]) + "\r\n").encode())
    result = read_capture(path)  # raise mode: none of these is an error
    f = result.frames
    assert (len(f), result.skipped, result.records) == (4, 0, 4)
    assert f.can_id.tolist() == [0x1ED, 0x2C0, 0x2C0, 0x7FF]
    assert f.dlc.tolist() == [8, 2, 0, 1] and f.label.tolist() == [1, 0, 0, 1]
    assert f.data[0].tolist() == [0x61, 0x40, 0x08, 0xF2, 0x08, 0xE8, 0x70, 0xDE]


def test_three_malformed_rows_are_counted_with_their_lines(tmp_path):
    good = [f"{1.0 + i / 100:.2f},{0x100 + i:03X},00{i:02X},0" for i in range(20)]
    rows = [*good[:5], "1.5,1G0,00,0", *good[5:10], "1.6,100,001,0", *good[10:], "1.7,100,00"]
    path = tmp_path / "DoS-x.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    result = read_capture(path, errors="skip")
    assert (len(result.frames), result.skipped, result.records) == (20, 3, 23)
    assert result.first_lines == {"bad hex in CAN ID": (7,), "odd number of payload hex digits": (13,),
                                  "wrong field count": (24,)}
    with pytest.raises(FormatError, match="bad hex in CAN ID") as info:
        read_capture(path)
    assert info.value.line == 7


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_line_endings(tmp_path, ending):
    path = tmp_path / "attack-free.csv"
    path.write_bytes(ending.join([HEADER, "1.0,100,00,0", "1.1,101,0101,0", "1.2,102,,0"]).encode() + b"\r")
    result = read_capture(path)
    assert len(result.frames) == 3 and result.frames.dlc.tolist() == [1, 2, 0]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_files(tmp_path, encoding):
    text = "\n".join([HEADER, "1.0,100,00,0", "1.1,101,0101,1"]) + "\n"
    path = tmp_path / "DoS-utf.csv"
    raw = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        raw = (b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff") + raw
    path.write_bytes(raw)
    result = read_capture(path)
    assert len(result.frames) == 2 and result.frames.label.tolist() == [0, 1]
    log = tmp_path / "bus.log"
    log.write_bytes("(1.000000) can0 123#DEADBEEF\n".encode(encoding))
    if encoding in ("utf-16-le", "utf-16-be"):
        log.write_bytes((b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff") +
                        "(1.000000) can0 123#DEADBEEF\n".encode(encoding))
    assert read_capture(log).frames.can_id.tolist() == [0x123]


def test_utf16_without_a_bom_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "DoS-u.csv"
    path.write_bytes(("\n".join([HEADER, "1.0,100,00,0"]) + "\n").encode("utf-16-le"))
    with pytest.raises(FormatError, match="UTF-16 text without a byte-order mark"):
        CanTrainAndTestCsv().read(path)


def test_exponent_timestamps(tmp_path):
    path = tmp_path / "attack-free.csv"
    path.write_text("\n".join([HEADER, "1.5e9,100,00,0", "1.5000001E+09,100,00,0", "15e-1,100,,0"]) + "\n")
    assert read_capture(path).frames.timestamp.tolist() == [1.5e9, 1.5000001e9, 1.5]
    raw = tmp_path / "RPM.csv"
    raw.write_text("1.478e9,0316,2,05,20,R\n1.478e9,0316,2,05,20,T\n")
    assert HcrlCarHackingCsv().read(raw).frames.timestamp.tolist() == [1.478e9] * 2


def test_a_candump_line_cut_at_an_even_digit_is_not_a_shorter_frame(tmp_path):
    path = tmp_path / "cut.log"
    path.write_text("(1.000000) can0 123#DEADBEEF\n(1.100000) can0 123#DEADBE")  # cut after 3 of 4 bytes
    with pytest.raises(FormatError, match=r"last line cut short.*truncated file\?") as info:
        CandumpLog().read(path)
    assert info.value.line == 2
    result = CandumpLog().read(path, errors="skip")
    assert len(result.frames) == 1 and result.first_lines == {
        "last line cut short (no newline at the end of the file)": (2,)}


def test_candump_fd_frames_up_to_64_bytes(tmp_path):
    path = tmp_path / "fd.log"
    payload = "".join(f"{b:02X}" for b in range(64))
    path.write_text(
        f"(1.0) can0 123##3{payload}\n"  # BRS + ESI, 64 bytes
        f"(1.1) can0 124##0{payload[:24]}\n"  # 12 bytes
        f"(1.2) can0 125##1{payload[:18]}\n"  # 9 bytes: not a CAN FD length
        f"(1.3) can0 126#{payload[:24]}\n"  # classic frame with 12 bytes
        "(1.4) can0 127#0102\n"
    )
    result = CandumpLog().read(path, errors="skip")
    f = result.frames
    assert f.dlc.tolist() == [64, 12, 2] and f.payload[0].tolist() == list(range(64))
    assert f.payload[1, :12].tolist() == list(range(12)) and not f.payload[1, 12:].any()
    assert f.flags.tolist() == [FLAG_FD | FLAG_BRS | FLAG_ESI, FLAG_FD, 0]
    assert result.skipped_reasons == {
        "CAN FD payload length not one of 0-8, 12, 16, 20, 24, 32, 48, 64": 1,
        "payload longer than 8 bytes": 1,
    }
    classic = tmp_path / "classic.log"
    classic.write_text("(1.4) can0 127#0102\n")
    assert read_capture(classic).frames.data_ext.shape == (1, 0)  # no memory for FD when there is none


def test_inspect_a_folder_and_detect_refuses_one(tmp_path, capsys):
    folder = tmp_path / "caps"
    folder.mkdir()
    (folder / "a.log").write_text("(1.0) can0 123#DEADBEEF\n")
    (folder / "DoS-b.csv").write_text(HEADER + "\n1.0,100,00,1\n")
    (folder / "notes.txt").write_text("hello\n")
    (folder / ".hidden").write_text("x")
    assert main(["inspect", str(folder), "--json"]) == 2  # one file is not a capture
    rows = __import__("json").loads(capsys.readouterr().out)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["DoS-b.csv", "a.log", "notes.txt"]
    assert rows[0]["frames"] == 1 and "unknown capture format" in rows[2]["error"]
    (folder / "notes.txt").unlink()
    assert main(["inspect", str(folder)]) == 0
    capsys.readouterr()
    code = main(["detect", "--run", str(tmp_path / "no-run"), "--input", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "is a folder; detect reads one capture file" in err
