"""docs/examples/fusioncore-iat: a real third-party plugin package, tested from source and installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import fusioncore
from fusioncore.errors import PluginError
from fusioncore.plugins import PluginLoadWarning, load_plugins
from fusioncore.testing import DetectorContract
from fusioncore.testing.venv import PluginVenv, editable_install_problem

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "fusioncore-iat"
sys.path.insert(0, str(EXAMPLE))  # the package from source; the slow tests install it for real
import fusioncore_iat  # noqa: E402
from fusioncore_iat import IATDetector  # noqa: E402


class TestIATContract(DetectorContract):
    detector_cls = IATDetector


@pytest.mark.skipif(tomllib is None, reason="tomllib is new in Python 3.11")
def test_pyproject_declares_entry_point_and_classifier():
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "fusioncore-iat"
    assert meta["entry-points"]["fusioncore"] == {"iat": "fusioncore_iat"}
    assert "Framework :: fusioncore" in meta["classifiers"]
    assert (EXAMPLE / "README.md").is_file() and (EXAMPLE / "tests" / "test_iat.py").is_file()


def test_declared_hook_api_loads_in_strict_mode():
    low, high = fusioncore_iat.FUSIONCORE_HOOK_API
    assert low <= fusioncore.HOOK_API_VERSION == high  # tested up to this fusioncore's hook API
    plugins = load_plugins(entry_points=[], extra=[("iat", fusioncore_iat)], strict=True)
    assert plugins.registry.get("detector", "iat") is IATDetector


def test_a_hook_api_mismatch_warns_naming_the_plugin_and_fails_strict(monkeypatch):
    monkeypatch.setattr(fusioncore_iat, "FUSIONCORE_HOOK_API", (3, 4))
    expected = (
        rf"plugin 'iat' supports hook API 3\.\.4, but this fusioncore provides {fusioncore.HOOK_API_VERSION}"
    )
    with pytest.warns(PluginLoadWarning, match=expected):
        plugins = load_plugins(entry_points=[], extra=[("iat", fusioncore_iat)], strict=False)
    assert "iat" not in plugins.registry.names("detector")
    with pytest.raises(PluginError, match="plugin 'iat' supports hook API 3..4"):
        load_plugins(entry_points=[], extra=[("iat", fusioncore_iat)], strict=True)


# ------------------------------------------------------------------------ slow
@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A throwaway environment with this project visible and the example installed (editable)."""
    problem = editable_install_problem()
    if problem:
        pytest.skip(f"cannot install packages offline here: {problem}")
    root = tmp_path_factory.mktemp("example")
    env = PluginVenv.create(root / "venv")
    package = env.install(EXAMPLE)
    isolation = {"FUSIONCORE_CACHE_DIR": str(root / "cache"), "FUSIONCORE_DATA": str(root / "data")}
    return env, package, isolation, root


@pytest.mark.slow
def test_installed_example_is_listed_under_its_own_distribution(installed):
    env, _, isolation, _ = installed
    infos = {p["name"]: p for p in json.loads(env.fusioncore("plugins", "--json", env=isolation).stdout)}
    assert infos["iat"]["distribution"] == "fusioncore-iat"
    assert infos["iat"]["components"] == {"detector": ["iat"]}
    assert infos["iat"]["error"] is None
    assert infos["gat"]["distribution"] == "fusioncore"  # the bundled plugins are still there


@pytest.mark.slow
def test_installed_example_runs_end_to_end_next_to_a_gnn(installed):
    env, _, isolation, root = installed
    out = root / "run"
    args = ["run", "--detectors", "iat,gat", "--fusion", "mean", "--preset", "quick", "--out", str(out)]
    env.fusioncore(*args, env={**isolation, "FUSIONCORE_STRICT_PLUGINS": "1"})
    report = json.loads((out / "report.json").read_text())
    assert report["detectors"] == ["iat", "gat"] and report["fusions"] == ["mean"]
    assert (out / "detectors" / "iat.pt").is_file()
    known = report["scenarios"]["test_01_known_vehicle_known_attack"]["iat"]
    assert known["auroc"] > 0.9  # flooding, fuzzing, spoofing, replay on a known vehicle


@pytest.mark.slow
def test_installed_example_passes_its_own_tests(installed):
    env, package, _, _ = installed
    result = env.pytest("-q", "-rs", cwd=package, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "skipped" not in output.splitlines()[-1], output[-2000:]  # the entry-point test ran
