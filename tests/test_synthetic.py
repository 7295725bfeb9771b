"""The synthetic vehicle simulator and the dataset it writes.

The CSVs are read here with pandas on purpose: the project's own readers are
tested elsewhere, and this file must not depend on them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusioncore.data.synthetic import (
    FILE_PLAN,
    MANIFEST_NAME,
    SYNTHETIC_VERSION,
    build_fleet,
    ensure_synthetic,
    file_plan,
    generate_synthetic,
    load_manifest,
    simulate_capture,
)
from fusioncore.data.synthetic import dataset as dataset_module
from fusioncore.data.synthetic.vehicles import FieldKind
from fusioncore.errors import ConfigError, DatasetNotFoundError

FOLDERS = {
    "train_01_attack_free",
    "train_02_with_attacks",
    "test_01_known_vehicle_known_attack",
    "test_02_unknown_vehicle_known_attack",
    "test_03_known_vehicle_unknown_attack",
    "test_04_unknown_vehicle_unknown_attack",
    "test_05_suppress",
    "test_06_masquerade",
}
PREFIX_TO_ATTACK = {
    "attack-free": "benign",
    "DoS": "flooding",
    "fuzzing": "fuzzing",
    "spoofing": "spoofing",
    "replay": "replay",
    "malfunction": "malfunction",
    "suppress": "suppress",
    "masquerade": "masquerade",
}
KNOWN_ATTACKS = {"flooding", "fuzzing", "spoofing", "replay"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The full-size dataset (scale 1), generated once and timed."""
    root = tmp_path_factory.mktemp("synthetic-a") / "synthetic"
    start = time.perf_counter()
    manifest = generate_synthetic(root, seed=0)
    elapsed = time.perf_counter() - start
    print(f"\nsynthetic dataset: {elapsed:.2f} s, {manifest.total_frames} frames, "
          f"{len(manifest.files)} files, attack frames {manifest.attack_frames}")
    return root, manifest, elapsed


@pytest.fixture(scope="module")
def tables(generated):
    """Every CSV parsed with pandas, keyed by relative path; timestamps as integer µs."""
    root, manifest, _ = generated
    out = {}
    for f in manifest.files:
        df = pd.read_csv(root / f.path, dtype=str, keep_default_na=False)
        df["us"] = df["timestamp"].str.replace(".", "", regex=False).astype(np.int64)
        df["id"] = df["arbitration_id"].apply(int, base=16)
        df["label"] = df["attack"].astype(np.int64)
        out[f.path] = df
    return out


def _interval_mask(us: np.ndarray, intervals) -> np.ndarray:
    mask = np.zeros(len(us), bool)
    for s, e in intervals:
        mask |= (us >= round(s * 1e6)) & (us < round(e * 1e6))
    return mask


# ------------------------------------------------------------------ size, speed, layout
def test_generation_is_fast_and_sized_as_specified(generated, tables):
    _, manifest, elapsed = generated
    assert elapsed < 60.0, f"generation took {elapsed:.1f} s"
    assert 300_000 <= manifest.total_frames <= 560_000
    for f in manifest.files:
        span = (tables[f.path]["us"].iloc[-1] - tables[f.path]["us"].iloc[0]) / 1e6
        assert 38.0 <= span <= 60.0, (f.path, span)


def test_layout_and_names_match_can_train_and_test(generated):
    root, manifest, _ = generated
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.csv")}
    assert on_disk == {f.path for f in manifest.files} == {p.path for p in FILE_PLAN}
    assert {p.split("/")[0] for p in on_disk} == FOLDERS
    for f in manifest.files:
        prefix, vehicle = Path(f.path).stem.rsplit("-", 1)
        assert PREFIX_TO_ATTACK[prefix] == f.attack and vehicle == f.vehicle
    by_folder = {}
    for f in manifest.files:
        by_folder.setdefault(f.path.split("/")[0], set()).add((f.attack, f.vehicle))
    assert {a for a, _ in by_folder["train_02_with_attacks"]} == KNOWN_ATTACKS
    assert {v for _, v in by_folder["train_02_with_attacks"]} == {"sedan", "suv"}
    assert {v for _, v in by_folder["test_02_unknown_vehicle_known_attack"]} == {"van"}
    assert by_folder["test_04_unknown_vehicle_unknown_attack"] == {("malfunction", "van")}
    assert (root / MANIFEST_NAME).is_file()


