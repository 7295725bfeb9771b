"""Both bundled detectors, trained briefly with default settings, separate attacks on synthetic data."""

from __future__ import annotations

import json

import pytest

from fusioncore.cli import main

KNOWN = "test_01_known_vehicle_known_attack"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("detectors") / "run"
    # a seed of its own, so no other test's trained detectors are reused
    argv = ["train", "--detectors", "vgae,gat", "--seed", "5", "--out", str(out), "trainer.progress=false"]
    assert main(argv) == 0  # about 15 s on an idle 2-core machine (timings are measured, not asserted)
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("detector", ["vgae", "gat"])
@pytest.mark.parametrize("attack", ["flooding", "fuzzing"])
def test_detector_separates_flooding_and_fuzzing(report, detector, attack):
    per_type = report["scenarios"][KNOWN][detector]["per_attack_type"]
    assert per_type[attack]["auroc"] >= 0.95, per_type


def test_vgae_score_is_standardised_on_benign_windows(report):
    assert report["training"]["vgae"]["reused"] is False
    # benign windows score ~N(0, 1): the best threshold lies a few benign std above 0
    assert 0 < report["thresholds"]["vgae"] < 100
