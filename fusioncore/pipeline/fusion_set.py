"""The fusion training set: which windows, scored by which detectors, the fusions learn from.

Three sources, combined as configured (``fusion_set.*``, see docs/fusion.md
for the measurements behind the defaults):

* ``block`` -- the fusion time block of every training file, scored by the
  deployed detectors (which never trained on it). Always used.
* ``injected`` -- altered copies of the block's benign windows
  (:mod:`fusioncore.data.inject`): attacks the supervised detector never
  saw, labelled as such, so a fusion meets the disagreements of an unknown
  attack before the test does. ``fusion_set.inject.share`` windows per
  benign window (0: off).
* ``crossfit`` -- out-of-fold outputs on the detector training block
  (:mod:`fusioncore.pipeline.crossfit`), ``fusion_set.crossfit.folds``
  extra trainings per detector (0: off).

Attack-type hold-out (``split.fusion_attacks``) works with all of them: it
moves whole files into the fusion and validation blocks.

Calibrators are fitted on ``fusion_set.calibrate_on``: ``block`` (natural
windows only: a detector's calibrated score stays its probability of an
attack on real traffic) or ``all``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from fusioncore.contracts import DetectorOutput
from fusioncore.data.datamodule import CANDataModule, SplitWindows
from fusioncore.data.inject import INJECTION_KINDS, InjectedWindows, InjectionSpec, inject_anomalies
from fusioncore.data.windows import window_labels
from fusioncore.errors import ConfigError
from fusioncore.pipeline.crossfit import CrossFitOutputs, CrossFitSpec

__all__ = [
    "INJECTED_SPLIT",
    "SOURCES",
    "FusionSet",
    "FusionSetInputs",
    "FusionSetSpec",
    "add_injected_split",
    "assemble",
    "prepare_fusion_set",
]

INJECTED_SPLIT = "fusion.injected"
SOURCES = ("block", "injected", "crossfit")
_CALIBRATE_ON = ("block", "all")


@attrs.frozen
class FusionSetSpec:
    inject: InjectionSpec = attrs.field(factory=InjectionSpec)
    crossfit: CrossFitSpec = attrs.field(factory=CrossFitSpec)
    calibrate_on: str = "block"

    def __attrs_post_init__(self) -> None:
        if self.calibrate_on not in _CALIBRATE_ON:
            raise ConfigError(
                f"fusion_set.calibrate_on must be one of {_CALIBRATE_ON}, got {self.calibrate_on!r}"
            )

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None, seed: int) -> FusionSetSpec:
        """From the run config's ``fusion_set`` node; the injection draws from the run's seed."""
        node = dict(node or {})
        inject = dict(node.get("inject") or {})
        crossfit = dict(node.get("crossfit") or {})
        try:
            return cls(
                inject=InjectionSpec(share=inject.get("share", 0.0),
                                     kinds=inject.get("kinds", tuple(INJECTION_KINDS)), seed=seed),
                crossfit=CrossFitSpec(folds=crossfit.get("folds", 0), by=crossfit.get("by", "time")),
                calibrate_on=str(node.get("calibrate_on", "block")),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad fusion_set option: {exc}") from None

    def describe(self) -> str:
        parts = ["block"]
        if self.inject.share > 0:
            kinds = ", ".join(self.inject.kinds)
            parts.append(f"injected ({self.inject.share:g} per benign window: {kinds})")
        if self.crossfit.enabled:
            parts.append(f"cross-fitted ({self.crossfit.folds} folds by {self.crossfit.by})")
        return " + ".join(parts)


def add_injected_split(dm: CANDataModule, spec: InjectionSpec, source: str) -> InjectedWindows | None:
    """Inject into the benign windows of split ``source``; register the result as ``fusion.injected``."""
    if spec.share <= 0:
        return None
    src = dm.splits[source]
    size = dm.window.size
    benign = src.starts[src.labels == 0]
    in_block = np.zeros(len(src.frames), bool)
    if len(src.starts):
        in_block[(src.starts[:, None] + np.arange(size)).ravel()] = True
    injected = inject_anomalies(src.frames, benign, size, spec, in_block=in_block)
    if len(injected) == 0:
        return None
    labels, types = window_labels(injected.frames, injected.starts, size)
    # the source's captures and their profiles (fusioncore.adapt): injected windows are compared
    # with the same vehicle references as the windows they were made from
    dm.add_split(SplitWindows(INJECTED_SPLIT, injected.frames, injected.starts, labels, types,
                              src.file_hashes, tag=f"{spec.describe()} from={source}", table=src.table))
    return injected


@attrs.frozen(eq=False)
class FusionSet:
    """Detector outputs and labels of every window the fusions are fitted on, by source."""

    outputs: dict[str, DetectorOutput]
    labels: np.ndarray
    attack_types: np.ndarray
    source: np.ndarray  #: index into SOURCES per row

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, sources: Sequence[str]) -> FusionSet:
        mask = np.isin(self.source, [SOURCES.index(s) for s in sources])
        return FusionSet(
            outputs={n: _take(o, mask) for n, o in self.outputs.items()},
            labels=self.labels[mask], attack_types=self.attack_types[mask], source=self.source[mask],
        )

    def summary(self) -> dict[str, Any]:
        rows = {}
        for k, name in enumerate(SOURCES):
            mask = self.source == k
            if mask.any():
                rows[name] = {"windows": int(mask.sum()), "attack_windows": int(self.labels[mask].sum())}
        return rows


def _take(output: DetectorOutput, mask: np.ndarray) -> DetectorOutput:
    return DetectorOutput(output.window_ids[mask], output.score[mask], output.features[mask],
                          output.feature_names)


def assemble(
    outputs: Mapping[str, Mapping[str, DetectorOutput]],
    dm: CANDataModule,
    block: str,
    detectors: Sequence[str],
    crossfit: CrossFitOutputs | None = None,
) -> FusionSet:
    """The fusion set from the block (+ injected windows, if scored) (+ cross-fitted outputs)."""
    parts: list[tuple[int, dict[str, DetectorOutput], np.ndarray, np.ndarray]] = []
    for split, source in ((block, "block"), (INJECTED_SPLIT, "injected")):
        if split in outputs:
            s = dm.splits[split]
            keep = s.scored  # never a capture's reference window (fusioncore.adapt)
            parts.append((SOURCES.index(source), {n: _rows(outputs[split][n], keep) for n in detectors},
                          s.labels[keep], s.attack_types[keep]))
    if crossfit is not None:
        parts.append((SOURCES.index("crossfit"), crossfit.outputs, crossfit.labels, crossfit.attack_types))
    return FusionSet(
        outputs={n: DetectorOutput.concat([p[1][n] for p in parts]) for n in detectors},
        labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
        attack_types=np.concatenate([p[3] for p in parts]),
        source=np.concatenate([np.full(len(p[2]), p[0]) for p in parts]),
    )


def _rows(output: DetectorOutput, keep: np.ndarray) -> DetectorOutput:
    return DetectorOutput(window_ids=output.window_ids[keep], score=output.score[keep],
                          features=output.features[keep], feature_names=output.feature_names)


@attrs.frozen(eq=False)
class FusionSetInputs:
    """What the ``fusion_set`` stage prepared: the recipe, injected windows, cross-fitted outputs."""

    spec: FusionSetSpec
    injected: InjectedWindows | None = None
    crossfit: CrossFitOutputs | None = None

    def summary(self) -> dict[str, Any]:
        return {"recipe": self.spec.describe()}

    def report(self, fit_set: FusionSet | None) -> dict[str, Any]:
        """The run report's ``fusion_set`` entry."""
        out: dict[str, Any] = {"recipe": self.spec.describe(), "calibrated_on": self.spec.calibrate_on}
        if fit_set is not None:
            out["windows"] = fit_set.summary()
        if self.injected is not None:
            out["injected_kinds"] = {k: int((self.injected.kind == i).sum())
                                     for i, k in enumerate(self.injected.kinds)}
        if self.crossfit is not None:
            out["crossfit_training"] = self.crossfit.trainings
        return out


