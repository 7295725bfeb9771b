"""Capture readers on real data: counts, values, gzip, sniffing, python-can formats."""

from __future__ import annotations

import csv
import gzip
import shutil

import can
import numpy as np
import pytest

from fusioncore.contracts import FormatReader
from fusioncore.data.formats import (
    BUILTIN_FORMATS,
    CandumpLog,
    CanTrainAndTestCsv,
    HcrlCarHackingCsv,
    attack_type_from_filename,
    count_backward_steps,
    detect_format,
    read_capture,
)
from fusioncore.data.frames import FLAG_BRS, FLAG_FD, attack_type_code

pytestmark = pytest.mark.realdata

HCRL_SA = "can-train-and-test/hcrl_sa"
SA_COUNTS = [
    ("test_01_known_vehicle_known_attack/DoS-sonata.csv", 149_547, 32_422, "flooding"),
    ("test_02_unknown_vehicle_known_attack/fuzzing-Spark.csv", 65_665, 5_812, "fuzzing"),
    ("test_04_unknown_vehicle_unknown_attack/malfunction-spark.csv", 79_787, 8_047, "malfunction"),
    ("train_01_attack_free/attack-free-sonata.csv", 117_173, 0, "benign"),
]


def frames_equal(a, b) -> bool:
    cols = ("timestamp", "can_id", "extended", "remote", "dlc", "data", "label", "attack_type")
    return len(a) == len(b) and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in cols)


def test_every_builtin_reader_meets_the_protocol():
    names = [r.name for r in BUILTIN_FORMATS]
    assert len(set(names)) == len(names)
    assert all(isinstance(r, FormatReader) for r in BUILTIN_FORMATS)


@pytest.mark.parametrize(("rel", "n", "n_attack", "kind"), SA_COUNTS)
def test_hcrl_sa_counts_and_attack_types(shared_data, rel, n, n_attack, kind):
    result = read_capture(shared_data / HCRL_SA / rel)
    frames = result.frames
    assert (len(frames), frames.n_attack, result.skipped) == (n, n_attack, 0)
    code = attack_type_code(kind)
    assert set(np.unique(frames.attack_type[frames.label == 1])) <= {code}
    assert not frames.attack_type[frames.label == 0].any()


