"""The run's components, built and checked from the config before any data is read.

Every name in the config is looked up, every component is built once from its
config node (detectors with a placeholder schema: their real schema comes from
the data), and the Lightning accelerator / devices / strategy are checked by
building a Trainer. So a typo, an ill-typed or out-of-range parameter, an
unknown preset or ``--accelerator gpu`` on a machine without one stops the run
in seconds with one line -- never after the data is loaded or a detector is
trained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from omegaconf import DictConfig

from fusioncore.contracts import GraphSchema
from fusioncore.data.graphs import EDGE_FEATURES, NODE_FEATURES
from fusioncore.errors import ConfigError, FusionCoreError, PluginError
from fusioncore.pipeline.config import build, component_params
from fusioncore.pipeline.engine import TrainerSettings, lightning_trainer
from fusioncore.registry import Registry

__all__ = ["Components", "DetectorSpec", "check_trainer", "resolve_components", "trainer_settings"]

#: The schema detectors are test-built with before the data gives the real one.
PLACEHOLDER_SCHEMA = GraphSchema(node_features=NODE_FEATURES, edge_features=EDGE_FEATURES, num_ids=2)


@attrs.frozen(eq=False)
class DetectorSpec:
    """One chosen detector: its class, plain parameters and a factory ``schema -> Detector``."""

    name: str
    cls: type
    params: Mapping[str, Any]
    factory: Callable[[GraphSchema], Any]


@attrs.frozen(eq=False)
class Components:
    """What a run builds from its config; fusions are built per seed (``fusion(name, seed)``)."""

    cfg: DictConfig
    registry: Registry
    detectors: Mapping[str, DetectorSpec]
    fusion_names: tuple[str, ...]
    settings: TrainerSettings
    encoder_params: Mapping[str, Any] = attrs.field(factory=dict)
    reward_params: Mapping[str, Any] = attrs.field(factory=dict)
    fusion_params: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    store_params: Mapping[str, Any] = attrs.field(factory=dict)
    alarm: Any = None  #: the alarm stage (fusioncore.evaluation.alarms.AlarmStage)
    adapter: Any = None  #: the capture adapter (fusioncore.adapt.base.Adapter)
    evaluation: Any = None  #: fusioncore.evaluation.EvaluationSettings

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.cfg.seeds) or (int(self.cfg.seed),)

    def encoder(self) -> Any:
        return build(self.cfg, self.registry, "state_encoder", self.cfg.encoder_name)

    def reward(self) -> Any:
        return build(self.cfg, self.registry, "reward", self.cfg.reward)

    def fusion(self, name: str, seed: int, reward: Any | None = None) -> Any:
        return build(self.cfg, self.registry, "fusion", name, reward=reward or self.reward(), seed=seed)

    def store(self) -> Any:
        directory = Path(self.cfg.store_dir) if self.cfg.store_dir else None
        return build(self.cfg, self.registry, "store", self.cfg.store, directory=directory)


def trainer_settings(cfg: DictConfig) -> TrainerSettings:
    t = cfg.trainer
    return TrainerSettings(
        max_epochs=int(t.max_epochs), patience=int(t.patience), min_delta=float(t.min_delta),
        accelerator=str(t.accelerator),
        devices=t.devices, strategy=str(t.strategy), progress=bool(t.progress), num_nodes=int(t.num_nodes),
        limit_train_batches=t.limit_train_batches, windows_per_epoch=int(t.windows_per_epoch),
        val_windows=int(t.val_windows),
    )


def check_trainer(settings: TrainerSettings) -> None:
    """Build (and discard) a Trainer with the run's accelerator, devices and strategy."""
    lightning_trainer(
        f"trainer: accelerator={settings.accelerator!r} devices={settings.devices!r} "
        f"strategy={settings.strategy!r}",
        accelerator=settings.accelerator, devices=settings.devices, strategy=settings.strategy,
        num_nodes=settings.num_nodes, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_epochs=1)


def _checked(what: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except FusionCoreError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a component's own validation that raised something other than ours
        raise ConfigError(f"{what}: {type(exc).__name__}: {exc}") from None


def resolve_components(cfg: DictConfig, registry: Registry) -> Components:
    """Look up, build and check every component the config names (see the module docstring)."""
    settings = trainer_settings(cfg)
    if settings.strategy.startswith("ddp") and str(settings.devices) == "1" and settings.num_nodes == 1:
        raise ConfigError("--strategy ddp needs --devices 2 or more")
    check_trainer(settings)
    if int(cfg.trainer.jobs) < 0:
        raise ConfigError(f"trainer.jobs must be 0 (as many as the cores allow) or a positive number, "
                          f"got {cfg.trainer.jobs}")
    detectors: dict[str, DetectorSpec] = {}
    for name in cfg.detectors:
        cls = registry.get("detector", name)

        def factory(schema: GraphSchema, _name: str = name) -> Any:
            model = build(cfg, registry, "detector", _name, schema=schema)
            if not isinstance(model, _detector_base()):
                raise PluginError(f"detector {_name!r} built a {type(model).__name__}, "
                                  "not a fusioncore.Detector")
            return model

        _checked(f"detector {name!r}", lambda f=factory: f(PLACEHOLDER_SCHEMA))
        detectors[name] = DetectorSpec(name, cls, component_params(cfg, "detector", name), factory)
    from fusioncore.evaluation import EvaluationSettings

    evaluation = _checked("eval", lambda: EvaluationSettings(
        event_gap_s=cfg.eval.event_gap_s, fpr_levels=tuple(cfg.eval.fpr_levels),
        max_false_alarms_per_hour=cfg.eval.max_false_alarms_per_hour))
    alarm = _checked(f"alarm stage {cfg.alarm!r}", lambda: build(cfg, registry, "alarm", cfg.alarm))
    adapter = _checked(f"adapter {cfg.adapt.name!r}", lambda: build(
        cfg, registry, "adapter", cfg.adapt.name, warmup_s=float(cfg.adapt.warmup_s)))
    if getattr(adapter, "normalizes_scores", False) and int(cfg.fusion_set.crossfit.folds) > 0:
        # out-of-fold outputs come from other models than the deployed ones: no capture's
        # reference windows were scored by them, so they cannot be standardised like the rest
        raise ConfigError(f"fusion_set.crossfit.folds={cfg.fusion_set.crossfit.folds} does not work with "
                          f"adapter {cfg.adapt.name!r} (per-capture score standardisation) yet; use "
                          "fusion_set.crossfit.folds=0 or --adapt none")
    comps = Components(
        cfg=cfg, registry=registry, detectors=detectors, fusion_names=tuple(cfg.fusions), settings=settings,
        store_params=component_params(cfg, "store", cfg.store), alarm=alarm, evaluation=evaluation,
        adapter=adapter,
    )
    if cfg.fusions:
        reward = _checked(f"reward {cfg.reward!r}", comps.reward)
        _checked(f"state encoder {cfg.encoder_name!r}", comps.encoder)
        for name in cfg.fusions:
            _checked(f"fusion {name!r}", lambda n=name: comps.fusion(n, int(cfg.seed), reward))
        comps = attrs.evolve(
            comps,
            encoder_params=component_params(cfg, "state_encoder", cfg.encoder_name),
            reward_params=component_params(cfg, "reward", cfg.reward),
            fusion_params={n: component_params(cfg, "fusion", n) for n in cfg.fusions},
        )
    return comps


def _detector_base() -> type:
    from fusioncore.contracts.detector import Detector

    return Detector