def prepare_fusion_set(ctx, dm: CANDataModule, seed: int, block: str = "fusion") -> FusionSetInputs:
    """The ``fusion_set`` stage: inject into the block's benign windows, cross-fit if asked.

    Runs after the deployed detectors are trained and before the splits are
    scored, so the injected split is scored with the others (and through the
    prediction store); a run without fusions prepares nothing.
    """
    from omegaconf import OmegaConf

    from fusioncore.pipeline.crossfit import cross_fit

    node = ctx.cfg.get("fusion_set")
    plain = None if node is None else OmegaConf.to_container(node, resolve=True)
    spec = FusionSetSpec.from_config(plain, seed)
    if not ctx.components.fusion_names:
        return FusionSetInputs(spec)
    injected = add_injected_split(dm, spec.inject, block)
    crossfit = None
    if spec.crossfit.enabled:
        store = ctx.components.store()
        try:
            crossfit = cross_fit(
                ctx.components.detectors, dm, spec.crossfit, ctx.components.settings, store=store,
                out_dir=ctx.folder, seed=seed,
                timer=lambda stage, s: ctx.seconds.__setitem__(stage, ctx.seconds.get(stage, 0.0) + s),
            )
        finally:
            store.close()
    return FusionSetInputs(spec, injected, crossfit)
