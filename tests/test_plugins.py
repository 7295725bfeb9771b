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
from fusioncore import Detector, hookimpl

class Thing(Detector):
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
    class MyFusion(fusioncore.FusionStrategy):
        pass

    class MyPlugin:
        @fusioncore.hookimpl
        def fusioncore_register_fusions(self, register):
            register("my-fusion", MyFusion, "mine")

    plugins = load_plugins(entry_points=[], extra=[("mine", MyPlugin())])
    comp = plugins.registry.component("fusion", "my-fusion")
    assert comp.plugin == "mine" and comp.obj is MyFusion and comp.description == "mine"
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
    class Encoder(fusioncore.StateEncoder):
        pass

    class P:
        @fusioncore.hookimpl
        def fusioncore_register_state_encoders(self, register):
            register("Detector_Features", Encoder)

    plugins = load_plugins(entry_points=[], extra=[("p", P())])
    assert plugins.registry.get("state_encoder", "detector-features") is Encoder


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


# ------------------------------------------------- what plugins may register
@pytest.mark.parametrize(
    ("kind_hook", "component"),
    [
        ("fusioncore_register_detectors", "42"),
        ("fusioncore_register_detectors", "object"),  # a class, but not a Detector
        ("fusioncore_register_fusions", "lambda **kw: None"),
        ("fusioncore_register_formats", "object()"),
        ("fusioncore_register_rewards", "42"),
    ],
)
def test_a_component_of_the_wrong_kind_is_refused_by_name(plugin_dir, kind_hook, component):
    source = f"""
from fusioncore import hookimpl

@hookimpl
def {kind_hook}(register):
    register("bogus", {component})
"""
    eps = [plugin_dir("wrongkind", source), plugin_dir("fine", GOOD.format(name="fine"))]
    with pytest.warns(PluginLoadWarning, match="wrongkind.*registered .* 'bogus'.* must be"):
        plugins = load_plugins(entry_points=eps, strict=False)
    assert plugins.infos["fine"].error is None and plugins.infos["wrongkind"].components == {}
    with pytest.raises(PluginError, match="'bogus'.* must be"):
        load_plugins(entry_points=eps, strict=True)


LAZY_IMPL = '''
from fusioncore import Detector

class D(Detector):
    """Lazy one."""

NOT_A_DETECTOR = 42
'''

LAZY_PLUGIN = """
from fusioncore import Lazy, hookimpl

@hookimpl
def fusioncore_register_detectors(register):
    register("lazy", Lazy("lazy_impl:D"))
    register("wrong", Lazy("lazy_impl:NOT_A_DETECTOR"), "registered lazily, checked on lookup")
    register("missing", Lazy("no_such_module_xyz:D"))
"""


def test_lazy_components_import_on_first_lookup_and_are_checked(plugin_dir):
    import sys

    plugin_dir("lazy_impl", LAZY_IMPL)
    sys.modules.pop("lazy_impl", None)
    plugins = load_plugins(entry_points=[plugin_dir("lazyplug", LAZY_PLUGIN)], strict=True)
    assert "lazy_impl" not in sys.modules  # nothing imported just to list the plugin
    assert plugins.registry.names("detector") == ["lazy", "missing", "wrong"]
    assert plugins.registry.get("detector", "lazy").__name__ == "D"
    assert plugins.registry.component("detector", "lazy").description == "Lazy one."
    with pytest.raises(PluginError, match="'wrong' as int.* must be a fusioncore.Detector subclass"):
        plugins.registry.get("detector", "wrong")
    with pytest.raises(PluginError, match="cannot load detector 'missing' from no_such_module_xyz:D"):
        plugins.registry.get("detector", "missing")


def test_sys_exit_at_import_is_isolated_like_any_import_error(plugin_dir):
    eps = [plugin_dir("exits", "import sys\nsys.exit(3)\n"), plugin_dir("fine", GOOD.format(name="fine"))]
    with pytest.warns(PluginLoadWarning, match="exits.*SystemExit: 3"):
        plugins = load_plugins(entry_points=eps, strict=False)
    assert plugins.registry.names("detector") == ["fine"]
    with pytest.raises(PluginError, match="SystemExit: 3"):
        load_plugins(entry_points=eps, strict=True)


def test_an_entry_point_shadowing_another_is_a_duplicate_error(plugin_dir, capsys, monkeypatch):
    """A third-party entry point named like a bundled one must not make both vanish."""
    own = plugin_dir("orig_gat", GOOD.format(name="gatlike"))
    impostor = plugin_dir("evil_gat", GOOD.format(name="evil"))
    eps = [md.EntryPoint(name="gat", value=own.value, group="fusioncore"),
           md.EntryPoint(name="gat", value=impostor.value, group="fusioncore")]
    with pytest.raises(DuplicateComponentError, match="entry point 'gat'.*orig_gat.*evil_gat"):
        load_plugins(entry_points=eps)
    # the same entry point found twice (one distribution on two paths) is one plugin
    assert load_plugins(entry_points=[eps[0], eps[0]]).registry.names("detector") == ["gatlike"]

    from fusioncore import plugins as plugin_module
    from fusioncore.cli import main

    monkeypatch.setattr(plugin_module.md, "entry_points", lambda group: eps)
    plugin_module.reset_plugins()
    try:
        assert main(["plugins"]) == 2
    finally:
        plugin_module.reset_plugins()
    assert "registered by both" in capsys.readouterr().err


PROBE = """
import sys
from fusioncore.cli import main
for argv in (["plugins", "--json"], ["inspect", sys.argv[1], "--json"]):
    assert main(argv) == 0, argv
print("HEAVY", sorted(m for m in ("torch", "pytorch_lightning", "torch_geometric") if m in sys.modules))
"""


def test_commands_that_need_no_model_import_no_torch(tmp_path):
    """``plugins`` and ``inspect`` answer without importing torch, Lightning or PyG."""
    import subprocess
    import sys

    capture = tmp_path / "c.csv"
    capture.write_text("timestamp,arbitration_id,data_field,attack\n1.0,1A0,0102,0\n1.1,1A0,0103,0\n")
    out = subprocess.run([sys.executable, "-c", PROBE, str(capture)], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out
