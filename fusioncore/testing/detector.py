"""The detector contract: build, train with the core's Trainer, predict, fingerprint, checkpoint.

Use it as a base class (pytest collects the inherited tests)::

    from fusioncore.testing import DetectorContract

    class TestMyDetector(DetectorContract):
        detector_cls = MyDetector
        params = {"hidden": 16}

or call :func:`check_detector` from any test. The detector is trained once per
class on :func:`~fusioncore.testing.data.tiny_dataset` with the Trainer the
core builds (:func:`fusioncore.pipeline.engine.make_trainer`), on benign windows only
when ``supervised = False``, then calibrated on benign validation windows --
the same steps ``fusioncore run`` takes -- so a detector that passes here
trains, predicts, caches and reloads in a real run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from fusioncore.contracts import Detector, DetectorOutput
from fusioncore.errors import FusionCoreError
from fusioncore.evaluation import auroc
from fusioncore.pipeline.detectors import build_detector, load_detector, run_detector, save_detector
from fusioncore.pipeline.engine import TrainerSettings, make_trainer
from fusioncore.testing.checks import (
    ContractViolation,
    configured,
    describe,
    isolated_environment,
    max_abs_diff,
    one_torch_thread,
    require,
)
from fusioncore.testing.data import TinyDataset, tiny_dataset

__all__ = [
    "DetectorContract",
    "DetectorRun",
    "check_checkpoint_round_trip",
    "check_detector",
    "check_detector_class",
    "check_fingerprint",
    "check_orientation",
    "check_predict_output",
    "check_reproducible",
    "check_trainer_predict",
    "train_for_contract",
]


@attrs.frozen(eq=False)
class DetectorRun:
    """A detector trained and calibrated on the tiny dataset the way the core does it."""

    detector_cls: type
    params: Mapping[str, Any]
    model: Detector
    data: TinyDataset
    seed: int
    epochs: int
    val_loss: float | None


def _settings(epochs: int) -> TrainerSettings:
    # patience > 0 puts EarlyStopping on val_loss in, as in a default run
    return TrainerSettings(max_epochs=epochs, patience=max(epochs, 1), accelerator="cpu", progress=False)


def check_detector_class(cls: type, params: Mapping[str, Any], data: TinyDataset) -> Detector:
    """Build ``cls(schema, **params)`` as the core does and check its declared metadata."""
    name = getattr(cls, "name", None)
    require(isinstance(name, str) and name, f"{cls.__name__}.name must be a non-empty string, got {name!r}")
    require(
        isinstance(getattr(cls, "supervised", None), bool),
        f"{cls.__name__}.supervised must be True or False, got {getattr(cls, 'supervised', None)!r}",
    )
    names = getattr(cls, "feature_names", None)
    require(
        isinstance(names, tuple) and all(isinstance(n, str) and n for n in names),
        f"{cls.__name__}.feature_names must be a tuple of non-empty strings, got {names!r}",
    )
    require(len(set(names)) == len(names), f"{cls.__name__}.feature_names has duplicates: {names}")
    try:
        model = build_detector(cls, name, data.schema, params)
    except FusionCoreError as exc:
        raise ContractViolation(f"building {cls.__name__}(schema, **{dict(params)}) failed: {exc}") from exc
    try:
        json.dumps(model.config(), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ContractViolation(
            f"config() must be JSON-able (it defines the fingerprint and goes into checkpoints): {exc}"
        ) from exc
    return model


def train_for_contract(
    cls: type,
    params: Mapping[str, Any] | None = None,
    *,
    data: TinyDataset | None = None,
    epochs: int = 2,
    seed: int = 0,
) -> DetectorRun:
    """Train ``cls`` on the tiny dataset with the core's Trainer, then calibrate it."""
    with one_torch_thread():
        return _train(cls, dict(params or {}), data or tiny_dataset(), epochs, seed)