def test_csv_format(generated, tables):
    root, manifest, _ = generated
    for f in manifest.files:
        raw = (root / f.path).read_bytes()
        assert raw.startswith(b"timestamp,arbitration_id,data_field,attack\n")
        assert hashlib.sha256(raw).hexdigest() == f.sha256 and len(raw) == f.bytes
        df = tables[f.path]
        assert len(df) == f.frames and int(df["label"].sum()) == f.attack_frames
        assert df["timestamp"].str.fullmatch(r"\d{10}\.\d{6}").all()
        assert df["arbitration_id"].str.fullmatch(r"[0-9A-F]{3}").all()
        assert df["data_field"].str.fullmatch(r"(?:[0-9A-F]{2}){0,8}").all()
        assert set(df["attack"]) <= {"0", "1"}
        assert (np.diff(df["us"].to_numpy()) > 0).all(), "timestamps must strictly increase"
    # Some payloads are shorter than 8 bytes, some empty (DLC 0).
    lengths = set(tables["train_01_attack_free/attack-free-sedan.csv"]["data_field"].str.len())
    assert 0 in lengths and 16 in lengths and len(lengths) >= 3


# ------------------------------------------------------------------ vehicles and payloads
def test_fleet_has_three_partly_overlapping_vehicles():
    sedan, suv, van = build_fleet(0)
    for v in (sedan, suv, van):
        assert 25 <= len(v.ids) <= 60 and len(set(v.ids)) == len(v.ids)
        periods = {m.period_s for m in v.messages}
        assert min(periods) == pytest.approx(0.01) and max(periods) <= 1.0
        assert any(m.dlc < 8 for m in v.messages)
    assert 0 < len(set(sedan.ids) & set(suv.ids)) < min(len(sedan.ids), len(suv.ids))
    assert 0 < len(set(sedan.ids) & set(van.ids)) < len(set(sedan.ids) & set(suv.ids))
    assert build_fleet(0) == build_fleet(0) and build_fleet(0) != build_fleet(1)


def _bytes(df: pd.DataFrame) -> np.ndarray:
    hexes = df["data_field"].str.ljust(16, "0")
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(df), 8)


def test_benign_payload_semantics(tables):
    """Counters roll by one, checksums hold, signals move smoothly, periods hold."""
    (sedan, *_) = build_fleet(0)
    df = tables["train_01_attack_free/attack-free-sedan.csv"]
    checked = {"counter": 0, "checksum": 0, "signal": 0}
    for message in sedan.messages:
        rows = df[df["id"] == message.can_id]
        gaps = np.diff(rows["us"].to_numpy()) / 1e6
        assert np.median(gaps) == pytest.approx(message.period_s, rel=0.05)
        data = _bytes(rows)
        for field in message.fields:
            column = data[:, field.byte].astype(np.int64)
            if field.kind is FieldKind.COUNTER:
                modulus = 16 if field.bits == 4 else 256
                assert (np.diff(column % modulus) % modulus == 1).all()
                checked["counter"] += 1
            elif field.kind is FieldKind.CHECKSUM:
                others = np.delete(data[:, : message.dlc], field.byte, axis=1).astype(np.int64)
                assert (others.sum(axis=1) & 0xFF == column).all()
                checked["checksum"] += 1
            elif field.kind is FieldKind.SIGNAL and field.width == 2 and message.period_s <= 0.02:
                value = (column << 8) | data[:, field.byte + 1]
                # Big-endian 16-bit signals sampled every 10-20 ms never jump across the range.
                assert np.abs(np.diff(value)).max() < 0.2 * 65535
                checked["signal"] += 1
    assert min(checked.values()) >= 3, checked


