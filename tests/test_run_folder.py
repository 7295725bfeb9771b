"""Run folders under faults: a second run, a crash mid-run, bad --out targets (issue 13)."""

from __future__ import annotations

import json

import pytest

from fusioncore.cli import main
from fusioncore.errors import ConfigError
from fusioncore.pipeline.folder import MARKER, RunFolder, config_digest
from fusioncore.scoring import ScoringSystem

QUICK = ["run", "--preset", "quick", "--detectors", "gat", "--fusion", "mean", "trainer.progress=false"]


def test_a_second_run_into_the_same_out_stops_at_once(tmp_path, capsys):
    out = tmp_path / "busy"
    holder = RunFolder.open(out, {"seed": 0})
    try:
        assert main([*QUICK, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "another fusioncore run" in err and "is writing --out" in err
    finally:
        holder.release()
    assert not out.exists()


def test_a_crash_late_in_a_run_leaves_no_run_folder_and_detect_refuses_the_partial(tmp_path, monkeypatch):
    import fusioncore.pipeline.run as run_module

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C (or SIGKILL) while the plots are drawn

    monkeypatch.setattr(run_module, "draw_plots", killed)
    out = tmp_path / "crash"
    assert main([*QUICK, "--out", str(out)]) == 130
    assert not out.exists()
    partial = tmp_path / ".crash.partial"
    assert (partial / "config.yaml").exists() and not (partial / MARKER).exists()
    with pytest.raises(ConfigError, match="not a fusioncore run folder|unfinished run"):
        ScoringSystem.load(partial)
    monkeypatch.undo()
    # the next run into that --out starts afresh (with a warning) and publishes a complete run
    assert main([*QUICK, "--out", str(out)]) == 0
    assert (out / MARKER).exists() and not partial.exists()
    assert json.loads((out / MARKER).read_text())["command"] == "run"


@pytest.mark.parametrize("kind", ["file", "foreign folder", "unwritable"])
def test_bad_out_targets_are_one_line_errors(tmp_path, capsys, kind):
    if kind == "file":
        target = tmp_path / "a-file"
        target.write_text("not a run")
        needle = "is an existing file"
    elif kind == "foreign folder":
        target = tmp_path / "photos"
        target.mkdir()
        (target / "holiday.jpg").write_bytes(b"\xff\xd8")
        needle = "does not hold a fusioncore run"
    else:
        target = tmp_path / "no-such-dir-parent" / "x"
        (tmp_path / "no-such-dir-parent").write_text("a file where a folder should be")
        needle = "cannot create --out"
    assert main([*QUICK, "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_resume_is_checked_against_the_interrupted_runs_config(tmp_path):
    out = tmp_path / "r"
    first = RunFolder.open(out, {"seed": 0, "trainer": {"resume": False}})
    first.release()
    with pytest.raises(ConfigError, match="another configuration or seed"):
        RunFolder.open(out, {"seed": 1, "trainer": {"resume": True}}, resume=True).release()
    # options that change how a run is shown, not what it computes, do not block a resume
    again = RunFolder.open(out, {"seed": 0, "trainer": {"resume": True, "progress": False}}, resume=True)
    assert again.resumed
    again.release()
    assert config_digest({"seed": 0, "threads": 2}) == config_digest({"seed": 0, "threads": 1})
    with pytest.raises(ConfigError, match="no interrupted run to continue"):
        RunFolder.open(tmp_path / "fresh", {"seed": 0}, resume=True)
