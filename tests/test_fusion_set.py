"""The fusion training set on a toy: the supervised detector is blind to an attack the other one sees.

Frames come from the synthetic vehicle simulator; the two detectors are
small numpy functions of the window graphs, so the test runs in seconds and
isolates what is under test -- which windows the fusion learns from:

* ``known`` (the supervised stand-in) scores the share of frames with IDs
  outside the vocabulary: it sees flooding, and is blind to an attack that
  corrupts the payload of a known ID;
* ``novelty`` (the unsupervised stand-in) scores how far the window's
  per-ID payload and timing statistics are from benign: it sees both, with
  benign noise of its own.

Training captures hold flooding only (as hcrl_sa's hold flooding and
fuzzing); the test capture adds the unknown attack (every byte of one fast
ID random, as in hcrl_sa's malfunction files), which the injection never
produces verbatim.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fusioncore_dqn import DetectorFeaturesEncoder, DQNFusion

from fusioncore.calibration import PlattScaler
from fusioncore.contracts import DetectorOutput
from fusioncore.data.frames import Frames, attack_type_code
from fusioncore.data.graph_features import NODE_FEATURES
from fusioncore.data.graphs import FeatureNormalizer, WindowGraphBuilder
from fusioncore.data.inject import InjectionSpec, inject_anomalies
from fusioncore.data.synthetic.capture import simulate_capture
from fusioncore.data.synthetic.vehicles import build_fleet
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, window_labels, window_starts
from fusioncore.evaluation import best_mcc_threshold, binary_metrics
from fusioncore.scoring import fusion_data

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
SPEC = WindowSpec(100, 100)
_UNKNOWN = NODE_FEATURES.index("unknown_id")
_COUNT = NODE_FEATURES.index("count_share")
_PAYLOAD = [i for i, n in enumerate(NODE_FEATURES) if n.startswith("byte") or n == "payload_change_rate"]
_TIMING = [NODE_FEATURES.index("iat_vs_period")]


def _capture(vehicle, attack: str, seconds: float, seed: int, name: str) -> Frames:
    rng = np.random.default_rng(seed)
    return simulate_capture(vehicle, attack, rng=rng, duration=seconds, start_us=1_700_000_000_000_000 + seed
                            * 10**9, source=name).frames


def _corrupt_fast_id(frames: Frames, seed: int) -> Frames:
    """The unknown attack: every byte of one frequent ID random over a few stretches of the capture."""
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(frames.can_id, return_counts=True)
    target = ids[np.argsort(-counts)[2]]
    t = frames.timestamp - frames.timestamp[0]
    span = t[-1]
    inside = np.zeros(len(frames), bool)
    for start in rng.uniform(0.1, 0.8, 3) * span:
        inside |= (t >= start) & (t < start + 0.05 * span)
    hit = inside & (frames.can_id == target)
    data = frames.data.copy()
    data[hit] = rng.integers(0, 256, (int(hit.sum()), 8), dtype=np.uint8)
    label, kind = frames.label.copy(), frames.attack_type.copy()
    label[hit], kind[hit] = 1, attack_type_code("malfunction")
    return Frames(**{**frames._columns(), "data": data, "label": label, "attack_type": kind},
                  sources=frames.sources)


class _ToyDetectors:
    def __init__(self, builder: WindowGraphBuilder) -> None:
        self.builder = builder

    def outputs(self, frames: Frames, starts: np.ndarray) -> dict[str, DetectorOutput]:
        g = self.builder.features(frames, starts)
        x = self.builder.normalizer.normalize_nodes(g.x)
        window = g.node_window
        n = len(starts)
        unknown = np.bincount(window, weights=g.x[:, _UNKNOWN] * g.x[:, _COUNT], minlength=n)
        # per window: the most unusual known node's payload / timing deviation from benign
        known = g.x[:, _UNKNOWN] < 0.5
        dev = np.where(known, np.abs(x[:, _PAYLOAD]).mean(axis=1) + np.abs(x[:, _TIMING]).max(axis=1), 0.0)
        novelty = np.zeros(n)
        np.maximum.at(novelty, window, dev)
        novelty = novelty + 5.0 * unknown
        ids = np.arange(n)
        return {
            "known": DetectorOutput(ids, unknown, np.stack([unknown], 1), ("unknown_share",)),
            "novelty": DetectorOutput(ids, novelty, np.stack([novelty, unknown], 1),
                                      ("deviation", "unknown_share")),
        }


@pytest.fixture(scope="module")
def toy():
    sedan = next(v for v in build_fleet(0) if v.name == "sedan")
    train = _capture(sedan, "benign", 60.0, 1, "train.csv")
    block = Frames.concat([_capture(sedan, "benign", 30.0, 2, "block-benign.csv"),
                           _capture(sedan, "flooding", 20.0, 3, "block-flood.csv")])
    val = Frames.concat([_capture(sedan, "benign", 20.0, 4, "val-benign.csv"),
                         _capture(sedan, "flooding", 20.0, 5, "val-flood.csv")])
    test = Frames.concat([_capture(sedan, "flooding", 20.0, 6, "test-flood.csv"),
                          _corrupt_fast_id(_capture(sedan, "benign", 40.0, 7, "test-unknown.csv"), 8)])
    builder = WindowGraphBuilder(IdVocabulary.fit(train), SPEC)
    builder = builder.with_normalizer(FeatureNormalizer.fit(builder, train, window_starts(train, SPEC)))
    detectors = _ToyDetectors(builder)

    def split(frames: Frames, starts: np.ndarray | None = None):
        starts = window_starts(frames, SPEC) if starts is None else starts
        labels, kinds = window_labels(frames, starts, SPEC.size)
        return detectors.outputs(frames, starts), labels.astype(np.int64), kinds

    block_starts = window_starts(block, SPEC)
    block_labels, _ = window_labels(block, block_starts, SPEC.size)
    injected = inject_anomalies(block, block_starts[block_labels == 0], SPEC.size,
                                InjectionSpec(share=0.5, seed=0))
    return {"block": split(block), "injected": split(injected.frames, injected.starts),
            "val": split(val), "test": split(test)}


def _fit_and_score(toy, sources: tuple[str, ...]) -> dict[str, float]:
    names = ("known", "novelty")
    fit_outputs = {n: DetectorOutput.concat([toy[s][0][n] for s in sources]) for n in names}
    fit_labels = np.concatenate([toy[s][1] for s in sources])
    block_outputs, block_labels, _ = toy["block"]
    calibrators = {n: PlattScaler.fit(block_outputs[n].score, block_labels) for n in names}
    encoder = DetectorFeaturesEncoder().fit(fit_outputs)
    data = {s: fusion_data(toy[s][0], names, calibrators, encoder, toy[s][1]) for s in ("val", "test")}
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        dqn = DQNFusion(seed=0).fit(fusion_data(fit_outputs, names, calibrators, encoder, fit_labels),
                                    data["val"])
    scores = {n: (toy["val"][0][n].score, toy["test"][0][n].score) for n in names}  # raw, as the core
    scores["dqn"] = (dqn.fuse(data["val"]), dqn.fuse(data["test"]))
    val_labels, test_labels = toy["val"][1], toy["test"][1]
    return {m: binary_metrics(test_labels, t, best_mcc_threshold(val_labels, v))["mcc"]
            for m, (v, t) in scores.items()}


def test_the_toy_has_the_blind_spot(toy):
    outputs, labels, kinds = toy["test"]
    unknown = kinds == attack_type_code("malfunction")
    assert unknown.sum() > 20 and (kinds == attack_type_code("flooding")).sum() > 10
    assert outputs["known"].score[unknown].max() == 0.0  # the supervised stand-in never sees it
    benign = labels == 0
    assert np.median(outputs["novelty"].score[unknown]) > np.quantile(outputs["novelty"].score[benign], 0.99)


def test_the_default_fusion_set_makes_the_dqn_beat_both_detectors(toy):
    with_injection = _fit_and_score(toy, ("block", "injected"))
    block_only = _fit_and_score(toy, ("block",))
    print(f"test MCC with injection {with_injection}, fusion block only {block_only}")
    best_single = max(with_injection["known"], with_injection["novelty"])
    assert with_injection["dqn"] > best_single + 0.05
    # Not asserted: that the block alone does worse. On this toy a DQN fitted on the block
    # alone happens to extrapolate towards the novelty detector where the known one is
    # silent (it never saw such a window), and scores about the same; on hcrl_sa the same
    # extrapolation does not happen (test_03 MCC 0.70 from the block, 0.995 with injection).
