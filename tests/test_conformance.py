"""fusioncore.testing: every bundled component passes its suite; broken ones fail with clear messages."""

from __future__ import annotations

import importlib.metadata as md
import sqlite3
import textwrap
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from fusioncore_alarms import KOfNAlarms, RawAlarms
from fusioncore_baselines import (
    MaxFusion,
    MeanFusion,
    MixtureOfExpertsFusion,
    SingleDetectorFusion,
    StackingFusion,
    WeightedFusion,
)
from fusioncore_diskcache import DiskCacheStore, MemoryStore
from fusioncore_dqn import DetectorFeaturesEncoder, DQNFusion, ScoresOnlyEncoder, accuracy, asymmetric, cost
from fusioncore_gat import GATDetector
from fusioncore_shortcuts import IdSetDetector, TimingDetector
from fusioncore_vgae import VGAEDetector

from fusioncore import DetectorOutput, FusionStrategy, StateEncoder
from fusioncore.evaluation.alarms import AlarmStage
from fusioncore.plugins import load_plugins
from fusioncore.testing import (
    AlarmContract,
    ContractViolation,
    DetectorContract,
    FusionContract,
    RewardContract,
    StateEncoderContract,
    StoreContract,
    check_alarm_stage,
    check_fusion,
    check_reward,
    check_state_encoder,
    check_store,
    make_fusion_data,
    tiny_dataset,
    train_for_contract,
)
from fusioncore.testing.checks import configured
from fusioncore.testing.detector import (
    check_checkpoint_round_trip,
    check_orientation,
    check_predict_output,
)

pytest_plugins = ["pytester"]


# ------------------------------------------------------------ bundled components
class TestGATContract(DetectorContract):
    detector_cls = GATDetector


class TestVGAEContract(DetectorContract):
    detector_cls = VGAEDetector


class TestIdSetContract(DetectorContract):
    detector_cls = IdSetDetector


class TestTimingContract(DetectorContract):
    detector_cls = TimingDetector


class TestTimingMeanContract(DetectorContract):
    detector_cls = TimingDetector
    params: ClassVar[dict] = {"statistic": "mean"}


class TestMeanContract(FusionContract):
    fusion_cls = MeanFusion


class TestMaxContract(FusionContract):
    fusion_cls = MaxFusion


class TestSingleContract(FusionContract):
    fusion_cls = SingleDetectorFusion
    params: ClassVar[dict] = {"detector": "det0"}


class TestWeightedContract(FusionContract):
    fusion_cls = WeightedFusion


class TestStackingContract(FusionContract):
    fusion_cls = StackingFusion


class TestMixtureOfExpertsContract(FusionContract):
    fusion_cls = MixtureOfExpertsFusion


class TestDQNContract(FusionContract):
    fusion_cls = DQNFusion
    params: ClassVar[dict] = {"epochs": 3, "min_steps": 0}


class TestAsymmetricContract(RewardContract):
    reward_factory = asymmetric


class TestAccuracyContract(RewardContract):
    reward_factory = accuracy


class TestCostContract(RewardContract):
    reward_factory = cost


class TestDetectorFeaturesContract(StateEncoderContract):
    encoder_cls = DetectorFeaturesEncoder


class TestScoresOnlyContract(StateEncoderContract):
    encoder_cls = ScoresOnlyEncoder


class TestRawAlarmsContract(AlarmContract):
    alarm_cls = RawAlarms


class TestKOfNAlarmsContract(AlarmContract):
    alarm_cls = KOfNAlarms


class TestTwoOfSevenAlarmsContract(AlarmContract):
    alarm_cls = KOfNAlarms
    params: ClassVar[dict] = {"k": 2, "n": 7}


class _LooksAhead(AlarmStage):
    """Alarms on a decision one window early: not causal, whatever its memory says."""

    name = "looks-ahead"

    def alarms(self, decisions: np.ndarray) -> np.ndarray:
        return np.concatenate([decisions[1:], decisions[-1:]]) if len(decisions) else decisions


class _ForgetsItsMemory(KOfNAlarms):
    """A 3-of-5 debouncer that claims it only looks at the current window."""

    @property
    def memory(self) -> int:
        return 0


class _WrongScores(RawAlarms):
    def alarm_scores(self, scores: np.ndarray) -> np.ndarray:
        return -scores


@pytest.mark.parametrize(("cls", "needle"), [
    (_LooksAhead, "may not depend on later windows"),
    (_ForgetsItsMemory, "memory=0 must cover every window"),
    (_WrongScores, "alarm_scores\\(\\) disagrees with alarms\\(\\)"),
    (int, "must subclass fusioncore.evaluation.AlarmStage"),
])
def test_alarm_contract_catches_broken_stages(cls, needle):
    with pytest.raises(ContractViolation, match=needle):
        check_alarm_stage(cls)


