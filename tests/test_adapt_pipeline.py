"""Adaptation in runs: the protocol's reference segments, reports, and adapters picked by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusioncore import hookimpl
from fusioncore.adapt.base import ProfileAdapter
from fusioncore.adapt.segment import reference_ends
from fusioncore.cli import main
from fusioncore.data.loading import load_files
from fusioncore.data.windows import WindowSpec, window_starts
from fusioncore.paths import data_root
from fusioncore.pipeline import run_pipeline
from fusioncore.pipeline.config import build_run_config
from fusioncore.plugins import get_plugins, load_plugins

QUICK = ["--preset", "quick", "--fusion", "mean", "trainer.progress=false"]


@pytest.fixture(scope="module")
def profile_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapt") / "profile"
    assert main(["run", *QUICK, "--adapt", "profile", "--out", str(out)]) == 0
    return out


def _report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


def _after_reference(paths, warmup_s: float) -> int:
    """Windows a scenario counts: those starting at or after each file's reference segment."""
    frames = load_files(paths).frames
    starts = window_starts(frames, WindowSpec(100, 100))
    _, end = reference_ends(frames, warmup_s)
    run = np.searchsorted(np.flatnonzero(np.r_[True, frames.source[1:] != frames.source[:-1]]), starts,
                          side="right") - 1
    return int(np.count_nonzero(starts >= end[run]))


def test_reference_segment_is_excluded_from_every_metric(profile_run):
    report = _report(profile_run)
    tests = get_plugins().registry.get("dataset", "synthetic").resolve(data_root()).tests
    assert report["protocol"]["adapter"] == "profile" and report["protocol"]["warmup_s"] == 4.0
    for scenario, paths in tests.items():
        expected = _after_reference(paths, 4.0)
        assert report["windows"][scenario] == expected, scenario
        for method, m in report["scenarios"][scenario].items():
            assert m["n_windows"] == expected, (scenario, method)
        captures = report["captures"][scenario]
        assert sum(c["methods"]["mean"]["n_windows"] for c in captures.values()) == expected
        assert all(c["reference"]["windows"] > 0 and c["reference"]["seconds"] <= 4.0
                   for c in captures.values())
    assert report["reference_windows"]["test_01_known_vehicle_known_attack"] > 0
    md = (profile_run / "report.md").read_text()
    assert "Protocol: adapter `profile`" in md and "first 4 s of every capture" in md
    assert "## Per capture" in md and "masquerade-van.csv" in md


def test_both_protocols_count_the_same_windows(profile_run, tmp_path):
    out = tmp_path / "none"
    assert main(["run", *QUICK, "--adapt", "none", "--out", str(out)]) == 0
    none, profile = _report(out), _report(profile_run)
    assert none["protocol"]["adapter"] == "none" and not none["protocol"]["score_normalisation"]
    for scenario in profile["scenarios"]:
        assert none["windows"][scenario] == profile["windows"][scenario]
    assert none["reference_windows"]["test_01_known_vehicle_known_attack"] == 0  # none needs no scores


def test_a_reference_holding_attack_frames_is_used_and_reported(tmp_path):
    out = tmp_path / "late"
    # the synthetic attacks start 4.2 s or more into a file: a 6 s reference holds some of them
    assert main(["run", *QUICK, "--warmup", "6", "--out", str(out)]) == 0
    report = _report(out)
    flagged = report["protocol"]["references_with_attacks"]
    assert "test_02_unknown_vehicle_known_attack" in flagged
    name = flagged["test_02_unknown_vehicle_known_attack"][0]
    capture = report["captures"]["test_02_unknown_vehicle_known_attack"][name]
    assert capture["reference"]["attack_frames"] > 0 and capture["methods"]["mean"]["n_windows"] > 0
    assert "**Reference segment holds attack frames**" in (out / "report.md").read_text()


class _Counting(ProfileAdapter):
    """A third-party adapter: the profile adapter, counting the profiles it learns."""

    name = "counting"
    profiles = 0

    def fit_profile(self, frames, *, source):
        type(self).profiles += 1
        return super().fit_profile(frames, source=source)


class _Plugin:
    @staticmethod
    @hookimpl
    def fusioncore_register_adapters(register):
        register("counting", _Counting, "counts profiles")


def test_a_third_party_adapter_is_picked_by_name(tmp_path):
    plugins = load_plugins(extra=[("counting-plugin", _Plugin)])
    assert plugins.registry.component("adapter", "counting").plugin == "counting-plugin"
    overrides = ["adapt.name=counting", "fusions=[mean]", "trainer.progress=false",
                 "adapt_params.counting.buckets=4"]
    cfg = build_run_config(plugins.registry, overrides, preset="quick")
    result = run_pipeline(cfg, out_dir=tmp_path / "run", plugins=plugins)
    assert result.report["protocol"]["adapter"] == "counting"
    assert result.report["protocol"]["params"]["buckets"] == 4
    assert _Counting.profiles >= 21  # every training and test capture of the synthetic dataset
    saved = json.loads((tmp_path / "run" / "model" / "bundle.json").read_text())["sections"]["adapter"]
    assert saved["name"] == "counting" and set(saved["detector_scalers"]) == {"vgae", "gat"}


def test_unknown_adapters_and_bad_parameters_fail_before_any_work(tmp_path, capsys):
    assert main(["run", *QUICK, "--adapt", "profil", "--out", str(tmp_path / "x")]) == 2
    assert "unknown adapter 'profil'" in capsys.readouterr().err
    assert main(["run", *QUICK, "--adapt", "profile", "--warmup", "0", "--out", str(tmp_path / "y")]) == 2
    assert "adapt.warmup_s must be > 0" in capsys.readouterr().err
