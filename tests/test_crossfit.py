"""Cross-fitting: folds by time and by file, out-of-fold outputs checked by window, reuse on a second run."""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_diskcache import MemoryStore
from fusioncore_gat import GATDetector
from fusioncore_vgae import VGAEDetector

from fusioncore.contracts import DatasetFiles
from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import ConfigError, PluginError
from fusioncore.paths import redirected_dirs
from fusioncore.pipeline.crossfit import (
    CrossFitOutputs,
    CrossFitSpec,
    check_out_of_fold,
    cross_fit,
    fold_splits,
)
from fusioncore.pipeline.engine import TrainerSettings

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
FILES = ("attack-free-a.csv", "attack-free-b.csv", "DoS-a.csv", "fuzzing-b.csv")


def _write_capture(path, seed: int, attack: str | None, n: int = 4000) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.choice([0x101, 0x202, 0x303, 0x404, 0x505], size=n)
    payload = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    label = np.zeros(n, np.int64)
    if attack:  # a few stretches of injected frames in every part of the file
        hit = (np.arange(n) // 100) % 4 == 1
        label[hit] = 1
        ids[hit] = 0x000 if attack == "dos" else rng.integers(0x600, 0x7FF, hit.sum())
    rows = [f"{1.0 + i * 1e-3:.6f},{ids[i]:03X},{payload[i].tobytes().hex().upper()},{label[i]}"
            for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,arbitration_id,data_field,attack\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    root = tmp_path_factory.mktemp("crossfit") / "toy"
    for seed, name in enumerate(FILES):
        attack = "dos" if name.startswith("DoS") else "fuzz" if name.startswith("fuzzing") else None
        _write_capture(root / "train" / name, seed, attack)
    _write_capture(root / "test_01_x" / "attack-free-c.csv", 9, None)
    files = DatasetFiles(name="toy", root=root, train=tuple(sorted((root / "train").glob("*.csv"))),
                         tests={"test_01_x": (root / "test_01_x" / "attack-free-c.csv",)})
    with redirected_dirs(tmp_path_factory.mktemp("crossfit-cache")):
        module = CANDataModule(files, window=WindowSpec(100, 100), batch_size=64, progress=False)
        module.setup()
        yield module


def _rows(starts: np.ndarray, size: int = 100) -> set[int]:
    return set((starts[:, None] + np.arange(size)).ravel().tolist())


@pytest.mark.parametrize("by", ["time", "file"])
def test_folds_partition_the_training_block_without_shared_frames(dm, by):
    spec = CrossFitSpec(folds=2, by=by)
    folds = fold_splits(dm, spec)
    train = dm.splits["train"]
    held = np.concatenate([h.starts for _, h in folds])
    assert sorted(held.tolist()) == sorted(train.starts.tolist())  # stride = size: nothing dropped
    for fit, out in folds:
        assert not (_rows(fit.starts) & _rows(out.starts))
        assert set(fit.labels.tolist()) == {0, 1}  # both classes left to train on
        assert dm.fingerprint(fit.name) != dm.fingerprint(out.name)
    assert dm.test_scenarios == ["test_01_x"]  # derived splits are never test scenarios


def test_file_folds_are_dealt_in_snake_order(dm):
    (_, held0), (_, held1) = fold_splits(dm, CrossFitSpec(folds=2, by="file"))
    frames = dm.splits["train"].frames

    def names(split):
        return {frames.sources[int(s)].rsplit("/", 1)[-1] for s in np.unique(frames.source[split.starts])}

    # by (attack type, name): free-a, free-b, DoS-a, fuzzing-b -> folds 0, 1, 1, 0
    assert names(held0) == {"attack-free-a.csv", "fuzzing-b.csv"}
    assert names(held1) == {"attack-free-b.csv", "DoS-a.csv"}


def test_bad_specs_are_config_errors(dm):
    with pytest.raises(ConfigError):
        CrossFitSpec(folds=2, by="random")
    with pytest.raises(ConfigError, match="training files"):
        fold_splits(dm, CrossFitSpec(folds=9, by="file"))


def test_an_output_from_a_detector_that_saw_its_window_is_refused():
    leak = CrossFitOutputs(
        outputs={}, labels=np.zeros(3), attack_types=np.zeros(3), window_start=np.array([0, 100, 250]),
        fold=np.array([0, 0, 1]), trained_on=(np.array([300, 400]), np.array([200])), window_size=100,
        trainings={},
    )
    with pytest.raises(PluginError, match="fold 1: 1 outputs"):
        check_out_of_fold(leak)  # window 250 overlaps training window 200 of fold 1


def test_cross_fit_scores_each_window_with_a_detector_that_never_saw_it(dm, tmp_path):
    settings = TrainerSettings(max_epochs=1, patience=0, accelerator="cpu", progress=False,
                               limit_train_batches=2)
    detectors = {"vgae": (VGAEDetector, {}), "gat": (GATDetector, {})}
    store = MemoryStore()
    spec = CrossFitSpec(folds=2, by="time")
    first = cross_fit(detectors, dm, spec, settings, store=store, out_dir=tmp_path / "run1", seed=0)
    train = dm.splits["train"]
    assert len(first) == len(train) and first.cache_misses == 4 and first.cache_hits == 0
    for output in first.outputs.values():
        np.testing.assert_array_equal(output.window_ids, first.window_start)  # ids: training-block rows
    for k, trained_on in enumerate(first.trained_on):
        scored = first.window_start[first.fold == k]
        assert scored.size and not (_rows(scored) & _rows(trained_on))  # asserted by window id
    # a second run trains nothing and scores nothing: detector cache + prediction store
    second = cross_fit(detectors, dm, spec, settings, store=store, out_dir=tmp_path / "run2", seed=0)
    assert second.cache_misses == 0 and second.cache_hits == 4
    assert all(t["reused"] for t in second.trainings.values())
    for name in detectors:
        np.testing.assert_array_equal(second.outputs[name].score, first.outputs[name].score)