def flip_sqlite_entry(store: DiskCacheStore, key: str) -> None:
    """Flip a payload byte of ``key`` wherever diskcache keeps it (row or file)."""
    with sqlite3.connect(store.directory / "cache.db") as con:
        ((value, filename),) = con.execute(
            "SELECT value, filename FROM Cache WHERE key = ?", (key,)
        ).fetchall()
        if filename is None:
            broken = bytearray(value)
            broken[-20] ^= 0xFF
            con.execute("UPDATE Cache SET value = ? WHERE key = ?", (bytes(broken), key))
            return
    path = store.directory / filename
    broken = bytearray(path.read_bytes())
    broken[len(broken) // 2] ^= 0xFF
    path.write_bytes(bytes(broken))


def swap_sqlite_entries(store: DiskCacheStore, first: str, second: str) -> None:
    """Exchange two rows' stored values (inline bytes or value file), each still a valid entry."""
    columns = "mode, size, filename, value"
    with sqlite3.connect(store.directory / "cache.db") as con:
        rows = {k: con.execute(f"SELECT {columns} FROM Cache WHERE key = ?", (k,)).fetchone()
                for k in (first, second)}
        for key, other in ((first, second), (second, first)):
            con.execute("UPDATE Cache SET mode = ?, size = ?, filename = ?, value = ? WHERE key = ?",
                        (*rows[other], key))


class TestDiskCacheContract(StoreContract):
    store_factory = DiskCacheStore

    def corrupt_entry(self, store, key):
        flip_sqlite_entry(store, key)

    def swap_entries(self, store, first, second):
        swap_sqlite_entries(store, first, second)


class TestMemoryContract(StoreContract):
    store_factory = MemoryStore
    persistent = False
    concurrent = True

    def corrupt_entry(self, store, key):
        store.blobs[key] = store.blobs[key][:-1] + bytes([store.blobs[key][-1] ^ 0xFF])

    def swap_entries(self, store, first, second):
        store.blobs[first], store.blobs[second] = store.blobs[second], store.blobs[first]


#: contract classes above, by (kind, registered name)
COVERED = {
    ("detector", "gat"),
    ("detector", "vgae"),
    ("detector", "idset"),
    ("detector", "timing"),
    *(("fusion", n) for n in ("mean", "max", "single", "weighted", "stacking", "moe", "dqn")),
    *(("reward", n) for n in ("asymmetric", "accuracy", "cost")),
    ("state_encoder", "detector-features"),
    ("state_encoder", "scores-only"),
    ("store", "diskcache"),
    ("store", "memory"),
}


def test_every_bundled_component_has_a_conformance_class():
    plugins = load_plugins(strict=True)
    bundled = {
        (c.kind, c.name)
        for c in plugins.registry.components()
        if plugins.infos[c.plugin].distribution == "fusioncore"
        and c.kind in ("detector", "fusion", "reward", "state_encoder", "store")
    }
    assert bundled - COVERED == set(), "add a contract class for these to tests/test_conformance.py"


# ------------------------------------------------------------------ broken detectors
class DropsLastWindow(GATDetector):
    """Returns one row too few (a classic off-by-one when slicing a batch)."""

    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        out = super().predict_step(batch, batch_idx)
        return DetectorOutput(
            window_ids=out.window_ids[:-1],
            score=out.score[:-1],
            features=out.features[:-1],
            feature_names=out.feature_names,
        )


class InvertedScore(GATDetector):
    """Score oriented the wrong way round (P(benign) instead of P(attack))."""

    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        out = super().predict_step(batch, batch_idx)
        return DetectorOutput(
            window_ids=out.window_ids,
            score=1.0 - out.score,
            features=out.features,
            feature_names=out.feature_names,
        )


class NoValLoss(GATDetector):
    """Logs its validation loss under another name."""

    def validation_step(self, batch, batch_idx: int):
        loss = self._loss(batch)
        self.log("validation_loss", loss, batch_size=batch.num_graphs)
        return loss


class StatisticOutsideStateDict(GATDetector):
    """Learns a score offset but keeps it in a plain attribute: lost on reload."""

    def calibrate(self, benign_batches) -> None:
        self.offset = 0.25

    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        out = super().predict_step(batch, batch_idx)
        return DetectorOutput(
            window_ids=out.window_ids,
            score=out.score + getattr(self, "offset", 0.0),
            features=out.features,
            feature_names=out.feature_names,
        )


@pytest.fixture(scope="module")
def test_batch():
    return next(iter(tiny_dataset().loader("test")))


def test_a_missing_row_is_reported_with_both_shapes(test_batch):
    model = DropsLastWindow(tiny_dataset().schema).eval()
    n = test_batch.num_graphs
    with pytest.raises(ContractViolation, match=rf"score has shape \({n - 1},\), expected \({n},\)"):
        check_predict_output(model, test_batch)


def test_an_inverted_score_fails_the_orientation_check():
    run = train_for_contract(InvertedScore)
    with pytest.raises(ContractViolation, match=r"score orientation: AUROC .* higher for attack windows"):
        check_orientation(run, 0.6)


def test_a_detector_without_val_loss_fails_training_with_the_reason():
    with pytest.raises(ContractViolation, match="validation_step must log 'val_loss'"):
        train_for_contract(NoValLoss, epochs=1)


def test_state_outside_the_state_dict_fails_the_checkpoint_round_trip(tmp_path):
    run = train_for_contract(StatisticOutsideStateDict, epochs=1)
    with pytest.raises(
        ContractViolation, match="reloaded detector scores differently: max \\|diff\\| = 0.25"
    ):
        check_checkpoint_round_trip(run, tmp_path)


# -------------------------------------------------------------------- broken fusions
class RandomFusion(MeanFusion):
    """Adds unseeded noise: different every fit."""

    def fit(self, train, val):
        self.jitter = np.random.default_rng().uniform(0, 0.5)
        return self

    def fuse(self, data):
        return np.clip(super().fuse(data) * (1 - self.jitter), 0, 1)

    def state_dict(self):
        return {"jitter": self.jitter}

    def load_state_dict(self, state):
        self.jitter = float(state["jitter"])


class DoubledFusion(MeanFusion):
    def fuse(self, data):
        return super().fuse(data) * 2


class LabelPeekingFusion(MeanFusion):
    def fuse(self, data):
        return np.where(data.labels == 1, 1.0, super().fuse(data)).astype(np.float32)


class StatelessFusion(FusionStrategy):
    """Fits a weight but forgets to save it."""

    name = "stateless"

    def __init__(self) -> None:
        self.weight = 0.0

    def fit(self, train, val):
        self.weight = 0.7
        return self

    def fuse(self, data):
        return data.scores[:, 0] * self.weight


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (RandomFusion, r"fuse\(\) is not deterministic under seed=0: max \|diff\| = "),
        (DoubledFusion, r"fused scores must lie in \[0, 1\]; got min .*, max 1\.\d+"),
        (LabelPeekingFusion, r"fuse\(\) reads labels"),
        (StatelessFusion, r"restored from state_dict\(\) fuses differently"),
    ],
    ids=["nondeterministic", "out-of-range", "reads-labels", "state-not-saved"],
)
def test_broken_fusions_fail_with_what_is_wrong(cls, message):
    with pytest.raises(ContractViolation, match=message):
        check_fusion(cls, n_detectors=(2,))


