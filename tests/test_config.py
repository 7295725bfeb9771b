"""The run config: typed hydra-zen nodes, instantiate, validation before any data is read, --config."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fusioncore.cli import main
from fusioncore.errors import ConfigError
from fusioncore.paths import redirected_dirs
from fusioncore.pipeline.config import build, build_run_config
from fusioncore.plugins import get_plugins


@pytest.fixture(scope="module")
def registry():
    return get_plugins().registry


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("detector.gat.hiddn=3", "did you mean detector.gat.hidden?"),
        ("detector.gat.hidden=abc", "detector.gat.hidden"),
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("batch_size=abc", "batch_size"),
        ("fusion.dqn.lr=abc", "fusion.dqn.lr"),
        ("trainerr.max_epochs=3", "did you mean trainer?"),
        ("split.fusion=1.5", "split shares must each lie in [0, 1], sum to 1"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be >= 1"),
        ("trainer.min_delta=-0.1", "trainer.min_delta must be >= 0"),
        ("trainer.limit_train_batches=0", "limit_train_batches"),
        ("data.errors=ignore", "data.errors must be raise or skip"),
        ("trainer.windows_per_epoch=-1", "trainer.windows_per_epoch and trainer.val_windows must be >= 0"),
        ("trainer.val_windows=abc", "trainer.val_windows"),
    ],
)
def test_bad_keys_and_values_fail_while_the_config_is_built(registry, override, needle):
    with pytest.raises(ConfigError) as info:
        build_run_config(registry, [override], preset="quick")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_components_are_instantiated_from_their_nodes(registry):
    cfg = build_run_config(registry, ["fusion.dqn.lr=0.004", "reward_params.asymmetric.fn=-9"])
    node = cfg.fusion.dqn
    assert node._target_ == "fusioncore_dqn.dqn.DQNFusion" and node._partial_ is True
    reward = build(cfg, registry, "reward", "asymmetric")
    assert reward.fn == -9.0
    fusion = build(cfg, registry, "fusion", "dqn", reward=reward, seed=7)
    assert fusion.config.lr == 0.004 and fusion.config.seed == 7 and fusion.reward is reward
    # every constructor parameter of a detector is a typed key of its node
    assert {"hidden", "layers", "heads", "lr", "preset"} <= set(cfg.detector.gat)


def test_a_config_target_that_is_not_the_registered_component_is_refused(registry, tmp_path):
    cfg = build_run_config(registry)
    cfg.fusion.dqn._target_ = "os.system"
    with pytest.raises(ConfigError, match="_target_ is 'os.system', but the registered fusion 'dqn'"):
        build(cfg, registry, "fusion", "dqn", seed=0)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--accelerator", "bogus"], "accelerator='bogus'"),
        (["--accelerator", "gpu"], "cannot run here"),
        (["--devices", "abc"], "devices='abc'"),
        (["detector.gat.preset=huge"], "unknown gat preset 'huge'"),
        (["fusion.dqn.k=1"], "dqn: k must be >= 2, got 1"),
    ],
)
def test_component_and_trainer_errors_stop_the_run_before_any_data(argv, needle, capsys, tmp_path,
                                                                      monkeypatch):
    import fusioncore.pipeline.run as run_module

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(run_module, "load_data", no_data)
    assert main(["run", "--preset", "quick", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_misspelled_key_fails_in_seconds_naming_the_real_one(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["run", "--preset", "quick", "--out", str(tmp_path / "o"), "detector.gat.hiddn=3"]) == 2
    assert time.perf_counter() - start < 5
    assert "did you mean detector.gat.hidden?" in capsys.readouterr().err


def test_a_saved_config_re_runs_the_job(tmp_path):
    """``run --config A/config.yaml`` gives the same scenarios as the run that wrote it."""
    with redirected_dirs(tmp_path / "env"):
        a, b = tmp_path / "A", tmp_path / "B"
        assert main(["run", "--preset", "quick", "--detectors", "gat", "--fusion", "mean,weighted",
                     "--seed", "5", "--out", str(a), "trainer.progress=false"]) == 0
        assert main(["run", "--config", str(a / "config.yaml"), "--out", str(b)]) == 0
        first, second = (json.loads((d / "report.json").read_text()) for d in (a, b))
        assert second["scenarios"] == first["scenarios"] and second["seed"] == 5
        assert OmegaConf.load(b / "config.yaml").fusions == ["mean", "weighted"]
        # options and overrides still win over the file
        c = tmp_path / "C"
        assert main(["run", "--config", str(a), "--out", str(c), "--seed", "6"]) == 0
        assert json.loads((c / "report.json").read_text())["seed"] == 6


def test_config_file_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epohcs: 3\n")
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "did you mean trainer.max_epochs?" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    Path(tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert main(["run", "--config", str(tmp_path / "list.yaml")]) == 2


def test_epoch_budgets_reach_the_trainer_settings(registry):
    from fusioncore.pipeline.components import trainer_settings

    default = trainer_settings(build_run_config(registry))
    assert (default.windows_per_epoch, default.val_windows) == (10_000, 5_000)
    overrides = ["trainer.windows_per_epoch=0", "trainer.val_windows=7"]
    whole = trainer_settings(build_run_config(registry, overrides))
    assert (whole.windows_per_epoch, whole.val_windows) == (0, 7)
    assert trainer_settings(build_run_config(registry, ["trainer.num_nodes=2"])).num_nodes == 2
    with pytest.raises(ConfigError, match="trainer.num_nodes must be >= 1"):
        build_run_config(registry, ["trainer.num_nodes=0"])


def test_runs_train_with_one_torch_thread_unless_told_otherwise(registry, monkeypatch):
    import torch

    from fusioncore.pipeline.run import _torch_threads

    assert build_run_config(registry).threads is None
    assert build_run_config(registry, ["threads=0"]).threads == 0
    with pytest.raises(ConfigError, match="threads must be >= 0"):
        build_run_config(registry, ["threads=-1"])
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with _torch_threads(None):  # the default: one thread
        assert torch.get_num_threads() == 1
    with _torch_threads(0):  # 0: torch's own choice, left as it was
        assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with _torch_threads(None):  # the environment said: torch already follows it
        assert torch.get_num_threads() == before
    with _torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
