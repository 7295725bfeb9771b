"""Run configuration: hydra-zen configs generated from the plugin registry.

Every registered detector, fusion, state encoder, reward and store gets a
config node built from its constructor signature (``hydra_zen.builds`` with
the full signature), so any parameter can be overridden from the command line
with a dotted path: ``fusion.dqn.lr=0.002``, ``detector.gat.preset=large``,
``trainer.max_epochs=5``. Component names with ``-`` use ``_`` in paths
(``encoder.detector_features``). Components that take ``**kwargs`` accept
extra keys. Unknown keys and ill-typed values are a :class:`ConfigError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from hydra_zen import builds, make_config
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fusioncore.errors import ConfigError
from fusioncore.registry import Registry

__all__ = ["PRESETS", "build_run_config", "component_params", "config_key"]

#: Named bundles of overrides (``--preset NAME``), applied before the user's own.
PRESETS: dict[str, list[str]] = {
    # seconds-long smoke runs: a few batches per epoch, tiny DQN budget
    "quick": [
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=8",
        "trainer.patience=0",
        "fusion.dqn.epochs=3",
        "batch_size=128",
    ],
    "default": [],
    # longer training for real datasets
    "thorough": ["trainer.max_epochs=40", "trainer.patience=5", "fusion.dqn.epochs=60"],
}

#: kind -> (top-level config group, arguments the core passes itself, never from config)
_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "detector": ("detector", ("schema",)),
    "fusion": ("fusion", ("reward", "seed")),  # the run's seed reaches every fusion
    "state_encoder": ("encoder", ()),
    "reward": ("reward_params", ()),
    "store": ("store_params", ("directory",)),
}


def config_key(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


def _component_config(obj: Any, exclude: tuple[str, ...]):
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return make_config()
    fields = {
        name: p.default
        for name, p in sig.parameters.items()
        if name not in exclude
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is not inspect.Parameter.empty
        and (p.default is None or isinstance(p.default, (int, float, str, bool, tuple, list)))
    }
    # plain values only: the core instantiates components itself, with the objects it owns
    return builds(dict, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})


def _accepts_kwargs(obj: Any) -> bool:
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD for p in params)


def _base_config(registry: Registry):
    groups: dict[str, Any] = {}
    for kind, (group, exclude) in _GROUPS.items():
        nodes = {
            config_key(c.name): _component_config(c.obj, exclude) for c in registry.components(kind)
        }
        groups[group] = make_config(**nodes)
    return make_config(
        dataset="synthetic",
        data_root=None,
        detectors=["vgae", "gat"],
        fusions=["dqn"],
        encoder_name="detector-features",
        reward="asymmetric",
        store="diskcache",
        store_dir=None,
        seed=0,
        batch_size=256,
        window=make_config(size=100, stride=100),
        # shares of every training file, in time order: detectors train on the first
        # block, fusions on the second (outputs the detectors never trained on), the
        # last validates (early stopping, thresholds)
        # fusion_attacks: attack types whose training files go wholly to the fusion and
        # validation blocks, so fusions see attacks the detectors never trained on
        split=make_config(detector=0.7, fusion=0.15, val=0.15, fusion_attacks=[]),
        trainer=make_config(
            max_epochs=20, patience=3, accelerator="auto", devices=1, strategy="auto",
            limit_train_batches=1.0, progress=True,
            resume=False,  # continue an interrupted training from <out>/checkpoints/<name>/last.ckpt
        ),
        **groups,
    )


def build_run_config(
    registry: Registry, overrides: Sequence[str] = (), preset: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> DictConfig:
    """Defaults from the registry, then the preset, ``base`` (CLI options), then overrides.

    Later layers win: ``--preset quick --max-epochs 4`` trains 4 epochs.
    """
    cfg = OmegaConf.structured(_base_config(registry))
    for kind, (group, _) in _GROUPS.items():
        for comp in registry.components(kind):
            if _accepts_kwargs(comp.obj):
                OmegaConf.set_struct(cfg[group][config_key(comp.name)], False)
    layers = []
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
        # a preset may tune components that are not installed: skip those keys
        present = [o for o in PRESETS[preset] if _has_key(cfg, o.split("=", 1)[0])]
        layers.append(OmegaConf.from_dotlist(present))
    layers.append(OmegaConf.create(dict(base or {})))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. fusion.dqn.lr=0.002)")
    layers.append(OmegaConf.from_dotlist(list(overrides)))
    try:
        for layer in layers:
            cfg = OmegaConf.merge(cfg, layer)
    except OmegaConfBaseException as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"bad config override: {first} ({getattr(exc, 'full_key', '')})") from None
    return cfg


def _has_key(cfg: DictConfig, dotted: str) -> bool:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node[part]
    return True


def component_params(cfg: DictConfig, kind: str, name: str) -> dict[str, Any]:
    """Plain parameters of one component from the resolved config."""
    group = _GROUPS[kind][0]
    node = cfg[group].get(config_key(name))
    if node is None:
        return {}
    params = OmegaConf.to_container(node, resolve=True)
    params.pop("_target_", None)
    params.pop("_partial_", None)
    return params