# ------------------------------------------------------------------ attacks and labels
def test_every_attack_is_present_and_labelled(generated, tables):
    _, manifest, _ = generated
    assert set(manifest.attack_frames) == KNOWN_ATTACKS | {"malfunction", "suppress", "masquerade"}
    for f in manifest.files:
        labels = tables[f.path]["label"]
        if f.attack == "benign":
            assert labels.sum() == 0
            continue
        assert 0.02 <= labels.mean() <= 0.20, (f.path, labels.mean())
        assert 3 <= len(f.intervals) <= 5


def _files(manifest, attack):
    return [f for f in manifest.files if f.attack == attack]


def test_injected_attacks_look_like_their_kind(generated, tables):
    _, manifest, _ = generated
    for f in _files(manifest, "flooding"):
        df = tables[f.path]
        attack = df[df["label"] == 1]
        assert (attack["id"] == 0).all() and (attack["data_field"] == "0" * 16).all()
        assert (df[df["label"] == 0]["id"] != 0).all()
    for f in _files(manifest, "fuzzing"):
        attack = tables[f.path].query("label == 1")
        assert attack["id"].nunique() > 500 and attack["id"].max() <= 0x7FF
    for f in _files(manifest, "spoofing"):
        df = tables[f.path]
        (target,) = f.target_ids
        attack = df[df["label"] == 1]
        assert (attack["id"] == target).all() and attack["data_field"].nunique() <= len(f.intervals)
        assert ((df["label"] == 0) & (df["id"] == target)).any(), "the owner keeps sending"
    for f in _files(manifest, "replay"):
        df = tables[f.path]
        attack, genuine = df[df["label"] == 1], df[df["label"] == 0]
        assert set(attack["id"]) <= set(f.target_ids)
        # Replayed payloads are genuine payloads of the same ID, recorded earlier.
        seen = set(zip(genuine["id"], genuine["data_field"]))
        assert all(pair in seen for pair in zip(attack["id"], attack["data_field"]))


def test_malfunction_replaces_frames_at_the_normal_period(generated, tables):
    _, manifest, _ = generated
    for f in _files(manifest, "malfunction"):
        df = tables[f.path]
        attack = df[df["label"] == 1]
        assert set(attack["id"]) <= set(f.target_ids)
        for can_id in f.target_ids:
            benign_gap = np.median(np.diff(df[(df["id"] == can_id) & (df["label"] == 0)]["us"]))
            attack_gap = np.median(np.diff(attack[attack["id"] == can_id]["us"]))
            assert attack_gap == pytest.approx(benign_gap, rel=0.1)
            inside = _interval_mask(df["us"].to_numpy(), f.intervals) & (df["id"] == can_id)
            # Frames replaced, not added: the ID's frames inside the intervals are all attack.
            assert df[inside]["label"].mean() > 0.95


def test_suppress_removes_the_id_and_labels_exactly_the_interval(generated, tables):
    _, manifest, _ = generated
    for f in _files(manifest, "suppress"):
        df = tables[f.path]
        (target,) = f.target_ids
        inside = _interval_mask(df["us"].to_numpy(), f.intervals)
        assert not (inside & (df["id"] == target)).any()
        assert (df["label"].to_numpy() == inside).all()
        assert (df["id"] == target).sum() > 100, "the target is sent outside the intervals"


def test_masquerade_silences_the_owner_and_labels_the_attacker(generated, tables):
    _, manifest, _ = generated
    for f in _files(manifest, "masquerade"):
        df = tables[f.path]
        (target,) = f.target_ids
        inside = _interval_mask(df["us"].to_numpy(), f.intervals)
        is_target = (df["id"] == target).to_numpy()
        label = df["label"].to_numpy() == 1
        assert not (inside & is_target & ~label).any(), "the owner is silent in the intervals"
        assert (is_target[label]).all() and inside[label].mean() > 0.99
        genuine = df[~inside & is_target]
        attack = df[label]
        genuine_gap = np.median(np.diff(genuine["us"]))
        assert np.median(np.diff(attack["us"])) == pytest.approx(genuine_gap, rel=0.05)


