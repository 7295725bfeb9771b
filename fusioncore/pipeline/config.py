"""Run configuration: typed hydra-zen configs generated from the plugin registry.

A run's configuration is one structured config: the run's own options (typed
dataclasses: dataset, window, split, trainer, ...) plus one node per registered
component, built with ``hydra_zen.builds(cls, populate_full_signature=True,
zen_partial=True)``. So every constructor parameter of every detector, fusion,
state encoder, reward and store can be set with a dotted path
(``fusion.dqn.lr=0.002``, ``detector.gat.hidden=32``); a misspelled key or an
ill-typed value fails when the config is built, before any data is read, and
components are built with :func:`hydra_zen.instantiate` from their node
(:func:`build`), so the saved ``config.yaml`` is the run: ``fusioncore run
--config runs/X/config.yaml`` re-runs it. Component names with ``-`` use ``_``
in paths (``encoder.detector_features``). Components that take ``**kwargs``
accept extra keys.

Layers, later ones winning: registry defaults, then ``--config FILE``, then a
``--preset``, then CLI options (``base``), then ``KEY=VALUE`` overrides.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union, get_args

from hydra_zen import BuildsFn, instantiate, make_config
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from fusioncore.errors import ConfigError, FusionCoreError
from fusioncore.pipeline.options import RunOptions
from fusioncore.registry import Registry

__all__ = [
    "GROUPS",
    "PRESETS",
    "build",
    "build_component",
    "build_run_config",
    "component_node",
    "component_params",
    "config_key",
    "load_config_file",
    "validate_run_config",
]

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
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "detector": ("detector", ("schema",)),
    "fusion": ("fusion", ("reward", "seed")),  # the run's seed reaches every fusion
    "state_encoder": ("encoder", ()),
    "reward": ("reward_params", ()),
    "store": ("store_params", ("directory",)),
    "alarm": ("alarm_params", ()),
    "adapter": ("adapt_params", ("warmup_s",)),  # adapt.warmup_s is the protocol's, set once
}


# ------------------------------------------------------------------ components
def config_key(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


def _target(obj: Any) -> Any:
    return obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(_target(obj))
    except (TypeError, ValueError):
        return None


def _accepts_kwargs(obj: Any) -> bool:
    sig = _signature(obj)
    return sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


class _Builds(BuildsFn):
    """hydra-zen's ``builds`` reading PEP 604 unions (``int | None``) as it reads ``Optional[int]``.

    Without this, every ``x: int | None = None`` parameter would be typed ``Any``
    in the config and ``detector.gat.hidden=abc`` would pass validation.
    """

    @classmethod
    def _sanitized_type(cls, type_: Any, **kwargs: Any) -> Any:
        if isinstance(type_, types.UnionType):
            type_ = Union[get_args(type_)]  # noqa: UP007 (the typing form is the point here)
        return super()._sanitized_type(type_, **kwargs)


builds = _Builds.builds


def _component_config(obj: Any, exclude: tuple[str, ...]) -> Any:
    """A partial hydra-zen config of ``obj``'s full signature, minus what the core passes itself."""
    sig = _signature(obj)
    if sig is None:
        return make_config()
    excluded = tuple(n for n in exclude if n in sig.parameters)
    # required positional parameters the core provides (a detector's schema) stay out of the config
    return builds(_target(obj), populate_full_signature=True, zen_partial=True, zen_exclude=excluded)


def _base_config(registry: Registry) -> DictConfig:
    groups: dict[str, Any] = {}
    for kind, (group, exclude) in GROUPS.items():
        nodes = {config_key(c.name): _component_config(c.obj, exclude) for c in registry.components(kind)}
        groups[group] = make_config(**nodes)
    cfg = OmegaConf.structured(make_config(**groups, bases=(RunOptions,)))
    OmegaConf.set_struct(cfg, True)
    for kind, (group, _) in GROUPS.items():
        for comp in registry.components(kind):
            if _accepts_kwargs(comp.obj):
                OmegaConf.set_struct(cfg[group][config_key(comp.name)], False)
    return cfg


def _merge(cfg: DictConfig, layer: Any, what: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, layer)
    except ConfigKeyError as exc:
        key = str(getattr(exc, "full_key", "") or exc.key)
        raise ConfigError(_unknown_key_message(cfg, key, what)) from None
    except OmegaConfBaseException as exc:
        first = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", "") or ""
        raise ConfigError(f"bad value in {what}{f' for {key}' if key else ''}: {first}") from None