# --------------------------------------------------------- broken rewards / encoders
def scalar_reward():
    return lambda decision, label, fused: (decision.float() == label.float()).float().mean()


def wrong_way_reward():
    return lambda decision, label, fused: torch.where(decision.bool() == label.bool(), -1.0, 1.0)


def batch_normalised_reward():
    def reward(decision, label, fused):
        r = torch.where(decision.bool() == label.bool(), 1.0, -1.0)
        return r - r.mean()

    return reward


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (scalar_reward, r"reward has shape \(\), expected \(64,\): one value per window"),
        (wrong_way_reward, r"a wrong decision earns at least as much as the right one"),
        (batch_normalised_reward, r"changes with the rest of the batch"),
    ],
    ids=["scalar", "pays-for-errors", "batch-dependent"],
)
def test_broken_rewards_fail_with_what_is_wrong(factory, message):
    with pytest.raises(ContractViolation, match=message):
        check_reward(factory)


class BatchStandardisingEncoder(ScoresOnlyEncoder):
    """Standardises with the statistics of whatever batch it is given (not those of fit)."""

    def encode(self, outputs):
        state = super().encode(outputs)
        return ((state - state.mean(0)) / state.std(0)).astype(np.float32)


class ShortStateEncoder(ScoresOnlyEncoder):
    def encode(self, outputs):
        return super().encode(outputs)[:, :1]


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (BatchStandardisingEncoder, r"changes with the other windows encoded alongside it"),
        (ShortStateEncoder, r"state has shape \(120, 1\), expected \(120, 2\)"),
    ],
    ids=["batch-dependent", "wrong-width"],
)
def test_broken_encoders_fail_with_what_is_wrong(cls: type[StateEncoder], message):
    with pytest.raises(ContractViolation, match=message):
        check_state_encoder(cls)


