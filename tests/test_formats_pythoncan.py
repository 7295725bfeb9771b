"""ASC / TRC / BLF / python-can CSV: every record accounted for, CAN FD payloads whole.

Two kinds of input: python-can's own test logs (``tests/data/python-can``,
LGPL-3.0 fixtures, see the README there) and logs written here with
python-can's writers (ASC, BLF, TRC 1.0 and 2.1, CSV) holding CAN FD frames of
up to 64 bytes, error frames, remote frames and extended IDs.
"""

from __future__ import annotations

from pathlib import Path

import can
import numpy as np
import pytest
from can.io.trc import TRCFileVersion

from fusioncore.data.formats import PcanTrc, VectorAsc, VectorBlf, detect_format, read_capture
from fusioncore.data.frames import FLAG_BRS, FLAG_ESI, FLAG_FD
from fusioncore.errors import FormatError

DATA = Path(__file__).parent / "data" / "python-can"


def _records(path: Path) -> int:
    """Data lines of a text log: not blank, not a comment / header / meta line."""
    meta = ("//", ";", "date ", "base ", "internal events", "no internal events", "begin triggerblock",
            "end triggerblock")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return sum(1 for ln in lines if ln and not ln.lower().startswith(meta)
               and "start of measurement" not in ln.lower())


def _python_can(path: Path) -> list[can.Message]:
    return list(can.LogReader(str(path)))


# (file, frames, {reason: count}) as read here; python-can yields fewer for some (see below)
REAL_LOGS = [
    ("test_CanFdMessage64.asc", 2, {}),
    ("logfile_vector_fd.asc", 4, {}),
    ("test_CanFdRemoteMessage.asc", 1, {}),
    ("test_CanErrorFrames.asc", 0, {"error frame": 4}),
    ("logfile.asc", 10, {"not a CAN frame (ASC event or status line)": 11}),
    ("test_CanMessage_V1_0_BUS1.trc", 11, {"status or event record (not a CAN frame)": 1}),
    ("test_CanMessage_V1_1.trc", 10, {"status or event record (not a CAN frame)": 1}),
    ("test_CanMessage_V1_3.trc", 10, {}),
    ("test_CanMessage_V2_0_BUS1.trc", 10, {"status or event record (not a CAN frame)": 1}),
    ("test_CanMessage_V2_1.trc", 10, {"status or event record (not a CAN frame)": 1}),
]


@pytest.mark.parametrize(("name", "n_frames", "reasons"), REAL_LOGS, ids=[r[0] for r in REAL_LOGS])
def test_python_can_test_logs_account_for_every_record(name, n_frames, reasons):
    path = DATA / name
    result = read_capture(path)  # raise mode: none of these records is malformed
    frames = result.frames
    assert (len(frames), dict(result.skipped_reasons)) == (n_frames, reasons)
    assert len(frames) + result.skipped == result.records == _records(path)
    # the same frames as python-can, with FD payloads intact (python-can drops the status records)
    messages = [m for m in _python_can(path) if not m.is_error_frame]
    assert len(messages) == len(frames)
    order = np.lexsort((frames.timestamp,))  # multi-bus logs are grouped by bus
    for i, msg in zip(order, sorted(messages, key=lambda m: m.timestamp)):
        assert frames.can_id[i] == msg.arbitration_id and bool(frames.extended[i]) == msg.is_extended_id
        assert bool(frames.remote[i]) == msg.is_remote_frame
        if not msg.is_remote_frame:
            assert frames.payload[i, : frames.dlc[i]].tobytes() == bytes(msg.data)
        assert bool(frames.flags[i] & FLAG_FD) == msg.is_fd
        assert frames.timestamp[i] == pytest.approx(msg.timestamp, abs=1e-6)


def test_fd64_asc_keeps_all_64_bytes_and_flags():
    frames = read_capture(DATA / "test_CanFdMessage64.asc").frames
    assert frames.dlc.tolist() == [64, 64] and frames.data_ext.shape == (2, 56)
    assert frames.payload[0, :4].tolist() == [0xA1, 2, 3, 4] and frames.payload[1, 0] == 0xB1
    assert frames.flags.tolist() == [FLAG_FD | FLAG_ESI, FLAG_FD | FLAG_BRS]
    assert frames.can_id[1] == 0x1C4D80A7 and frames.extended.tolist() == [False, True]


def test_pcan_trc_v1_0_is_sniffed_and_a_forced_format_is_not_sniffed(tmp_path):
    path = DATA / "test_CanMessage_V1_0_BUS1.trc"
    assert detect_format(path).name == "pcan-trc"
    bare = tmp_path / "capture.bin"  # records without the comment header: no sniffer accepts it
    bare.write_text("".join(ln + "\n" for ln in path.read_text().splitlines() if not ln.startswith(";")))
    with pytest.raises(FormatError, match="unknown capture format"):
        detect_format(bare)
    result = read_capture(bare, format="pcan-trc")  # named: read as named, no sniffing
    assert len(result.frames) == 11