def _unknown_key_message(cfg: DictConfig, full_key: str, what: str) -> str:
    parts = full_key.split(".")
    node: Any = cfg
    depth = 0
    while depth < len(parts) and isinstance(node, DictConfig) and parts[depth] in node:
        node = node[parts[depth]]
        depth += 1
    parent = ".".join(parts[:depth])
    keys = node.keys() if isinstance(node, DictConfig) else []
    known = sorted(str(k) for k in keys if not str(k).startswith("_"))
    missing = parts[depth] if depth < len(parts) else full_key
    close = difflib.get_close_matches(missing, known, n=1, cutoff=0.6)
    where = f"{parent}." if parent else ""
    hint = f"; did you mean {where}{close[0]}?" if close else ""
    listing = f" (valid keys under {parent or 'the top level'}: {', '.join(known)})" if known else ""
    return f"unknown config key {full_key!r} in {what}{hint}{listing}"


def load_config_file(path: Path) -> DictConfig:
    """A saved ``config.yaml`` (or any YAML holding run options) as a config layer."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    try:
        layer = OmegaConf.load(path)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"--config {path}: expected a mapping of options, got a {type(layer).__name__}")
    return layer


def build_run_config(
    registry: Registry,
    overrides: Sequence[str] = (),
    preset: str | None = None,
    base: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> DictConfig:
    """Defaults from the registry, then ``config_file``, the preset, ``base`` (CLI options), overrides.

    Later layers win: ``--preset quick --max-epochs 4`` trains 4 epochs. The
    result is validated (:func:`validate_run_config`).
    """
    cfg = _base_config(registry)
    if config_file is not None:
        cfg = _merge(cfg, load_config_file(config_file), f"--config {config_file}")
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
        # a preset may tune components that are not installed: skip those keys
        present = [o for o in PRESETS[preset] if _has_key(cfg, o.split("=", 1)[0])]
        cfg = _merge(cfg, OmegaConf.from_dotlist(present), f"preset {preset!r}")
    cfg = _merge(cfg, OmegaConf.create(dict(base or {})), "the command-line options")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. fusion.dqn.lr=0.002)")
    cfg = _merge(cfg, OmegaConf.from_dotlist(list(overrides)), "the overrides")
    validate_run_config(cfg, registry)
    return cfg


def _has_key(cfg: DictConfig, dotted: str) -> bool:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node[part]
    return True


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate_run_config(cfg: DictConfig, registry: Registry) -> None:
    """Ranges and names the types alone cannot express; every failure is one line."""
    shares = (cfg.split.detector, cfg.split.fusion, cfg.split.val)
    _check(all(0.0 <= s <= 1.0 for s in shares) and abs(sum(shares) - 1.0) < 1e-6 and shares[0] > 0,
           "split shares must each lie in [0, 1], sum to 1 and give the detectors a share: got "
           f"split.detector={shares[0]} + split.fusion={shares[1]} + split.val={shares[2]} = {sum(shares):g}")
    _check(cfg.split.policy in ("attack-aware", "contiguous"),
           f"split.policy must be attack-aware or contiguous, got {cfg.split.policy!r}")
    _check(cfg.split.purge >= 0 and cfg.split.blocks >= 3,
           f"split.purge must be >= 0 and split.blocks >= 3, got {cfg.split.purge} / {cfg.split.blocks}")
    t = cfg.trainer
    _check(t.max_epochs >= 1, f"trainer.max_epochs must be >= 1, got {t.max_epochs} (0 would report "
           "untrained detectors)")
    _check(t.patience >= 0, f"trainer.patience must be >= 0 (0: no early stopping), got {t.patience}")
    _check(t.min_delta >= 0, f"trainer.min_delta must be >= 0, got {t.min_delta}")
    limit = t.limit_train_batches
    _check((isinstance(limit, int) and limit >= 1) or (isinstance(limit, float) and 0 < limit <= 1),
           "trainer.limit_train_batches must be a whole number of batches >= 1 or a share in (0, 1], "
           f"got {limit}")
    _check(t.num_nodes >= 1, f"trainer.num_nodes must be >= 1, got {t.num_nodes}")
    _check(t.windows_per_epoch >= 0 and t.val_windows >= 0,
           "trainer.windows_per_epoch and trainer.val_windows must be >= 0 (0: every window), got "
           f"{t.windows_per_epoch} / {t.val_windows}")
    _check(cfg.batch_size >= 1, f"batch_size must be >= 1, got {cfg.batch_size}")
    _check(cfg.window.size >= 2 and cfg.window.stride >= 1,
           f"window.size must be >= 2 and window.stride >= 1, got {cfg.window.size} / {cfg.window.stride}")
    _check(cfg.threads is None or cfg.threads >= 0, f"threads must be >= 0, got {cfg.threads}")
    _check(cfg.data.errors in ("raise", "skip"),
           f"data.errors must be raise or skip, got {cfg.data.errors!r}")
    _check(len(cfg.detectors) > 0, "no detectors chosen; available: " + ", ".join(registry.names("detector")))
    _check(len(set(cfg.detectors)) == len(cfg.detectors) and len(set(cfg.fusions)) == len(cfg.fusions),
           "a detector or fusion is named twice")
    for name in cfg.detectors:
        registry.component("detector", name)
    for name in cfg.fusions:
        registry.component("fusion", name)
    registry.component("store", cfg.store)
    registry.component("alarm", cfg.alarm)
    registry.component("adapter", cfg.adapt.name)
    _check(cfg.adapt.warmup_s >= 0, f"adapt.warmup_s must be >= 0 seconds, got {cfg.adapt.warmup_s}")
    _check(len(set(cfg.seeds)) == len(cfg.seeds), f"seeds must differ, got {list(cfg.seeds)}")
    if cfg.fusions:
        registry.component("state_encoder", cfg.encoder_name)
        registry.component("reward", cfg.reward)


# --------------------------------------------------------------- building
def component_node(cfg: DictConfig, kind: str, name: str) -> DictConfig:
    group = GROUPS[kind][0]
    node = cfg[group].get(config_key(name))
    if node is None:
        raise ConfigError(f"no config for {kind} {name!r} under {group}.{config_key(name)}")
    return node


def component_params(cfg: DictConfig, kind: str, name: str) -> dict[str, Any]:
    """Plain parameters of one component from the resolved config (no ``_target_`` keys)."""
    params = OmegaConf.to_container(component_node(cfg, kind, name), resolve=True)
    return {k: v for k, v in params.items() if not k.startswith("_")}


def _accepted(func: Any, provided: Mapping[str, Any]) -> dict[str, Any]:
    """The core-provided arguments ``func`` takes (all of them if it takes ``**kwargs``)."""
    sig = _signature(func)
    if sig is None or _accepts_kwargs(func):
        return dict(provided)
    return {k: v for k, v in provided.items() if k in sig.parameters}


def _target_path(obj: Any) -> str:
    target = _target(obj)
    return f"{target.__module__}.{target.__qualname__}"


def build(cfg: DictConfig, registry: Registry, kind: str, name: str, **provided: Any) -> Any:
    """``instantiate`` a component from its config node, passing the core-provided objects it accepts.

    ``provided`` holds what the core owns (a detector's schema, a fusion's reward
    and seed); those the constructor does not take are left out. A node may
    only build the component registered under its name: a config file whose
    ``_target_`` points elsewhere is refused rather than imported.
    """
    node = component_node(cfg, kind, name)
    registered = registry.get(kind, name)
    target = node.get("_target_")
    if target is not None and target != _target_path(registered):
        raise ConfigError(f"{GROUPS[kind][0]}.{config_key(name)}._target_ is {target!r}, but the registered "
                          f"{kind} {name!r} is {_target_path(registered)!r}; fix or drop the _target_ line")
    try:
        partial = instantiate(node)
    except Exception as exc:  # a missing or moved target
        raise ConfigError(f"{kind} {name!r}: cannot build it from its config: {_reason(exc)}") from None
    try:
        return partial(**_accepted(getattr(partial, "func", partial), provided))
    except FusionCoreError:  # the component's own one-line validation message
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} {name!r}: bad parameters: {_reason(exc)}") from None


def build_component(obj: Any, params: Mapping[str, Any], **provided: Any) -> Any:
    """Build a registered ``obj`` from plain ``params`` (a saved run's, or a test's).

    Used where a run is rebuilt from its bundle: the bundle stores component
    names and plain parameters, never import paths, so loading one cannot
    import or call anything that is not a registered component.
    """
    try:
        return obj(**{**params, **_accepted(obj, provided)})
    except TypeError as exc:
        what = getattr(obj, "__name__", obj)
        raise ConfigError(f"cannot build {what} with {dict(params)}: {exc}") from None


def _reason(exc: BaseException) -> str:
    # hydra wraps constructor errors; the cause is what the user can act on
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
