"""ScoringSystem: a saved run scores windows exactly as the run's own batch path did."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from detector_batches import one_torch_thread

from fusioncore.adapt.splits import test_windows as scored_windows
from fusioncore.cli import main
from fusioncore.data.formats import read_capture
from fusioncore.data.loading import load_files
from fusioncore.data.windows import WindowSpec, window_labels, window_starts
from fusioncore.errors import ConfigError
from fusioncore.evaluation import scenario_metrics
from fusioncore.paths import data_root
from fusioncore.plugins import get_plugins
from fusioncore.scoring import ScoringSystem
from fusioncore.streaming import StreamDetector, file_chunks

TEST_01 = "test_01_known_vehicle_known_attack"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """One quick run for the module; the session-wide cache lets a second module reuse its detectors."""
    out = tmp_path_factory.mktemp("scoring") / "run"
    assert main(["run", "--preset", "quick", "--fusion", "dqn,stacking", "--out", str(out),
                     "trainer.progress=false"]) == 0
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Score as `fusioncore detect` does: small batches, one thread (busy 2-core CI machines)."""
    with one_torch_thread():
        yield


def _test_files(scenario: str) -> tuple[Path, ...]:
    return get_plugins().registry.get("dataset", "synthetic").resolve(data_root()).tests[scenario]


def _scored(system: ScoringSystem, frames) -> np.ndarray:
    """The windows a run scores: after each capture's reference segment (fusioncore.adapt)."""
    starts, reference = scored_windows(frames, WindowSpec(100, 100), system.adaptation.adapter)
    return starts[~reference]


def _close(got, want, path=""):
    """Equal counts, floats equal to 1e-6: score statistics are taken on other batches than the run's."""
    if isinstance(want, dict):
        for k in got if isinstance(got, dict) else want:
            _close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), path
    else:
        assert got == want, path


def test_scores_reproduce_the_runs_own_test_metrics(quick_run):
    """Same windows, same captures' references as the run: every window metric comes out equal."""
    report = json.loads((quick_run / "report.json").read_text())
    frames = load_files(_test_files(TEST_01)).frames
    for method in ("dqn", "stacking", "vgae", "gat"):
        system = ScoringSystem.load(quick_run, method=method, batch_size=128)  # the quick preset's
        with pytest.raises(ConfigError, match="adapt the system"):
            system.score(frames, window_starts(frames, WindowSpec(100, 100))[:4])
        system = system.adapted_to(frames)
        starts = _scored(system, frames)
        labels, kinds = window_labels(frames, starts, 100)
        verdicts = system.score(frames, starts)
        got = scenario_metrics(labels, verdicts.fused, kinds, system.threshold)
        recorded = report["scenarios"][TEST_01][method]  # window metrics, then events and alarms
        _close(got, {k: recorded[k] for k in got}, method)
        assert np.array_equal(verdicts.alert, verdicts.fused > report["thresholds"][method])