def test_hcrl_sa_values_match_a_plain_csv_parse(shared_data):
    path = shared_data / HCRL_SA / "test_02_unknown_vehicle_known_attack/fuzzing-Spark.csv"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    frames = CanTrainAndTestCsv().read(path).frames
    assert np.array_equal(frames.timestamp, [float(r[0]) for r in rows])
    assert np.array_equal(frames.can_id, [int(r[1], 16) for r in rows])
    assert np.array_equal(frames.dlc, [len(r[2]) // 2 for r in rows])
    assert np.array_equal(frames.label, [int(r[3]) for r in rows])
    assert {0, 1, 2, 3, 4, 5, 6, 7, 8} >= set(frames.dlc.tolist())
    expected = np.zeros((len(rows), 8), np.uint8)
    for i, r in enumerate(rows[::50]):
        expected[i * 50, : len(r[2]) // 2] = list(bytes.fromhex(r[2]))
    assert np.array_equal(frames.data[::50], expected[::50])
    assert not frames.extended.any()


def test_car_hacking_rows_and_flags(shared_data):
    total = 0
    for path in sorted((shared_data / "hcrl-car-hacking-rows").glob("*.csv")):
        rows = [line.split(",") for line in path.read_text().splitlines()]
        frames = read_capture(path).frames
        total += len(frames)
        assert np.array_equal(frames.label, [r[-1] == "T" for r in rows])
        assert np.array_equal(frames.dlc, [int(r[2]) for r in rows])
        assert frames.data[0, : frames.dlc[0]].tolist() == [int(b, 16) for b in rows[0][3:-1]]
        kind = attack_type_from_filename(path.name)
        assert np.array_equal(frames.attack_type, np.where(frames.label == 1, kind, 0))
    assert total == 1_982


def test_car_hacking_short_dlc_rows_keep_their_flag(tmp_path):
    path = tmp_path / "gear_dataset.csv"
    path.write_text(
        "1478198386.1,0545,8,d8,00,00,87,00,00,00,00,R\n"
        "1478198386.2,043f,5,01,45,60,ff,6b,T\n"
        "1478198386.3,0260,2,19,21,R\n"
        "1478198386.4,0000,0,T\n"
    )
    frames = HcrlCarHackingCsv().read(path).frames
    assert frames.dlc.tolist() == [8, 5, 2, 0]
    assert frames.label.tolist() == [0, 1, 0, 1]
    assert frames.data[1].tolist() == [1, 0x45, 0x60, 0xFF, 0x6B, 0, 0, 0]
    assert frames.attack_type.tolist() == [0, attack_type_code("spoofing"), 0, 3]


def test_otids_text(shared_data):
    path = shared_data / "otids/Attack_free_dataset_10k.txt"
    assert not path.read_bytes().endswith(b"\n")
    result = read_capture(path)
    frames = result.frames
    assert (len(frames), int(frames.remote.sum()), result.skipped) == (10_000, 424, 0)
    assert not frames.dlc[frames.remote].any() and not frames.data[frames.remote].any()
    assert frames.can_id[0] == 0x316 and frames.data[0].tolist() == [5, 0x20, 0xEA, 10, 0x20, 0x1A, 0, 0x7F]
    assert frames.timestamp[0] == 0.0 and frames.n_attack == 0
    last = path.read_text().splitlines()[-1].split()
    assert frames.data[-1, : int(last[6])].tolist() == [int(b, 16) for b in last[7:]]


def test_candump_matches_python_can(shared_data):
    path = shared_data / "candump/impala-drive.log"
    frames = read_capture(path).frames
    messages = list(can.CanutilsLogReader(str(path)))
    assert len(frames) == len(messages) == 36_498
    assert np.array_equal(frames.timestamp, [m.timestamp for m in messages])
    assert np.array_equal(frames.can_id, [m.arbitration_id for m in messages])
    assert np.array_equal(frames.dlc, [m.dlc for m in messages])
    assert np.array_equal(frames.extended, [m.is_extended_id for m in messages])
    packed = [bytes(m.data).ljust(8, b"\0") for m in messages]
    assert np.array_equal(frames.data, np.frombuffer(b"".join(packed), np.uint8).reshape(-1, 8))


def test_candump_remote_extended_fd_and_error_frames(tmp_path):
    path = tmp_path / "bus.log"
    path.write_text(
        "(1.000000) can0 123#DEADBEEF\n"
        "(1.100000) can0 1ABCDEF0#R\n"
        "(1.200000) can0 321#R4\n"
        "(1.300000) can1 456##1AABB\n"
        "(1.400000) can0 20000080#0000000000000000\n"
        "(1.500000) can0 7FF# R\n"
    )
    result = CandumpLog().read(path)
    frames = result.frames
    # can1 is another bus: its frame is a source of its own, after can0's frames
    assert frames.can_id.tolist() == [0x123, 0x1ABCDEF0, 0x321, 0x7FF, 0x456]
    assert frames.sources == (f"{path}#can0", f"{path}#can1")
    assert frames.source.tolist() == [0, 0, 0, 0, 1]
    assert frames.extended.tolist() == [False, True, False, False, False]
    assert frames.remote.tolist() == [False, True, True, False, False]
    assert frames.dlc.tolist() == [4, 0, 4, 0, 2]
    assert frames.flags.tolist() == [0, 0, 0, 0, FLAG_FD | FLAG_BRS]
    assert result.skipped_reasons == {"error frame": 1}
    assert result.records == 6 and "2 interfaces (can0, can1)" in result.notes[0]


def _small_samples(shared_data, tmp_path):
    """One small file per real format: (path, expected reader name)."""
    sa = shared_data / HCRL_SA / "test_02_unknown_vehicle_known_attack/fuzzing-Spark.csv"
    head = tmp_path / "fuzzing-Spark.csv"
    head.write_bytes(b"".join(sa.read_bytes().splitlines(keepends=True)[:500]))
    return [
        (head, "can-train-and-test"),
        (shared_data / "hcrl-car-hacking-rows/RPM_sample.csv", "hcrl-car-hacking"),
        (shared_data / "otids/Attack_free_dataset_10k.txt", "hcrl-text"),
        (shared_data / "candump/impala-drive.log", "candump"),
    ]


def test_gz_is_transparent(shared_data, tmp_path):
    for path, name in _small_samples(shared_data, tmp_path):
        packed = tmp_path / (path.name + ".gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        assert detect_format(packed).name == name
        assert frames_equal(read_capture(packed).frames, read_capture(path).frames)
    renamed = tmp_path / "no-suffix"  # gzip judged by magic bytes, not by name
    shutil.copy(tmp_path / "RPM_sample.csv.gz", renamed)
    assert read_capture(renamed).frames.n_attack > 0


@pytest.mark.parametrize("suffix", [".bin", ".txt", ".csv", ".log", ".asc"])
def test_sniffing_ignores_misleading_suffixes(shared_data, tmp_path, suffix):
    for i, (path, name) in enumerate(_small_samples(shared_data, tmp_path)):
        renamed = tmp_path / f"capture{i}{suffix}"
        shutil.copy(path, renamed)
        assert detect_format(renamed).name == name


def _python_can_file(path):
    messages = [
        can.Message(
            timestamp=100.0 + i / 100,
            arbitration_id=(0x18DAF100 + i) if i % 4 == 0 else 0x100 + i,
            is_extended_id=i % 4 == 0,
            data=bytes(range(i, i + i % 9)),
        )
        for i in range(40)
    ]
    with can.Logger(str(path)) as log:
        for msg in messages:
            log.on_message_received(msg)
        log.on_message_received(can.Message(timestamp=200.0, is_error_frame=True))
    return messages


@pytest.mark.parametrize(
    ("suffix", "name"),
    [
        (".asc", "vector-asc"),
        (".blf", "vector-blf"),
        (".trc", "pcan-trc"),
        (".csv", "python-can-csv"),
        (".db", "python-can-sqlite"),
        (".log", "candump"),
    ],
)
def test_python_can_formats_round_trip(tmp_path, suffix, name):
    path = tmp_path / f"capture{suffix}"
    messages = _python_can_file(path)
    packed = tmp_path / "renamed.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    for candidate in (path, packed):
        assert detect_format(candidate).name == name
        result = read_capture(candidate)
        frames = result.frames
        assert frames.can_id.tolist() == [m.arbitration_id for m in messages]
        assert frames.extended.tolist() == [m.is_extended_id for m in messages]
        assert frames.dlc.tolist() == [m.dlc for m in messages]
        assert frames.data[7, :7].tolist() == list(range(7, 14))
        # ASC timestamps are relative to the measurement start: compare the gaps.
        gaps = np.diff([m.timestamp for m in messages])
        np.testing.assert_allclose(np.diff(frames.timestamp), gaps, rtol=0, atol=1e-5)
        # TRC cannot store error frames; the others count the one we wrote.
        assert result.skipped_reasons == ({} if name == "pcan-trc" else {"error frame": 1})


def test_backward_timestamps_are_kept_in_file_order(tmp_path):
    path = tmp_path / "attack-free-x.csv"
    path.write_text(
        "timestamp,arbitration_id,data_field,attack\n"
        "10.0,100,00,0\n9.5,101,01,0\n11.0,102,,0\n10.5,103,03,0\n"
    )
    result = read_capture(path)
    assert result.frames.timestamp.tolist() == [10.0, 9.5, 11.0, 10.5]
    assert result.skipped == 0
    assert count_backward_steps(result.frames) == 2
    assert result.frames.dlc.tolist() == [1, 1, 0, 1]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("DoS-kia.csv", "flooding"),
        ("fuzzing-Spark.csv.gz", "fuzzing"),
        ("Fuzzy_dataset.csv", "fuzzing"),
        ("malfunction-sonata.csv", "malfunction"),
        ("gear_dataset.csv", "spoofing"),
        ("RPM_sample.csv", "spoofing"),
        ("rpm-accessory-1.csv", "spoofing"),
        ("attack-free-kia.csv", "benign"),
        ("masquerade-1.csv", "masquerade"),
        ("mystery.csv", "unknown"),
    ],
)
def test_attack_type_from_filename(name, kind):
    assert attack_type_from_filename(name) == attack_type_code(kind)