def _train(cls: type, params: dict[str, Any], data: TinyDataset, epochs: int, seed: int) -> DetectorRun:
    pl.seed_everything(seed, verbose=False)  # before building: initial weights depend on the seed
    model = check_detector_class(cls, params, data)
    benign_only = not cls.supervised
    train = data.loader("train", benign_only=benign_only, shuffle=True, seed=seed)
    val = data.loader("val", benign_only=benign_only)
    trainer = make_trainer(_settings(epochs), None, name=cls.name, has_validation=True)
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    except Exception as exc:
        if "val_loss" in str(exc):
            raise ContractViolation(
                "validation_step must log 'val_loss' (self.log('val_loss', loss)): the core's early "
                f"stopping and checkpointing monitor it. Lightning said: {str(exc).splitlines()[0]}"
            ) from exc
        raise ContractViolation(
            f"training with the core's Trainer failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        # Lightning switched deterministic algorithms on for the whole process; put them back
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
    val_loss = trainer.callback_metrics.get("val_loss")
    model.eval()
    try:
        model.calibrate(data.loader("val", benign_only=True))
    except Exception as exc:
        raise ContractViolation(
            f"calibrate(benign validation batches) raised {type(exc).__name__}: {exc}"
        ) from exc
    return DetectorRun(cls, params, model, data, seed, epochs, None if val_loss is None else float(val_loss))


def check_predict_output(model: Detector, batch) -> DetectorOutput:
    """``predict_step(batch)`` returns one finite score and feature row per window, in batch order."""
    try:
        with torch.no_grad():
            out = model.predict_step(batch, 0)
    except Exception as exc:
        raise ContractViolation(f"predict_step raised {type(exc).__name__}: {exc}") from exc
    require(
        isinstance(out, DetectorOutput),
        f"predict_step must return a fusioncore.DetectorOutput, got {describe(out)}",
    )
    n = int(batch.num_graphs)
    require(
        out.score.shape == (n,),
        f"score has shape {out.score.shape}, expected ({n},): one score per window of the batch",
    )
    expected_ids = batch.window_id.detach().cpu().numpy()
    require(
        np.array_equal(out.window_ids, expected_ids),
        f"window_ids must be the batch's window_id in batch order; got {out.window_ids[:5]}..., "
        f"expected {expected_ids[:5]}...",
    )
    require(
        out.feature_names == tuple(model.feature_names),
        f"output feature_names {out.feature_names} differ from {type(model).__name__}.feature_names "
        f"{tuple(model.feature_names)}",
    )
    for what, values in (("score", out.score), ("features", out.features)):
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ContractViolation(
                f"{int(bad.sum())} {what} value(s) are not finite, first in window row {row}"
            )
    return out


def check_trainer_predict(run: DetectorRun) -> DetectorOutput:
    """The core's ``Trainer.predict`` path gives every test window once, equal to direct ``predict_step``."""
    loader = run.data.loader("test")
    direct = DetectorOutput.concat([check_predict_output(run.model, b) for b in loader])
    via_trainer = run_detector(run.model, loader, _settings(1))
    n = len(run.data.splits["test"])
    require(len(via_trainer) == n, f"Trainer.predict gave {len(via_trainer)} rows for {n} windows")
    diff = max_abs_diff(direct.score, via_trainer.score)
    require(
        diff <= 1e-5,
        f"predict_step is not deterministic in eval mode: scores differ by up to {diff:.3g} "
        "between two passes over the same windows (dropout or sampling left on at predict time?)",
    )
    return via_trainer


def check_orientation(run: DetectorRun, min_auroc: float = 0.6) -> float:
    """Scores are "higher = more anomalous": attacks of the test split outrank benign windows."""
    out = run_detector(run.model, run.data.loader("test"), _settings(1))
    value = auroc(run.data.labels("test"), out.score)
    require(value is not None, "the tiny test split has one class only; cannot judge score orientation")
    require(
        value >= min_auroc,
        f"score orientation: AUROC on the tiny test split is {value:.3f} < {min_auroc}; scores must be "
        "higher for attack windows ('higher = more anomalous'). Negate a score that is higher for "
        "benign windows; if the detector just needs more training, raise train_epochs.",
    )
    return float(value)


def check_fingerprint(run: DetectorRun) -> None:
    """``fingerprint()`` is stable, equal for equal weights, and changes when any weight changes."""
    model = run.model
    first = model.fingerprint()
    require(first == model.fingerprint(), "fingerprint() differs between two calls on the same model")
    state = model.state_dict()
    twin = build_detector(run.detector_cls, run.detector_cls.name, run.data.schema, run.params)
    twin.load_state_dict(state)
    require(
        twin.fingerprint() == first,
        "two detectors with the same class, params and state_dict have different fingerprints; "
        "fingerprint() must depend only on them (override config() if hparams hold run-specific values)",
    )
    for key, tensor in state.items():
        if tensor.numel() == 0:
            continue
        changed = dict(state)
        changed[key] = tensor + 1 if tensor.dtype != torch.bool else ~tensor
        twin.load_state_dict(changed)
        require(
            twin.fingerprint() != first,
            f"fingerprint() did not change when {key!r} changed: the prediction store would serve "
            "outputs of the old weights",
        )
        return  # one changed tensor proves the weights are hashed; the base class hashes them all


def check_checkpoint_round_trip(run: DetectorRun, directory: Path) -> None:
    """Saved with the core's checkpoint format and loaded with ``weights_only=True``: same outputs."""
    path = Path(directory) / f"{run.detector_cls.name}.pt"
    try:
        save_detector(path, run.model, run.detector_cls.name, run.params, run.data.schema)
        loaded, _, _ = load_detector(path, run.detector_cls)
    except Exception as exc:
        raise ContractViolation(f"checkpoint round trip failed: {type(exc).__name__}: {exc}") from exc
    require(
        loaded.fingerprint() == run.model.fingerprint(),
        "the reloaded detector has another fingerprint: some state is not in state_dict() "
        "(register learned statistics as buffers)",
    )
    batch = next(iter(run.data.loader("test")))
    before, after = check_predict_output(run.model, batch), check_predict_output(loaded, batch)
    diff = max(max_abs_diff(before.score, after.score), max_abs_diff(before.features, after.features))
    require(diff <= 1e-6, f"the reloaded detector scores differently: max |diff| = {diff:.3g}")


def check_reproducible(run: DetectorRun) -> None:
    """Training again with the same seed gives the same scores (same seed, same report)."""
    again = train_for_contract(run.detector_cls, run.params, data=run.data, epochs=run.epochs, seed=run.seed)
    batch = next(iter(run.data.loader("test")))
    diff = max_abs_diff(
        check_predict_output(run.model, batch).score, check_predict_output(again.model, batch).score
    )
    require(
        diff <= 1e-5,
        f"training is not reproducible under seed={run.seed}: scores of two runs differ by up "
        f"to {diff:.3g} (draw randomness from torch / the seed Lightning sets, not from unseeded sources)",
    )


def check_detector(
    cls: type,
    params: Mapping[str, Any] | None = None,
    *,
    epochs: int = 2,
    min_auroc: float = 0.6,
    seed: int = 0,
    reproducible: bool = True,
) -> DetectorRun:
    """Every detector check in one call; raises :class:`ContractViolation` at the first failure."""
    with isolated_environment() as tmp, one_torch_thread():
        run = train_for_contract(cls, params, epochs=epochs, seed=seed)
        for batch in run.data.loader("test"):
            check_predict_output(run.model, batch)
        check_predict_output(run.model, next(iter(run.data.loader("test", batch_size=1))))
        check_trainer_predict(run)
        check_orientation(run, min_auroc)
        check_fingerprint(run)
        check_checkpoint_round_trip(run, tmp)
        if reproducible:
            check_reproducible(run)
    return run


class DetectorContract:
    """pytest base class: set ``detector_cls`` (and ``params``); every test below runs against it.

    Class attributes: ``params`` (constructor keywords), ``train_epochs``
    (default 2), ``min_auroc`` (orientation threshold on the tiny test split,
    default 0.6), ``seed``, ``check_reproducibility`` (default True).
    """

    detector_cls: ClassVar[type]
    params: ClassVar[Mapping[str, Any]] = {}
    train_epochs: ClassVar[int] = 2
    min_auroc: ClassVar[float] = 0.6
    seed: ClassVar[int] = 0
    check_reproducibility: ClassVar[bool] = True

    @pytest.fixture(scope="class")
    def detector_run(self) -> DetectorRun:
        cls = configured(self, "detector_cls", "your Detector subclass")
        with isolated_environment():
            return train_for_contract(cls, self.params, epochs=self.train_epochs, seed=self.seed)

    @pytest.fixture(autouse=True)
    def _one_torch_thread(self) -> Iterator[None]:
        with one_torch_thread():
            yield

    def test_builds_from_schema_and_params(self, detector_run: DetectorRun) -> None:
        check_detector_class(type(self).detector_cls, self.params, detector_run.data)

    def test_trains_with_the_core_trainer(self, detector_run: DetectorRun) -> None:
        require(
            detector_run.val_loss is not None and np.isfinite(detector_run.val_loss),
            f"val_loss after training is {detector_run.val_loss}, expected a finite number",
        )

    def test_predict_step_gives_one_row_per_window(self, detector_run: DetectorRun) -> None:
        for batch in detector_run.data.loader("test"):
            check_predict_output(detector_run.model, batch)

    def test_predict_step_on_a_single_window(self, detector_run: DetectorRun) -> None:
        check_predict_output(detector_run.model, next(iter(detector_run.data.loader("test", batch_size=1))))

    def test_trainer_predict_matches_predict_step(self, detector_run: DetectorRun) -> None:
        check_trainer_predict(detector_run)

    def test_score_is_higher_for_attacks(self, detector_run: DetectorRun) -> None:
        check_orientation(detector_run, self.min_auroc)

    def test_fingerprint_tracks_weights(self, detector_run: DetectorRun) -> None:
        check_fingerprint(detector_run)

    def test_checkpoint_round_trip(self, detector_run: DetectorRun, tmp_path: Path) -> None:
        check_checkpoint_round_trip(detector_run, tmp_path)

    def test_training_is_reproducible(self, detector_run: DetectorRun) -> None:
        if not self.check_reproducibility:
            pytest.skip("check_reproducibility = False")
        with isolated_environment():
            check_reproducible(detector_run)
