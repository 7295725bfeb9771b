"""Split policies: attack windows reach fusion and validation, no leakage, purge gaps hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusioncore.contracts import DatasetFiles
from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.loading import load_files
from fusioncore.data.splits import SPLITS, SplitPolicy, plan_splits, summarize_splits
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import ConfigError

HCRL_SA = "can-train-and-test/hcrl_sa"


def _frames(lengths, attack_rows, kinds) -> Frames:
    """Files of ``lengths`` rows; ``attack_rows[f]`` are the attack rows of file f (file-local)."""
    n = sum(lengths)
    source = np.repeat(np.arange(len(lengths)), lengths)
    label = np.zeros(n, np.uint8)
    offset = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    for f, rows in enumerate(attack_rows):
        label[offset[f] + np.asarray(rows, np.int64)] = 1
    kind = np.where(label > 0, np.asarray(kinds)[source], 0)
    return Frames.from_columns(
        timestamp=np.arange(n) * 1e-3, can_id=np.arange(n) % 50, data=np.zeros((n, 8)), label=label,
        attack_type=kind, source=source, sources=[f"f{i}.csv" for i in range(len(lengths))],
    )


def _check_no_leak(frames: Frames, spec: WindowSpec, plan, purge: int) -> None:
    owner = np.full(len(frames), -1)
    firsts = []
    for k, name in enumerate(SPLITS):
        starts = plan.starts[name]
        assert np.all(np.diff(starts) > 0)  # row order, no window twice
        rows = (starts[:, None] + np.arange(spec.size)).ravel()
        assert not (owner[rows] >= 0).any(), "a frame is in two splits"
        owner[rows] = k
        file_of = frames.source[starts]
        assert (frames.source[starts + spec.size - 1] == file_of).all()  # inside one file
        firsts.append(np.stack([starts, np.full(len(starts), k)], 1))
    every = np.concatenate(firsts) if firsts else np.zeros((0, 2), int)
    every = every[np.argsort(every[:, 0])]
    same_file = frames.source[every[1:, 0]] == frames.source[every[:-1, 0]]
    cut = same_file & (every[1:, 1] != every[:-1, 1])
    gap = every[1:, 0] - (every[:-1, 0] + spec.size)  # frames between consecutive windows
    assert (gap[cut] >= purge * spec.size).all(), "purge gap violated"


def test_attacks_in_the_first_half_reach_fusion_and_validation():
    # both attack files have bursts only in their first 40 %
    frames = _frames([20_000, 30_000, 15_000],
                     [np.r_[1000:1300, 4000:4400, 7000:7300], [], np.r_[500:900, 3000:3500, 5500:5800]],
                     [ATTACK_TYPES.index("flooding"), 0, ATTACK_TYPES.index("fuzzing")])
    spec = WindowSpec()
    old = plan_splits(frames, spec, SplitPolicy("contiguous"))
    assert old.labels["fusion"].sum() == 0 and old.labels["val"].sum() == 0  # the defect
    new = plan_splits(frames, spec, SplitPolicy())
    summary = summarize_splits({k: (new.labels[k], new.attack_types[k]) for k in SPLITS})
    for split in SPLITS:
        assert summary[split].attack_windows > 0
        assert set(summary[split].by_type) == {"flooding", "fuzzing"}
        assert summary.missing(split) == ()
    # shares are kept roughly: the detector split stays the largest
    sizes = [len(new.starts[k]) for k in SPLITS]
    total = sum(sizes)
    assert sizes[0] / total == pytest.approx(0.7, abs=0.05)
    assert sizes[1] / total == pytest.approx(0.15, abs=0.05)
    _check_no_leak(frames, spec, new, purge=1)
    assert new.purged > 0


def test_sparse_attack_types_are_pooled_with_priority_detector_validation_fusion():
    # one short burst per file: too few blocks per file, three files of one type in all
    frames = _frames([10_000] * 3, [np.r_[200:400], np.r_[5000:5200], np.r_[9000:9100]], [1, 1, 1])
    plan = plan_splits(frames, WindowSpec(), SplitPolicy())
    assert all(plan.labels[s].sum() > 0 for s in SPLITS)
    two = _frames([10_000] * 2, [np.r_[200:400], np.r_[5000:5200]], [1, 1])
    plan = plan_splits(two, WindowSpec(), SplitPolicy())
    assert plan.labels["train"].sum() > 0 and plan.labels["val"].sum() > 0
    assert plan.labels["fusion"].sum() == 0  # two attack blocks: detector and validation first


def test_benign_files_keep_the_contiguous_layout():
    frames = _frames([10_000], [[]], [0])
    plan = plan_splits(frames, WindowSpec(), SplitPolicy(purge=0))
    train, fusion, val = (plan.starts[s] for s in SPLITS)
    assert train.max() < fusion.min() and fusion.max() < val.min()
    assert (len(train), len(fusion), len(val)) == (70, 15, 15)


def test_whole_files_go_to_later_splits_with_run_shares():
    frames = _frames([10_000, 10_000], [np.r_[0:9000:50], np.r_[0:9000:50]], [1, 4])
    table = np.array([[0.7, 0.15, 0.15], [0.0, 0.5, 0.5]])
    plan = plan_splits(frames, WindowSpec(), SplitPolicy(), run_shares=table)
    assert (frames.source[plan.starts["train"]] == 0).all()
    for split in ("fusion", "val"):
        assert {0, 1} <= set(frames.source[plan.starts[split]].tolist())


def test_policy_arguments_are_validated():
    with pytest.raises(ConfigError, match="split policy must be one of"):
        SplitPolicy("random")
    with pytest.raises(ConfigError, match="purge must be >= 0"):
        SplitPolicy(purge=-1)
    with pytest.raises(ConfigError, match="shares"):
        SplitPolicy(shares=(0, 0, 0))
    files = DatasetFiles(name="x", root=".", train=())
    with pytest.raises(ConfigError, match="split policy"):
        CANDataModule(files, policy="shuffle")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    lengths=st.lists(st.integers(0, 3000), min_size=1, max_size=4),
    bursts=st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1), st.integers(1, 400)), max_size=8),
    size=st.integers(5, 120),
    stride_share=st.floats(0.2, 1.5),
    purge=st.integers(0, 3),
    blocks=st.integers(3, 30),
    policy=st.sampled_from(["attack-aware", "contiguous"]),
)
def test_no_window_in_two_splits_and_purge_gaps_hold(
    lengths, bursts, size, stride_share, purge, blocks, policy
):
    attack_rows = [[] for _ in lengths]
    for f, where, length in bursts:
        if f < len(lengths) and lengths[f]:
            lo = int(where * lengths[f])
            attack_rows[f].extend(range(lo, min(lo + length, lengths[f])))
    frames = _frames(lengths, attack_rows, [1 + i % 3 for i in range(len(lengths))])
    spec = WindowSpec(size, max(1, int(size * stride_share)))
    plan = plan_splits(frames, spec, SplitPolicy(policy, purge=purge, blocks=blocks))
    _check_no_leak(frames, spec, plan, purge)
    summary = summarize_splits({k: (plan.labels[k], plan.attack_types[k]) for k in SPLITS})
    assert sum(c.windows for c in summary.splits) + plan.purged <= sum(
        max(0, (n - size) // spec.stride + 1) for n in lengths)


# ------------------------------------------------------------- real captures
def _first_half_root(shared_data, tmp_path):
    """hcrl_sa with every training attack file cut so that its attacks sit in its first half:
    real rows in file order (timestamps keep their order) from a little before the first
    attack to 25 % of the file later, then only the benign rows of the rest."""
    src = shared_data / HCRL_SA
    root = tmp_path / "root" / "sa_first_half"
    for folder in ("train_01_attack_free", "train_02_with_attacks"):
        (root / folder).mkdir(parents=True)
    for path in sorted((src / "train_01_attack_free").glob("*.csv")):
        (root / "train_01_attack_free" / path.name).symlink_to(path)
    for path in sorted((src / "train_02_with_attacks").glob("*.csv")):
        if path.name.startswith("attack-free"):
            continue
        header, *rows = path.read_bytes().splitlines(keepends=True)
        first = next(i for i, r in enumerate(rows) if r.rstrip().endswith(b",1"))
        start = max(0, first - len(rows) // 10)
        cut = start + int(len(rows) * 0.25)
        tail = [r for r in rows[cut:] if r.rstrip().endswith(b",0")]
        (root / "train_02_with_attacks" / path.name).write_bytes(b"".join([header, *rows[start:cut], *tail]))
    test = root / "test_01_known_vehicle_known_attack"
    test.mkdir()
    (test / "DoS-sonata.csv").symlink_to(src / "test_01_known_vehicle_known_attack/DoS-sonata.csv")
    return root


@pytest.mark.realdata
def test_real_hcrl_sa_with_attacks_in_the_first_half(shared_data, tmp_path):
    from fusioncore.data.catalog import CANTrainAndTestDataset

    root = _first_half_root(shared_data, tmp_path)
    files = CANTrainAndTestDataset("sa_first_half", "test", path=root).resolve(root.parent)
    loaded = load_files(files.train)
    for frames in (loaded.frames.take(loaded.frames.source == s) for s in range(len(files.train))):
        if frames.n_attack:  # the attacks really sit in the first half
            assert np.flatnonzero(frames.label).max() < 0.5 * len(frames)
    spec = WindowSpec()
    old = plan_splits(loaded.frames, spec, SplitPolicy("contiguous"))
    assert old.labels["fusion"].sum() == 0 and old.labels["val"].sum() == 0  # today's split fails
    dm = CANDataModule(files, progress=False)
    dm.setup()
    summary = dm.split_summary()
    for split in ("fusion", "val"):
        assert summary[split].attack_windows > 0
        assert set(summary[split].by_type) == {"flooding", "fuzzing"}
    _check_no_leak(loaded.frames, spec, dm.split_plan, purge=1)
    report = dm.data_report()
    assert report["splits"]["val"]["attack_windows"] == summary["val"].attack_windows
    assert report["split_policy"]["name"] == "attack-aware" and report["skipped_rows"] == 0