def test_asc_corrupt_timestamp_and_trc_status_are_counted_and_skip_goes_on(tmp_path):
    text = (DATA / "logfile.asc").read_text().replace("   3.148421 1", "   3.1x8421 1")
    path = tmp_path / "x.asc"
    path.write_text(text)
    with pytest.raises(FormatError, match="non-numeric timestamp") as info:
        VectorAsc().read(path)
    assert info.value.line == 13
    result = VectorAsc().read(path, errors="skip")
    assert len(result.frames) == 9 and result.skipped_reasons["non-numeric timestamp"] == 1
    assert result.first_lines["non-numeric timestamp"] == (13,)
    bad = (DATA / "test_CanMessage_V2_1.trc").read_text()
    bad = bad.replace("0000 Tx -  8    00 00", "0000 Tx -  8    0G 00", 1)
    path = tmp_path / "x.trc"
    path.write_text(bad)
    with pytest.raises(FormatError, match="malformed TRC record"):
        PcanTrc().read(path)
    result = PcanTrc().read(path, errors="skip")
    assert len(result.frames) == 9 and result.records == 11
    status = "status or event record (not a CAN frame)"
    assert result.skipped_reasons == {status: 1, "malformed TRC record": 1}


def _messages() -> list[can.Message]:
    """CAN FD up to 64 bytes (with BRS / ESI), classic, remote and error frames, 11- and 29-bit IDs."""
    out: list[can.Message] = []
    t = 1_700_000_000.0
    # (an FD frame of 0 bytes is left out: python-can's ASC format reads it back as a remote frame)
    for i, length in enumerate([1, 8, 12, 16, 20, 24, 32, 48, 64]):
        out.append(can.Message(timestamp=t + i * 0.01, arbitration_id=0x100 + i, is_fd=True,
                               bitrate_switch=i % 2 == 0, error_state_indicator=i % 3 == 0,
                               data=bytes((i * 7 + k) % 256 for k in range(length)), is_rx=True))
    for i in range(10):
        out.append(can.Message(timestamp=t + 0.2 + i * 0.01, arbitration_id=0x18DAF100 + i,
                               is_extended_id=True, data=bytes(range(i, i + i % 9)), is_rx=True))
    out.append(can.Message(timestamp=t + 0.4, arbitration_id=0x321, is_remote_frame=True, dlc=4, is_rx=True))
    out.append(can.Message(timestamp=t + 0.41, arbitration_id=0x1ABCDE, is_extended_id=True,
                           is_remote_frame=True, dlc=2, is_rx=True))
    out.append(can.Message(timestamp=t + 0.5, is_error_frame=True, is_rx=True))
    return out


def _write(path: Path, messages, trc_version=None) -> None:
    writer = can.Logger(str(path))
    if trc_version is not None:
        writer.file_version = trc_version
    with writer:
        for msg in messages:
            writer.on_message_received(msg)


WRITTEN = [
    ("capture.asc", None, "vector-asc"),
    ("capture.blf", None, "vector-blf"),
    ("capture.trc", TRCFileVersion.V2_1, "pcan-trc"),
    ("capture_v10.trc", TRCFileVersion.V1_0, "pcan-trc"),
    ("capture.csv", None, "python-can-csv"),
]


#: What python-can's TRC writer cannot store: it logs "not implemented" and writes nothing.
def _trc_can_store(msg: can.Message) -> bool:
    return not (msg.is_fd or msg.is_remote_frame or msg.is_error_frame)


