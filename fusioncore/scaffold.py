"""``fusioncore new-plugin``: a ready-to-publish plugin package for one component.

The generated package follows ``docs/examples/fusioncore-iat``: a
``pyproject.toml`` with the ``fusioncore`` entry point and the ``Framework ::
fusioncore`` classifier, a hook module declaring ``FUSIONCORE_HOOK_API``, a
skeleton component that already satisfies its contract, a test that runs
:mod:`fusioncore.testing`'s conformance suite, and a README. It installs and
its tests pass with no edits; the author then replaces the skeleton's logic.

Templates are ``string.Template`` files under :mod:`fusioncore.templates`.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

import attrs

from fusioncore.errors import ConfigError
from fusioncore.hookspecs import HOOK_API_VERSION

__all__ = ["KINDS", "PluginKind", "PluginNames", "plugin_names", "render_plugin", "scaffold_plugin"]


@attrs.frozen
class PluginKind:
    """What differs between the kinds of plugin package."""

    title: str  #: "state encoder"
    registry_kind: str  #: the kind in :data:`fusioncore.registry.KINDS`
    hook: str  #: the registration hook
    class_suffix: str
    contract: str  #: the base class in fusioncore.testing
    description: str  #: the skeleton's one-line description
    usage: str  #: a command line using the component; ``{name}`` is filled in


KINDS: dict[str, PluginKind] = {
    "detector": PluginKind(
        "detector",
        "detector",
        "fusioncore_register_detectors",
        "Detector",
        "DetectorContract",
        "supervised window classifier on pooled node features (a skeleton)",
        "fusioncore run --detectors {name},gat --fusion mean",
    ),
    "fusion": PluginKind(
        "fusion",
        "fusion",
        "fusioncore_register_fusions",
        "Fusion",
        "FusionContract",
        "weighted average of calibrated scores, weights from the training split (a skeleton)",
        "fusioncore run --detectors vgae,gat --fusion {name},mean",
    ),
    "reward": PluginKind(
        "reward",
        "reward",
        "fusioncore_register_rewards",
        "Reward",
        "RewardContract",
        "one reward value per outcome of the fused decision (a skeleton)",
        "fusioncore run --fusion dqn --reward {name}",
    ),
    "encoder": PluginKind(
        "state encoder",
        "state_encoder",
        "fusioncore_register_state_encoders",
        "Encoder",
        "StateEncoderContract",
        "standardised detector scores and their spread (a skeleton)",
        "fusioncore run --fusion dqn --encoder {name}",
    ),
    "store": PluginKind(
        "prediction store",
        "store",
        "fusioncore_register_stores",
        "Store",
        "StoreContract",
        "one checksummed .npz file per entry, atomic writes (a skeleton)",
        "fusioncore run --store {name}",
    ),
}

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PREFIX = "fusioncore-"


@attrs.frozen
class PluginNames:
    """The names of one generated package, all derived from the component name."""

    name: str  #: component and entry-point name: ``burst-rate``
    dist: str  #: distribution: ``fusioncore-burst-rate``
    module: str  #: import name: ``fusioncore_burst_rate``
    class_name: str  #: ``BurstRateDetector``


def plugin_names(name: str, kind: str) -> PluginNames:
    """Validate ``name`` (a leading ``fusioncore-`` is dropped) and derive the package's names."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}; choose one of: {', '.join(KINDS)}")
    raw = name.strip()
    short = raw[len(_PREFIX) :] if raw.lower().startswith(_PREFIX) else raw
    if not _NAME.match(short):
        raise ConfigError(
            f"invalid plugin name {name!r}: use lower-case letters and digits, words joined by '-' or '_', "
            "starting with a letter (e.g. burst-rate)"
        )
    module = "fusioncore_" + short.replace("-", "_")
    words = re.split(r"[-_]", short)
    class_name = "".join(w[:1].upper() + w[1:] for w in words) + KINDS[kind].class_suffix
    return PluginNames(
        name=short, dist=_PREFIX + short.replace("_", "-"), module=module, class_name=class_name
    )


def _template(*parts: str) -> string.Template:
    text = resources.files("fusioncore.templates").joinpath(*parts).read_text(encoding="utf-8")
    return string.Template(text)


def render_plugin(name: str, kind: str) -> dict[str, str]:
    """Every file of the package, as ``{relative path: text}``."""
    names = plugin_names(name, kind)
    spec = KINDS[kind]
    module_file = kind  # fusioncore_<name>/<kind>.py
    values = {
        "name": names.name,
        "name_key": names.name,
        "dist": names.dist,
        "module": names.module,
        "class_name": names.class_name,
        "kind_title": spec.title,
        "kind_module": module_file,
        "registry_kind": spec.registry_kind,
        "hook": spec.hook,
        "contract": spec.contract,
        "description": spec.description,
        "usage": spec.usage.format(name=names.name),
        "hook_api": f"({HOOK_API_VERSION}, {HOOK_API_VERSION})",
        "fusioncore_version": "0.1",
    }

    def render(*parts: str) -> str:
        return _template(*parts).substitute(values)

    test = render(kind, "test.py.tmpl").rstrip("\n") + "\n" + render("common", "test_entry_point.py.tmpl")
    return {
        "pyproject.toml": render("common", "pyproject.toml.tmpl"),
        "README.md": render("common", "README.md.tmpl"),
        f"{names.module}/__init__.py": render("common", "__init__.py.tmpl"),
        f"{names.module}/{module_file}.py": render(kind, "component.py.tmpl"),
        f"tests/test_{names.module}.py": test,
    }


def scaffold_plugin(name: str, kind: str, parent: Path | str = ".") -> Path:
    """Write the package into ``parent/<distribution name>`` and return that folder.

    An existing non-empty folder is never touched (:class:`ConfigError`).
    """
    files = render_plugin(name, kind)
    target = Path(parent) / plugin_names(name, kind).dist
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not empty; choose another --dir or name")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