# ------------------------------------------------------------------ determinism and caching
def test_same_seed_gives_byte_identical_files(generated, tmp_path):
    root, manifest, _ = generated
    again = generate_synthetic(tmp_path / "synthetic", seed=0)
    assert again == manifest
    for f in manifest.files:
        assert (tmp_path / "synthetic" / f.path).read_bytes() == (root / f.path).read_bytes()
    assert (tmp_path / "synthetic" / MANIFEST_NAME).read_bytes() == (
        root / MANIFEST_NAME
    ).read_bytes()


def test_other_seed_and_scale_change_the_data(generated, tmp_path):
    _, manifest, _ = generated
    other = generate_synthetic(tmp_path / "s1", seed=1, scale=0.25)
    assert {f.sha256 for f in other.files}.isdisjoint({f.sha256 for f in manifest.files})
    assert other.total_frames < 0.4 * manifest.total_frames
    assert all(f.attack_frames > 0 for f in other.files if f.attack != "benign")


def test_ensure_is_idempotent(tmp_path, monkeypatch):
    root = tmp_path / "data" / "synthetic"
    assert ensure_synthetic(root, seed=3, scale=0.1) == root
    manifest_stat = (root / MANIFEST_NAME).stat()
    assert load_manifest(root).seed == 3 and load_manifest(root).version == SYNTHETIC_VERSION

    def boom(*args, **kwargs):
        raise AssertionError("a current dataset must not be regenerated")

    monkeypatch.setattr(dataset_module, "_generate", boom)
    assert ensure_synthetic(root, seed=3, scale=0.1) == root
    assert (root / MANIFEST_NAME).stat().st_mtime_ns == manifest_stat.st_mtime_ns
    assert sorted(p.name for p in root.parent.iterdir()) == ["synthetic"]