@pytest.mark.parametrize(("name", "version", "fmt"), WRITTEN, ids=[w[0] for w in WRITTEN])
def test_logs_written_by_python_can_read_losslessly(tmp_path, name, version, fmt):
    written = _messages()
    if fmt == "pcan-trc":
        written = [m for m in written if _trc_can_store(m)]
    path = tmp_path / name
    _write(path, written, version)
    assert detect_format(path).name == fmt
    theirs = _python_can(path)
    result = read_capture(path)  # raise mode: python-can's own output has no bad record
    frames = result.frames
    # frames + skipped = python-can's message count = what was written
    assert len(frames) + result.skipped == result.records == len(theirs) == len(written)
    assert result.skipped_reasons == ({"error frame": 1} if any(m.is_error_frame for m in written) else {})
    data_frames = [m for m in written if not m.is_error_frame and not m.is_remote_frame]
    # every data frame with its whole payload (CAN FD up to 64 bytes), ID and ID width
    data_rows = np.flatnonzero(~frames.remote)
    payloads = [frames.payload[i, : frames.dlc[i]].tobytes() for i in data_rows]
    assert payloads == [bytes(m.data) for m in data_frames]
    assert frames.can_id[data_rows].tolist() == [m.arbitration_id for m in data_frames]
    assert frames.extended[data_rows].tolist() == [m.is_extended_id for m in data_frames]
    long_ones = frames.dlc > 8
    assert (frames.flags[long_ones] & FLAG_FD).all()
    assert long_ones.sum() == sum(len(m.data) > 8 for m in data_frames)
    remote = [m for m in written if m.is_remote_frame]
    assert frames.dlc[frames.remote].tolist() == [m.dlc for m in remote]
    if fmt in ("vector-asc", "vector-blf"):  # the formats that store the FD flags
        fd = [m for m in data_frames if m.is_fd]
        flags = frames.flags[data_rows[: len(fd)]]
        assert (flags & FLAG_FD).all()
        assert [bool(f & FLAG_BRS) for f in flags] == [m.bitrate_switch for m in fd]
        assert [bool(f & FLAG_ESI) for f in flags] == [m.error_state_indicator for m in fd]


def test_trc_2_1_fd_records_keep_64_bytes(tmp_path):
    header = (DATA / "test_CanMessage_V2_1.trc").read_text().split("      1 ")[0]
    payload = " ".join(f"{b:02X}" for b in range(64))
    path = tmp_path / "fd.trc"
    path.write_text(header + f"      1     17535.400 FB 1  00000100 Rx -  15   {payload}\n"
                    f"      2     17536.400 FE 2      0123 Rx -  9    {payload[:12 * 3 - 1]}\n"
                    "      3     17537.400 ER 1      0123 Rx -  0\n")
    result = read_capture(path)
    frames = result.frames
    assert frames.dlc.tolist() == [64, 12] and frames.payload[0].tolist() == list(range(64))
    assert frames.flags.tolist() == [FLAG_FD | FLAG_BRS, FLAG_FD | FLAG_ESI]
    assert frames.sources == (f"{path}#1", f"{path}#2")  # two buses, kept apart
    assert result.skipped_reasons == {"error frame": 1}


def test_blf_damage_is_skipped_and_truncation_raises(tmp_path):
    path = tmp_path / "capture.blf"
    written = _messages()
    _write(path, written)
    blob = path.read_bytes()
    cut = tmp_path / "cut.blf"
    cut.write_bytes(blob[: len(blob) - 40])
    with pytest.raises(FormatError, match="truncated or corrupt BLF"):
        VectorBlf().read(cut)  # raise mode: never a quiet exit 0 on a cut file
    result = VectorBlf().read(cut, errors="skip")
    assert len(result.frames) + result.skipped == len(written)
    assert result.skipped_reasons.get(
        "objects announced by the file header but not found (truncated or corrupt file)", 0) >= 1


def test_one_corrupt_blf_object_costs_that_object_only(tmp_path):
    path = tmp_path / "plain.blf"
    written = [can.Message(timestamp=1.0 + i, arbitration_id=0x100 + i, data=bytes([i]) * 8)
               for i in range(30)]
    with can.BLFWriter(str(path), compression_level=0) as log:  # uncompressed: objects are visible
        for msg in written:
            log.on_message_received(msg)
    blob = bytearray(path.read_bytes())
    objects = [i for i in range(len(blob)) if blob[i : i + 4] == b"LOBJ"]
    blob[objects[11] : objects[11] + 4] = b"XXXX"  # the 11th message's object header (1st is the container)
    path.write_bytes(bytes(blob))
    with pytest.raises(FormatError, match="corrupt BLF object"):
        VectorBlf().read(path)
    result = VectorBlf().read(path, errors="skip")
    assert len(result.frames) == 29 and result.records == 30
    assert result.skipped_reasons == {"corrupt BLF object": 1}
    assert 0x10A not in result.frames.can_id.tolist()


def test_asc_classic_line_with_a_dlc_code_above_8_keeps_its_bytes(tmp_path):
    data24 = " ".join(f"{b:02X}" for b in range(24))
    path = tmp_path / "x.asc"
    path.write_text("date Mon Jan 1 00:00:00.000 2024\nbase hex  timestamps absolute\n"
                    f"   1.000000 1  123             Rx   d c {data24}\n"  # DLC code 12 = 24 bytes, all there
                    "   1.100000 1  124             Rx   d c 01 02 03 04 05 06 07 08\n")  # classic: 8 bytes
    frames = VectorAsc().read(path).frames
    assert frames.dlc.tolist() == [24, 8]
    assert frames.payload[0, :24].tolist() == list(range(24)) and frames.flags.tolist() == [FLAG_FD, 0]
