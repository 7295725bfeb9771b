"""``RunBundle``: everything a trained run leaves for reuse, written and read in one place.

``fusioncore run`` saves a bundle into its run folder; ``detect`` (and anything
else that scores with a trained run) loads it back and asks it for a
:class:`~fusioncore.scoring.ScoringSystem`. Nothing else reads or writes these
files. Layout, all pickle-free::

    <run>/model/bundle.json        format version, component names and parameters,
                                   calibrators, thresholds, default method, sections
    <run>/model/graph_builder.npz  window spec, ID vocabulary, feature normaliser
    <run>/model/encoder.npz        the fitted state encoder (runs with fusions)
    <run>/model/fusions.pt         fitted fusion states (torch, weights_only loadable)
    <run>/detectors/<name>.pt      detector checkpoints (state dict + JSON config)

``sections`` holds JSON-able state of later pipeline stages (an adapter's
vehicle profile, alarm settings), each under its own key. A folder written by
another bundle format, or not by ``fusioncore run`` at all, is refused with one
line naming the version it has and the one this fusioncore reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from fusioncore import __version__
from fusioncore.calibration import PlattScaler
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.errors import ConfigError
from fusioncore.pipeline.folder import MARKER

if TYPE_CHECKING:
    from fusioncore.contracts import Detector, FusionStrategy, StateEncoder
    from fusioncore.plugins import Plugins
    from fusioncore.scoring import ScoringSystem

__all__ = ["BUNDLE_FORMAT", "ComponentSpec", "RunBundle", "loadable_state"]

#: Bumped whenever a saved piece changes meaning (4: the GAT's score is its logit margin and
#: calibrators have a non-saturating tail; 3: one bundle.json; 2: model.json + log-scale calibrators).
BUNDLE_FORMAT = 4


@attrs.frozen
class ComponentSpec:
    """A registered component by name, with the parameters it was built with."""

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(eq=False)
class RunBundle:
    """A trained run's reusable objects (see the module docstring for the files)."""

    builder: WindowGraphBuilder
    detectors: Mapping[str, Detector]
    detector_params: Mapping[str, Mapping[str, Any]]
    calibrators: Mapping[str, PlattScaler]
    thresholds: Mapping[str, float]
    default_method: str
    seed: int = 0
    encoder: StateEncoder | None = None
    encoder_spec: ComponentSpec | None = None
    reward_spec: ComponentSpec | None = None
    fusions: Mapping[str, FusionStrategy] = attrs.field(factory=dict)
    fusion_params: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    sections: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.thresholds)

    # --------------------------------------------------------------- save
    def save(self, run_dir: Path) -> None:
        """Write the bundle into ``run_dir`` (a run's staging folder)."""
        from fusioncore.pipeline.detectors import save_detector

        run_dir = Path(run_dir)
        model_dir = run_dir / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez(model_dir / "graph_builder.npz", **self.builder.to_arrays(), allow_pickle=False)
        checkpoints = {}
        for name, model in self.detectors.items():
            path = run_dir / "detectors" / f"{name}.pt"
            save_detector(path, model, name, self.detector_params[name], self.builder.schema)
            checkpoints[name] = str(path.relative_to(run_dir))
        if self.encoder is not None:
            np.savez(model_dir / "encoder.npz", **self.encoder.state_dict(), allow_pickle=False)
        if self.fusions:
            import torch

            torch.save({n: loadable_state(f.state_dict()) for n, f in self.fusions.items()},
                       model_dir / "fusions.pt")
        meta = {
            "format": BUNDLE_FORMAT,
            "fusioncore": __version__,
            "detectors": {n: {"checkpoint": checkpoints[n], "params": dict(self.detector_params[n])}
                          for n in self.detectors},
            "calibrators": {n: attrs.asdict(c) for n, c in self.calibrators.items()},
            "thresholds": {m: float(t) for m, t in self.thresholds.items()},
            "default_method": self.default_method,
            "seed": int(self.seed),
            "encoder": None if self.encoder_spec is None else attrs.asdict(self.encoder_spec),
            "reward": None if self.reward_spec is None else attrs.asdict(self.reward_spec),
            "fusions": {n: dict(p) for n, p in self.fusion_params.items()},
            "sections": dict(self.sections),
        }
        (model_dir / "bundle.json").write_text(json.dumps(meta, indent=2, default=_json_default))

    # --------------------------------------------------------------- load
    @classmethod
    def read_meta(cls, run_dir: Path) -> dict[str, Any]:
        """``bundle.json`` of a complete run, or a one-line :class:`ConfigError` saying why not."""
        run_dir = Path(run_dir)
        meta_path = run_dir / "model" / "bundle.json"
        if not meta_path.is_file():
            old = run_dir / "model" / "model.json"
            if old.is_file():
                has = json.loads(old.read_text()).get("format", 1)
                raise ConfigError(f"{run_dir} was written with run bundle format {has}; this fusioncore "
                                  f"reads format {BUNDLE_FORMAT}: re-run `fusioncore run` to rebuild it")
            raise ConfigError(f"{run_dir} is not a fusioncore run folder (no model/bundle.json)")
        if not (run_dir / MARKER).is_file():
            raise ConfigError(f"{run_dir} holds an unfinished run (no {MARKER}): the run that wrote it was "
                              "interrupted; re-run it (or continue it with --resume)")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{meta_path} is unreadable: {exc}") from None
        if meta.get("format") != BUNDLE_FORMAT:
            raise ConfigError(f"{run_dir} was written with run bundle format {meta.get('format')}; this "
                              f"fusioncore reads format {BUNDLE_FORMAT}: re-run `fusioncore run` to rebuild "
                              "it")
        return meta

    @classmethod
    def load(cls, run_dir: Path, *, plugins: Plugins | None = None) -> RunBundle:
        """Rebuild every saved component of the run in ``run_dir`` (its checkpoints load weights-only)."""
        from fusioncore.pipeline.detectors import load_detector
        from fusioncore.plugins import get_plugins

        run_dir = Path(run_dir)
        meta = cls.read_meta(run_dir)
        reg = (plugins or get_plugins()).registry
        model_dir = run_dir / "model"
        with np.load(model_dir / "graph_builder.npz", allow_pickle=False) as z:
            builder = WindowGraphBuilder.from_arrays({k: z[k] for k in z.files})
        detectors = {}
        for name, spec in meta["detectors"].items():
            path = run_dir / spec["checkpoint"]
            if not path.is_file():
                raise ConfigError(f"detector checkpoint for {name!r} not found at {path}")
            detectors[name], _, _ = load_detector(path, reg.get("detector", name))
        encoder = fusions = None
        enc = _spec(meta.get("encoder"))
        rew = _spec(meta.get("reward"))
        fusions = {}
        if meta["fusions"]:
            from fusioncore.pipeline.config import build_component

            assert enc is not None and rew is not None
            encoder = build_component(reg.get("state_encoder", enc.name), enc.params)
            with np.load(model_dir / "encoder.npz", allow_pickle=False) as z:
                encoder.load_state_dict({k: z[k] for k in z.files})
            reward = build_component(reg.get("reward", rew.name), rew.params)
            import torch

            states = torch.load(model_dir / "fusions.pt", map_location="cpu", weights_only=True)
            for name, params in meta["fusions"].items():
                fusion = build_component(reg.get("fusion", name), params, reward=reward,
                                         seed=int(meta.get("seed", 0)))
                fusion.load_state_dict(states[name])
                fusions[name] = fusion
        return cls(
            builder=builder, detectors=detectors,
            detector_params={n: s["params"] for n, s in meta["detectors"].items()},
            calibrators={n: PlattScaler(**c) for n, c in meta["calibrators"].items()},
            thresholds=meta["thresholds"], default_method=meta["default_method"], seed=int(meta["seed"]),
            encoder=encoder, encoder_spec=enc, reward_spec=rew, fusions=fusions,
            fusion_params=meta["fusions"], sections=meta.get("sections", {}),
        )

    def scoring_system(self, method: str | None = None, *, batch_size: int = 256, adapt: str | None = None,
                       warmup_s: float | None = None, plugins: Plugins | None = None) -> ScoringSystem:
        """What scores windows with this run: ``method`` (a fusion or a detector) decides.

        The run's capture adapter (section ``adapter``) comes along; ``adapt`` must name it if
        given, ``warmup_s`` changes its warm-up (see :func:`fusioncore.adapt.capture.load_adaptation`).
        """
        from fusioncore.adapt.capture import load_adaptation
        from fusioncore.plugins import get_plugins
        from fusioncore.scoring import ScoringSystem

        method = method or self.default_method
        if method not in self.thresholds:
            raise ConfigError(f"method {method!r} is not in this run; available: "
                              f"{', '.join(self.thresholds)}")
        fusion = self.fusions.get(method)
        adaptation = load_adaptation(self.sections.get("adapter"), (plugins or get_plugins()).registry,
                                     adapt=adapt, warmup_s=warmup_s)
        return ScoringSystem(self.builder, self.detectors, self.calibrators,
                             self.encoder if fusion is not None else None, fusion, method,
                             float(self.thresholds[method]), batch_size=batch_size, adaptation=adaptation)


def _spec(value: Mapping[str, Any] | None) -> ComponentSpec | None:
    return None if value is None else ComponentSpec(value["name"], dict(value.get("params", {})))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def loadable_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A fusion state with numpy values as tensors / lists, so ``torch.load(weights_only=True)`` reads it."""
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.dtype.kind in "USO" else torch.from_numpy(np.array(value))
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
