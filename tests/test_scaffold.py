"""``fusioncore new-plugin``: names, files, metadata, lint, and generated packages that install and pass."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fusioncore import HOOK_API_VERSION
from fusioncore.cli import main
from fusioncore.errors import ConfigError
from fusioncore.plugins import load_plugins
from fusioncore.scaffold import KINDS, plugin_names, render_plugin, scaffold_plugin
from fusioncore.testing import check_detector, check_fusion, check_reward, check_state_encoder, check_store
from fusioncore.testing.venv import PluginVenv, editable_install_problem

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ALL_KINDS = sorted(KINDS)


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        (
            "burst-rate",
            "detector",
            ("burst-rate", "fusioncore-burst-rate", "fusioncore_burst_rate", "BurstRateDetector"),
        ),
        ("fusioncore-vote", "fusion", ("vote", "fusioncore-vote", "fusioncore_vote", "VoteFusion")),
        ("cost_v2", "encoder", ("cost_v2", "fusioncore-cost-v2", "fusioncore_cost_v2", "CostV2Encoder")),
    ],
)
def test_names_are_derived_from_the_component_name(name, kind, expected):
    names = plugin_names(name, kind)
    assert (names.name, names.dist, names.module, names.class_name) == expected


@pytest.mark.parametrize("bad", ["", "Burst", "2fast", "a b", "burst!", "-x", "x--y"])
def test_invalid_names_are_refused_with_the_rule(bad):
    with pytest.raises(ConfigError, match="invalid plugin name .*lower-case letters"):
        plugin_names(bad, "detector")


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ConfigError, match="unknown plugin kind 'model'; choose one of: detector, fusion"):
        plugin_names("x", "model")


@pytest.mark.skipif(tomllib is None, reason="tomllib is new in Python 3.11")
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_rendered_package_declares_entry_point_classifier_and_hook_api(kind):
    files = render_plugin("burst", kind)
    meta = tomllib.loads(files["pyproject.toml"])
    assert meta["project"]["name"] == "fusioncore-burst"
    assert meta["project"]["entry-points"]["fusioncore"] == {"burst": "fusioncore_burst"}
    assert "Framework :: fusioncore" in meta["project"]["classifiers"]
    assert (
        f"FUSIONCORE_HOOK_API = ({HOOK_API_VERSION}, {HOOK_API_VERSION})"
        in files["fusioncore_burst/__init__.py"]
    )
    assert KINDS[kind].contract in files["tests/test_fusioncore_burst.py"]
    for path, text in files.items():
        assert not re.search(r"\$\{?[a-z_]+", text), f"unfilled placeholder in {path}"


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "fusioncore-burst").mkdir()
    (tmp_path / "fusioncore-burst" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        scaffold_plugin("burst", "detector", tmp_path)
    assert (tmp_path / "fusioncore-burst" / "keep.txt").read_text() == "mine"


def test_cli_creates_the_package_and_reports_bad_names(tmp_path, capsys):
    assert main(["new-plugin", "burst", "--kind", "reward", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "created fusioncore-burst" in out and "pip install -e" in out
    assert (tmp_path / "fusioncore-burst" / "fusioncore_burst" / "reward.py").is_file()
    assert main(["new-plugin", "Burst!", "--kind", "reward", "--dir", str(tmp_path)]) == 2
    assert "invalid plugin name" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("ruff") is None and not Path(sys.executable).with_name("ruff").exists(),
    reason="ruff not installed",
)
def test_generated_code_passes_ruff(tmp_path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    for kind in ALL_KINDS:
        target = scaffold_plugin(f"lint-{kind}", kind, tmp_path)
        # the package's own view: its module first-party, fusioncore third-party
        result = subprocess.run(
            [
                ruff,
                "check",
                "--isolated",
                "--no-cache",
                "--select",
                "E,F,W,I,B,UP,RUF",
                "--line-length",
                "110",
                "--target-version",
                "py310",
                ".",
            ],
            cwd=target,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{kind}:\n{result.stdout}"


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """Scaffold a package and import its module from the source folder (no install)."""

    def make(kind: str):
        target = scaffold_plugin(f"skel-{kind}", kind, tmp_path)
        monkeypatch.syspath_prepend(str(target))
        return importlib.import_module(plugin_names(f"skel-{kind}", kind).module)

    return make


def test_generated_skeletons_register_and_pass_their_contracts(generated, tmp_path):
    """The in-process version of the slow test below: every skeleton honours its contract."""
    modules = {kind: generated(kind) for kind in ALL_KINDS}
    plugins = load_plugins(entry_points=[], extra=list(modules.items()), strict=True)
    reg = plugins.registry
    check_detector(reg.get("detector", "skel-detector"), reproducible=False)
    check_fusion(reg.get("fusion", "skel-fusion"))
    check_reward(reg.get("reward", "skel-reward"))
    check_state_encoder(reg.get("state_encoder", "skel-encoder"))
    check_store(reg.get("store", "skel-store"), tmp_path / "stores")


# ------------------------------------------------------------------------ slow
@pytest.fixture(scope="module")
def scaffolded_env(tmp_path_factory):
    """One throwaway environment with a generated package of every kind installed (editable)."""
    problem = editable_install_problem()
    if problem:
        pytest.skip(f"cannot install packages offline here: {problem}")
    root = tmp_path_factory.mktemp("scaffolded")
    env = PluginVenv.create(root / "venv")
    sources = {kind: scaffold_plugin(f"gen-{kind}", kind, root / "sources") for kind in ALL_KINDS}
    installed = {kind: env.install(path) for kind, path in sources.items()}
    return env, installed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_generated_package_installs_and_its_tests_pass(scaffolded_env, kind, tmp_path):
    env, installed = scaffolded_env
    result = env.pytest(
        "-q",
        "-rs",
        cwd=installed[kind],
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # installed, so the entry-point test runs instead of skipping
    assert "skipped" not in output.splitlines()[-1], output[-2000:]
