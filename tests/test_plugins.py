"""Plugin discovery, isolation, strict mode, duplicates, disabling and lookup."""

from __future__ import annotations

import importlib.metadata as md
import json
import textwrap

import pytest

import fusioncore
from fusioncore.errors import DuplicateComponentError, PluginError, UnknownComponentError
from fusioncore.plugins import PluginLoadWarning, load_plugins

GOOD = """
from fusioncore import hookimpl

class Thing:
    '''A thing detector.'''

@hookimpl
def fusioncore_register_detectors(register):
    register("{name}", Thing)

@hookimpl
def fusioncore_register_rewards(register):
    register("{name}-reward", lambda **kw: None, "a reward")
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(module: str, source: str) -> md.EntryPoint:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        return md.EntryPoint(name=module, value=module, group="fusioncore")

    return write


def test_hookimpl_class_contributes_components():
    class MyPlugin:
        @fusioncore.hookimpl
        def fusioncore_register_fusions(self, register):
            register("my-fusion", object, "mine")

    plugins = load_plugins(entry_points=[], extra=[("mine", MyPlugin())])
    comp = plugins.registry.component("fusion", "my-fusion")
    assert comp.plugin == "mine" and comp.obj is object and comp.description == "mine"
    assert plugins.infos["mine"].components == {"fusion": ["my-fusion"]}
    assert plugins.infos["mine"].hooks == ["fusioncore_register_fusions"]


def test_entry_point_discovery_with_fake_entry_points(plugin_dir):
    eps = [plugin_dir("alpha", GOOD.format(name="alpha")), plugin_dir("beta", GOOD.format(name="beta"))]
    plugins = load_plugins(entry_points=eps)
    assert plugins.registry.names("detector") == ["alpha", "beta"]
    assert plugins.registry.get("reward", "beta-reward") is not None
    assert plugins.registry.component("detector", "alpha").description == "A thing detector."


def test_import_error_is_recorded_and_others_still_load(plugin_dir):
    eps = [
        plugin_dir("broken", "raise ImportError('missing dependency xyz')"),
        plugin_dir("fine", GOOD.format(name="fine")),
    ]
    with pytest.warns(PluginLoadWarning, match="broken.*missing dependency xyz"):
        plugins = load_plugins(entry_points=eps, strict=False)
    assert "missing dependency xyz" in plugins.infos["broken"].error
    assert plugins.infos["fine"].error is None
    assert plugins.registry.names("detector") == ["fine"]


def test_raising_hook_is_recorded_and_its_components_dropped(plugin_dir):
    source = GOOD.format(name="half") + textwrap.dedent(
        """
        @hookimpl
        def fusioncore_register_fusions(register):
            raise RuntimeError("boom")
        """
    )
    eps = [plugin_dir("half", source), plugin_dir("whole", GOOD.format(name="whole"))]
    with pytest.warns(PluginLoadWarning, match="boom"):
        plugins = load_plugins(entry_points=eps, strict=False)
    assert "fusioncore_register_fusions raised RuntimeError: boom" in plugins.infos["half"].error
    assert plugins.registry.names("detector") == ["whole"]
    assert plugins.infos["half"].components == {}


def test_strict_mode_turns_a_broken_plugin_into_an_error(plugin_dir, monkeypatch):
    eps = [plugin_dir("broken2", "import no_such_module_anywhere")]
    with pytest.raises(PluginError, match="broken2.*no_such_module_anywhere"):
        load_plugins(entry_points=eps, strict=True)
    monkeypatch.setenv("FUSIONCORE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_plugins(entry_points=eps)


def test_duplicate_component_name_names_both_plugins(plugin_dir):
    eps = [plugin_dir("first", GOOD.format(name="same")), plugin_dir("second", GOOD.format(name="same"))]
    with pytest.raises(DuplicateComponentError) as info:
        load_plugins(entry_points=eps)
    assert "'first'" in str(info.value) and "'second'" in str(info.value)
    assert "detector 'same'" in str(info.value)


def test_disable_plugins_env_blocks_one(plugin_dir, monkeypatch):
    eps = [plugin_dir("keep", GOOD.format(name="keep")), plugin_dir("block", GOOD.format(name="block"))]
    monkeypatch.setenv("FUSIONCORE_DISABLE_PLUGINS", "block, other")
    plugins = load_plugins(entry_points=eps)
    assert plugins.registry.names("detector") == ["keep"]
    assert "block" not in plugins.infos


def test_unknown_name_lists_available_and_suggests(plugin_dir):
    plugins = load_plugins(entry_points=[plugin_dir("gamma", GOOD.format(name="vgae"))])
    with pytest.raises(UnknownComponentError) as info:
        plugins.registry.get("detector", "vgea")
    msg = str(info.value)
    assert "available: vgae" in msg and "Did you mean 'vgae'?" in msg


def test_names_are_normalised():
    class P:
        @fusioncore.hookimpl
        def fusioncore_register_state_encoders(self, register):
            register("Detector_Features", dict)

    plugins = load_plugins(entry_points=[], extra=[("p", P())])
    assert plugins.registry.get("state_encoder", "detector-features") is dict


def test_incompatible_hook_api_warns_and_strict_fails(plugin_dir):
    source = "FUSIONCORE_HOOK_API = (99, 100)\n" + GOOD.format(name="future")
    eps = [plugin_dir("future", source)]
    with pytest.warns(PluginLoadWarning, match="supports hook API 99..100"):
        plugins = load_plugins(entry_points=eps, strict=False)
    assert plugins.registry.names("detector") == []
    with pytest.raises(PluginError, match="future"):
        load_plugins(entry_points=eps, strict=True)


def test_bundled_plugins_found_through_entry_points():
    names = {ep.name for ep in md.entry_points(group="fusioncore")}
    assert {"vgae", "gat", "dqn", "baselines", "diskcache", "builtin_data"} <= names
    plugins = load_plugins(strict=True)
    for name in ("vgae", "gat", "dqn", "baselines", "diskcache"):
        assert plugins.infos[name].distribution == "fusioncore"
        assert plugins.infos[name].error is None


def test_cli_plugins_json(capsys):
    from fusioncore.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"vgae", "gat", "dqn", "baselines", "diskcache"}
    for row in rows:
        assert set(row) == {"name", "distribution", "version", "components", "hooks", "error"}
        assert row["error"] is None