def test_stream_scores_the_same_windows_as_batch(quick_run):
    """After its warm-up a stream scores exactly the windows, with exactly the statistics, of batch."""
    system = ScoringSystem.load(quick_run)
    frames = read_capture(_test_files(TEST_01)[1]).frames  # fuzzing
    adapted = system.adapted_to(frames)
    starts = _scored(adapted, frames)
    batch = adapted.score(frames, starts)

    def stream(chunks, **kw):
        out = []
        detector = StreamDetector(system, out.append, **kw)
        for chunk in chunks:
            detector.feed(chunk)
        return type(batch).concat(out), detector

    # one chunk and the batch path's batch size: the very same batches, bit for bit
    whole, _ = stream(file_chunks(frames, len(frames)), max_batch=system.batch_size)
    for field in ("window_id", "scores", "calibrated", "weights", "fused", "alert", "top_ids"):
        assert np.array_equal(getattr(whole, field), getattr(batch, field)), field

    # uneven chunks (single frames included): other batch compositions; the VGAE's dense
    # all-pairs edge loss pads to the batch's largest window, so sums differ in the last bits
    edges = np.unique(np.r_[0, np.cumsum(np.resize([1, 7, 333, 2048, 64], 200)), len(frames)])
    edges = edges[edges <= len(frames)]
    pieces = (frames[lo:hi] for lo, hi in itertools.pairwise(edges))
    chunked, detector = stream(
        (next(file_chunks(p, len(p))) for p in pieces), max_batch=16
    )
    assert np.array_equal(chunked.window_id, starts)
    assert np.array_equal(chunked.alert, batch.alert)
    assert np.array_equal(chunked.top_ids, batch.top_ids)
    np.testing.assert_allclose(chunked.scores, batch.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(chunked.fused, batch.fused, rtol=1e-4, atol=1e-5)
    assert detector.summary.frames == len(frames) and detector.summary.windows == len(starts)
    assert detector.summary.warmup_windows == starts[0] // 100 and detector.summary.warmup_frames > 0


def test_top_ids_name_the_flooding_id_and_the_spoofed_id(quick_run):
    system = ScoringSystem.load(quick_run)
    manifest = json.loads((_test_files(TEST_01)[0].parent.parent / "manifest.json").read_text())
    targets = {Path(f["path"]).name: f["target_ids"] for f in manifest["files"]}
    for name, unknown in (("DoS-suv.csv", True), ("spoofing-suv.csv", False)):
        path = next(p for p in _test_files(TEST_01) if p.name == name)
        frames = read_capture(path).frames
        adapted = system.adapted_to(frames)
        starts = _scored(adapted, frames)
        share = np.lib.stride_tricks.sliding_window_view(frames.label, 100)[starts].mean(axis=1)
        heavy = share > 0.2  # windows well inside an attack interval
        v = adapted.score(frames, starts)
        assert heavy.sum() >= 5
        assert np.all(v.top_ids[heavy, 0] == targets[name][0]), name
        assert np.all(v.top_unknown[heavy, 0] == unknown)
        if not unknown:  # the spoofed ID comes faster than its owner sends it
            assert np.all(v.top_deviation[heavy, 0] < -0.4)


def test_json_rows_carry_scores_weights_and_ids(quick_run):
    frames = read_capture(_test_files(TEST_01)[0]).frames
    system = ScoringSystem.load(quick_run).adapted_to(frames)
    starts = _scored(system, frames)[:50]
    rows = system.score(frames, starts).json_rows()
    row = json.loads(json.dumps(rows[0]))
    assert set(row) >= {"window", "start", "end", "frames", "scores", "weights", "fused", "alert", "top_ids"}
    assert set(row["scores"]) == {"vgae", "gat"} and row["frames"] == 100
    assert row["start"] <= row["end"]
    assert sum(row["weights"].values()) == pytest.approx(1.0)
    # stacking chooses no per-detector weights: said as null, not as made-up numbers
    stacked = ScoringSystem.load(quick_run, method="stacking").adapted_to(frames).score(frames, starts)
    stacked = stacked.json_rows()
    assert stacked[0]["weights"] is None and stacked[0]["method"] == "stacking"


def test_load_errors_say_what_is_wrong(quick_run, tmp_path):
    with pytest.raises(ConfigError, match="not a fusioncore run folder"):
        ScoringSystem.load(tmp_path)
    with pytest.raises(ConfigError, match="available: vgae, gat, dqn, stacking"):
        ScoringSystem.load(quick_run, method="nope")
    assert ScoringSystem.load(quick_run).method == "dqn"  # the run's first fusion by default


def test_a_bundle_saved_and_loaded_again_scores_identically(quick_run, tmp_path):
    """RunBundle owns the run's saved state: save it elsewhere, load it back, same verdicts."""
    import shutil

    from fusioncore.pipeline.bundle import RunBundle
    from fusioncore.pipeline.folder import MARKER

    bundle = RunBundle.load(quick_run)
    copy = tmp_path / "copy"
    bundle.save(copy)
    shutil.copy(quick_run / MARKER, copy / MARKER)
    again = RunBundle.load(copy)
    assert again.thresholds == bundle.thresholds and again.default_method == bundle.default_method
    frames = load_files(_test_files(TEST_01)).frames
    starts = window_starts(frames, WindowSpec(100, 100))[:300]
    for method in ("dqn", "stacking", "gat"):
        a = bundle.scoring_system(method, batch_size=128).adapted_to(frames).score(frames, starts)
        b = again.scoring_system(method, batch_size=128).adapted_to(frames).score(frames, starts)
        np.testing.assert_array_equal(a.fused, b.fused)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_an_old_or_unfinished_run_folder_is_refused_naming_the_version(quick_run, tmp_path):
    import json as _json
    import shutil

    from fusioncore.pipeline.bundle import BUNDLE_FORMAT
    from fusioncore.pipeline.folder import MARKER

    old = tmp_path / "old"
    (old / "model").mkdir(parents=True)
    (old / "model" / "model.json").write_text(_json.dumps({"format": 2}))
    expected = f"run bundle format 2; this fusioncore reads format {BUNDLE_FORMAT}"
    with pytest.raises(ConfigError, match=expected):
        ScoringSystem.load(old)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(quick_run, unfinished)
    (unfinished / MARKER).unlink()
    with pytest.raises(ConfigError, match="unfinished run"):
        ScoringSystem.load(unfinished)
    future = tmp_path / "future"
    shutil.copytree(quick_run, future)
    meta = _json.loads((future / "model" / "bundle.json").read_text())
    (future / "model" / "bundle.json").write_text(_json.dumps({**meta, "format": 99}))
    with pytest.raises(ConfigError, match=f"format 99; this fusioncore reads format {BUNDLE_FORMAT}"):
        ScoringSystem.load(future)


def test_detectors_score_a_batch_side_by_side_with_the_same_verdicts(quick_run, monkeypatch):
    """Two workers: each detector on its own thread for batches of 16+, identical verdicts to serial."""
    import threading

    import attrs

    system = ScoringSystem.load(quick_run, batch_size=64)
    frames = read_capture(_test_files(TEST_01)[1]).frames
    adapted = system.adapted_to(frames)
    starts = _scored(adapted, frames)[:150]  # 64 + 64 + 22 windows
    threads: dict[str, set[str]] = {n: set() for n in adapted.detectors}
    for name, model in adapted.detectors.items():
        def recording(batch, batch_idx=0, _name=name, _inner=model.predict_step):
            threads[_name].add(threading.current_thread().name)
            return _inner(batch, batch_idx)

        monkeypatch.setattr(model, "predict_step", recording)
    serial = attrs.evolve(adapted, workers=1).score(frames, starts)
    assert threads == {n: {"MainThread"} for n in adapted.detectors}
    for t in threads.values():
        t.clear()
    parallel = attrs.evolve(adapted, workers=2).score(frames, starts)
    assert all(t and all(name.startswith("fusioncore-score") for name in t) for t in threads.values())
    for field in ("scores", "calibrated", "weights", "fused", "alert", "top_ids", "top_deviation"):
        want, got = getattr(serial, field), getattr(parallel, field)
        assert np.array_equal(want, got, equal_nan=want.dtype.kind == "f"), field
    for t in threads.values():
        t.clear()
    attrs.evolve(adapted, workers=2).score(frames, starts[:4])  # under 16 windows: serial
    assert threads == {n: {"MainThread"} for n in adapted.detectors}


def test_detect_refuses_a_negative_worker_count(quick_run, capsys):
    capture = _test_files(TEST_01)[1]
    assert main(["detect", "--run", str(quick_run), "--input", str(capture), "--workers", "-1"]) != 0
    assert "--workers must be >= 0" in capsys.readouterr().err


def test_an_adapted_system_scores_zero_windows(quick_run):
    """An empty batch (a stream between windows, a capture shorter than its warm-up) is no error."""
    system = ScoringSystem.load(quick_run)
    frames = read_capture(_test_files(TEST_01)[1]).frames
    adapted = system.adapted_to(frames)
    assert adapted.captures is not None and adapted.captures.detector  # scores are normalised per capture
    none = np.zeros(0, np.int64)
    verdicts = adapted.score(frames, none)
    assert len(verdicts) == 0 and verdicts.scores.shape == (0, len(adapted.detectors))
    outputs = adapted.detector_outputs(frames, none)
    assert all(len(o) == 0 and o.features.shape == (0, len(o.feature_names)) for o in outputs.values())