def test_ensure_regenerates_stale_or_damaged_data(tmp_path):
    root = tmp_path / "synthetic"
    ensure_synthetic(root, seed=0, scale=0.1)
    ensure_synthetic(root, seed=1, scale=0.1)
    assert load_manifest(root).seed == 1
    victim = root / FILE_PLAN[0].path
    victim.write_bytes(victim.read_bytes()[:100])  # truncated: size no longer matches
    ensure_synthetic(root, seed=1, scale=0.1)
    assert victim.stat().st_size == load_manifest(root).file(FILE_PLAN[0].path).bytes
    text = json.loads((root / MANIFEST_NAME).read_text())
    text["version"] = SYNTHETIC_VERSION - 1
    (root / MANIFEST_NAME).write_text(json.dumps(text))
    ensure_synthetic(root, seed=1, scale=0.1)
    assert load_manifest(root).version == SYNTHETIC_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_ensure_is_atomic_when_generation_crashes(tmp_path, monkeypatch):
    root = tmp_path / "synthetic"
    real_write = dataset_module.write_csv
    calls = []

    def crash_on_fifth(frames, fh):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("simulated crash")
        return real_write(frames, fh)

    monkeypatch.setattr(dataset_module, "write_csv", crash_on_fifth)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ensure_synthetic(root, seed=0, scale=0.1)
    assert list(tmp_path.iterdir()) == [], "no dataset and no temporary folder left behind"

    monkeypatch.setattr(dataset_module, "write_csv", real_write)
    ensure_synthetic(root, seed=0, scale=0.1)
    before = (root / MANIFEST_NAME).read_bytes()
    calls.clear()
    monkeypatch.setattr(dataset_module, "write_csv", crash_on_fifth)
    with pytest.raises(RuntimeError):
        ensure_synthetic(root, seed=1, scale=0.1)  # stale copy must survive a failed refresh
    assert (root / MANIFEST_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_refuses_to_overwrite_foreign_folders(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("not a dataset")
    with pytest.raises(ConfigError, match="refusing"):
        ensure_synthetic(root, scale=0.1)
    with pytest.raises(ConfigError, match="refusing"):
        generate_synthetic(root, scale=0.1)
    assert (root / "notes.txt").read_text() == "not a dataset"


@pytest.mark.parametrize(
    ("seed", "scale"), [(-1, 1.0), (0, 0.0), (0, float("nan")), (0, 0.01), (1.5, 1.0)]
)
def test_rejects_bad_options(tmp_path, seed, scale):
    with pytest.raises(ConfigError):
        generate_synthetic(tmp_path / "s", seed=seed, scale=scale)


def test_load_manifest_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="manifest.json missing"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(DatasetNotFoundError, match="unreadable"):
        load_manifest(tmp_path)


def test_capture_names_carry_the_attack_type():
    pattern = re.compile(r"^(attack-free|DoS|fuzzing|spoofing|replay|malfunction|suppress|masquerade)-")
    assert all(pattern.match(Path(p.path).name) for p in FILE_PLAN)


# ------------------------------------------------------------------ size: drives and the large dataset
def test_drives_multiply_the_captures_each_a_drive_of_its_own(tmp_path, generated):
    _, one, _ = generated
    manifest = generate_synthetic(tmp_path / "s", seed=0, scale=0.1, drives=3)
    assert len(manifest.files) == 3 * len(FILE_PLAN) and manifest.drives == 3
    assert [f.path for f in manifest.files] == [p.path for p in file_plan(3)]
    assert {Path(f.path).stem.rsplit("-", 1)[1] for f in manifest.files} == {"01", "02", "03"}
    assert len({f.sha256 for f in manifest.files}) == len(manifest.files)  # no two drives alike
    for f in manifest.files:  # names still carry attack and vehicle, as the readers expect
        prefix, vehicle, _ = Path(f.path).stem.rsplit("-", 2)
        assert PREFIX_TO_ATTACK[prefix] == f.attack and vehicle == f.vehicle
    again = generate_synthetic(tmp_path / "t", seed=0, scale=0.1, drives=3)
    assert again == manifest
    assert file_plan(1) == FILE_PLAN and one.drives == 1
    # an ensured copy with other drives is stale
    root = tmp_path / "ensured"
    ensure_synthetic(root, seed=0, scale=0.1, drives=2)
    ensure_synthetic(root, seed=0, scale=0.1, drives=3)
    assert load_manifest(root).drives == 3 and len(list(root.rglob("*.csv"))) == 3 * len(FILE_PLAN)
    with pytest.raises(ConfigError, match="drives"):
        generate_synthetic(tmp_path / "u", drives=0)


def test_chunked_writer_gives_format_csv_bytes(tmp_path):
    import io

    from fusioncore.data.synthetic.csvfile import format_csv, write_csv

    sedan = build_fleet(0)[0]
    frames = simulate_capture(sedan, "fuzzing", rng=np.random.default_rng(5), duration=3.0,
                              start_us=1_700_000_000 * 1_000_000).frames
    buf = io.BytesIO()
    size, digest = write_csv(frames, buf, chunk_rows=777)
    assert buf.getvalue() == format_csv(frames)
    assert size == len(buf.getvalue()) and digest == hashlib.sha256(buf.getvalue()).hexdigest()


def test_the_registered_scale_datasets_are_sized_as_documented():
    """synthetic-large must hold at least 60 M frames: 476 k frames per unit of scale x drives at seed 0.

    Generating it takes minutes, so the size is checked here from a small sample with the same
    plan: frames grow linearly with scale (the same drive, longer) and with drives.
    """
    from fusioncore.plugins import get_plugins

    registry = get_plugins().registry
    large, medium = registry.get("dataset", "synthetic-large"), registry.get("dataset", "synthetic-medium")
    assert (large.scale, large.drives, large.seed) == (13.0, 10, 0)
    assert (medium.scale, medium.drives, medium.seed) == (13.0, 1, 0)
    assert large.location(Path("/nonexistent")).name == "synthetic-large"
    # at seed 0, scale 1 holds 476 k frames; measured: synthetic-large 61.8 M, synthetic-medium 6.17 M
    assert 476_000 * large.scale * large.drives >= 60_000_000