# -------------------------------------------------------------------- broken stores
class Float64Store(MemoryStore):
    """Casts everything to float64 on the way in."""

    def put(self, key, arrays):
        super().put(key, {k: v.astype(np.float64) if v.dtype.kind in "iub" else v for k, v in arrays.items()})


class KeyErrorStore(MemoryStore):
    def get(self, key):
        if key not in self.blobs:
            raise KeyError(key)
        return super().get(key)


class PickleStore(dict):
    """Keeps the objects themselves: would hold anything, including pickled payloads."""

    def __init__(self, directory=None):
        super().__init__()

    def get(self, key):
        return dict.get(self, key)

    def put(self, key, arrays):
        self[key] = dict(arrays)

    def delete(self, key):
        self.pop(key, None)

    def close(self):
        pass


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (Float64Store, r"round trip changed dtype of 'window_ids': int64 -> float64"),
        (KeyErrorStore, r"get\(\) of a missing key raised KeyError: .*; a missing key must return None"),
        (PickleStore, r"put\(\) accepted an object array"),
    ],
    ids=["changes-dtype", "raises-on-missing", "accepts-objects"],
)
def test_broken_stores_fail_with_what_is_wrong(factory, message, tmp_path):
    with pytest.raises(ContractViolation, match=message):
        check_store(factory, tmp_path, persistent=False, concurrent=False)


def test_memory_store_survives_concurrent_use(tmp_path):
    """Concurrent get()s of one key once raised KeyError in MemoryStore._accessed; now locked."""
    for attempt in range(5):  # the race showed up within a few hundred operations
        check_store(MemoryStore, tmp_path / str(attempt), persistent=False)


# ----------------------------------------------------------- the pytest user path
def test_a_broken_component_fails_its_inherited_tests_with_the_message(pytester):
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import numpy as np
            from fusioncore_baselines import MeanFusion
            from fusioncore.testing import FusionContract

            class Doubled(MeanFusion):
                def fuse(self, data):
                    return super().fuse(data) * 2

            class TestDoubled(FusionContract):
                fusion_cls = Doubled
                n_detectors = (2,)
            """
        )
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4, skipped=4)  # m1 needs a second detector count
    result.stdout.fnmatch_lines(["*ContractViolation: fused scores must lie in [[]0, 1[]]; got min*"])


def test_plugin_fixtures_serve_tiny_data_and_isolation(pytester):
    pytester.makepyfile(
        test_fixtures=textwrap.dedent(
            """
            import os

            def test_tiny_data(fusioncore_tiny_data):
                batch = next(iter(fusioncore_tiny_data.loader("train")))
                assert batch.x.shape[1] == len(fusioncore_tiny_data.schema.node_features)

            def test_isolated(fusioncore_isolated):
                assert os.environ["FUSIONCORE_CACHE_DIR"].startswith(str(fusioncore_isolated))

            def test_plugins(fusioncore_plugins):
                assert "gat" in fusioncore_plugins.registry.names("detector")
            """
        )
    )
    # an installed fusioncore loads the plugin itself (pytest11 entry point); a source tree may not
    autoloaded = bool(md.entry_points(group="pytest11", name="fusioncore"))
    load = [] if autoloaded else ["-p", "fusioncore.testing.plugin"]
    result = pytester.runpytest("-p", "no:cacheprovider", *load)
    result.assert_outcomes(passed=3)
    assert any("fusioncore:" in line for line in result.outlines)


def test_tiny_dataset_looks_like_the_core_batches():
    data = tiny_dataset()
    assert data.schema.node_features[-3:] == ("unknown_id", "payload_change_rate", "fd_share")
    for split in ("train", "val", "test"):
        labels = data.labels(split)
        assert 0 < labels.sum() < len(labels), split  # both classes in every split
    batch = next(iter(data.loader("val", benign_only=True, batch_size=8)))
    assert batch.num_graphs == 8 and int(batch.y.sum()) == 0
    fd = make_fusion_data(50, 3)
    assert fd.scores.shape == (50, 3) and fd.scores.min() >= 0 and fd.scores.max() <= 1


def test_contract_classes_without_a_component_say_what_to_set():
    class TestNothing(DetectorContract):
        pass

    with pytest.raises(ContractViolation, match=r"TestNothing must set detector_cls = <your Detector"):
        configured(TestNothing(), "detector_cls", "your Detector subclass")


def test_examples_in_the_package_docstring_are_importable():
    import fusioncore.testing as testing

    for name in testing.__all__:
        assert getattr(testing, name) is not None, name
    assert Path(testing.__file__).parent.joinpath("plugin.py").is_file()
