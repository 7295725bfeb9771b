"""Whole ``fusioncore`` commands, timed in subprocesses: what a user waits for.

**A second run with a warm store vs a cold one.** Every round, in a fresh
cache folder (``FUSIONCORE_CACHE_DIR``), the same ``fusioncore run`` three
times, one after the other:

1. *first run*: the cache folder is empty: parse the captures, train both
   detectors, score every split, fit the fusions, evaluate;
2. *store cold*: the prediction store removed, parsed columns and trained
   detectors kept (the detector reuse cache), so it reuses those and
   recomputes every detector output;
3. *second run*: everything from run 2 kept, so it reuses parsed columns,
   trained detectors and every stored output.

Runs 2 and 3 differ only in the store: that pair is what the store buys a
second run. Runs 1 and 3 are a user's first and second run. Each time is
the wall time of the whole command (interpreter start and imports
included); ``report.json``'s ``timings`` split it by stage.

**Detector training throughput**: ``fusioncore train`` with a fixed number
of full batches and no early stopping, so the windows trained are known
exactly (checked against the training log); windows per second of each
detector's training stage.

The rounds interleave the variants, so drift in the machine's load hits
them alike. These benchmarks time with ``time.perf_counter`` themselves and
hand their rows to the summary (``benchmarks/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli_runs import (
    ALL_DETECTORS,
    PREDICTIONS,
    RunTiming,
    Side,
    dataset_options,
    drop_cache,
    fusioncore_run,
    train_throughput,
)
from .common import BenchSizes, row
from .system import REPO, DataSource

COMPARISON = "prediction store, whole `fusioncore run`"
FIRST, STORE_COLD, SECOND = ("first run (fresh cache folder)", "store cold, detectors reused",
                             "second run (store warm)")
VARIANTS = {
    FIRST: ("an empty cache folder: parses the captures, trains both detectors, scores every split, "
            "fits and evaluates", []),
    STORE_COLD: ("reuses parsed columns and trained detectors, recomputes every detector output "
                 "(prediction store emptied)", []),
    SECOND: ("reuses parsed columns, trained detectors and every stored detector output",
             [STORE_COLD, FIRST]),
}


_DEFAULT_NAMES = ("--detectors", "vgae,gat", "--fusion", "dqn,mean,weighted,stacking")


def _config_text(options: tuple[str, ...]) -> str:
    extra = [o for o in options if o not in _DEFAULT_NAMES]
    return "default configuration" if not extra else " ".join(extra)


@pytest.fixture(scope="module")
def here(git_stamp) -> Side:
    return Side.here(REPO, git_stamp.get("commit"))


def test_run_with_warm_and_cold_store(here, source: DataSource, sizes: BenchSizes, bench_env: Path,
                                      tmp_path_factory, fusioncore_rows):
    options = [*dataset_options(source), *sizes.run_options]
    runs: dict[str, list[RunTiming]] = {v: [] for v in VARIANTS}
    for r in range(sizes.cli_rounds):
        workdir = tmp_path_factory.mktemp(f"cli-round{r}")
        cache = workdir / "cache"
        runs[FIRST].append(fusioncore_run(here, "run", options, workdir=workdir, cache=cache,
                                          data=bench_env / "data", name="first"))
        drop_cache(cache, PREDICTIONS)
        runs[STORE_COLD].append(fusioncore_run(here, "run", options, workdir=workdir, cache=cache,
                                               data=bench_env / "data", name="store-cold"))
        runs[SECOND].append(fusioncore_run(here, "run", options, workdir=workdir, cache=cache,
                                           data=bench_env / "data", name="second"))
    # what each run reused is a fact of the run, not an assumption of the benchmark
    for variant, reused, hits in ((FIRST, False, False), (STORE_COLD, True, False), (SECOND, True, True)):
        for run in runs[variant]:
            cache = run.report["prediction_cache"]
            assert all(t["reused"] == reused for t in run.report["training"].values()), variant
            assert (cache["misses"] == 0 and cache["hits"] > 0) if hits else cache["hits"] == 0, variant
    config = _config_text(sizes.run_options)
    for variant, (does, baselines) in VARIANTS.items():
        timed = runs[variant]
        stages = sorted({s for run in timed for s in run.timings})
        fusioncore_rows.append(row(
            [run.wall for run in timed], comparison=COMPARISON, case=f"{source.name}, {config}",
            variant=variant, does=does, baselines=baselines, items=1, unit="runs", source=source,
            work=f"`fusioncore run {' '.join(sizes.run_options)}` on {source.name}, wall time of the whole "
                 "command in a subprocess",
            stages={s: [run.timings.get(s, 0.0) for run in timed] for s in stages},
            outside_stages=[run.outside_stages for run in timed],
            store={"hits": [run.report["prediction_cache"]["hits"] for run in timed],
                   "misses": [run.report["prediction_cache"]["misses"] for run in timed]},
            windows=timed[0].report.get("windows", {}),
        ))


def test_detector_training_throughput(here, source: DataSource, sizes: BenchSizes, bench_env: Path,
                                      tmp_path_factory, fusioncore_rows):
    options = [*dataset_options(source), *sizes.train_options]
    if source.name != "hcrl_sa" and not any(o.startswith("batch_size=") for o in options):
        # the synthetic training split holds fewer than 8 batches of 256 benign windows
        options.append("batch_size=64")
    per_detector: dict[str, list[tuple[int, float]]] = {}
    for r in range(sizes.cli_rounds):
        workdir = tmp_path_factory.mktemp(f"train-round{r}")
        found = train_throughput(here, options, workdir=workdir, cache=workdir / "cache",
                                 data=bench_env / "data", name="train")
        for det, measured in found.items():
            per_detector.setdefault(det, []).append(measured)
    for det, measured in per_detector.items():
        windows = measured[0][0]
        does = (f"report.json's train.{det} stage: {windows:,} training windows (fixed full batches, "
                "no early stopping), its per-epoch validation pass and the calibration pass")
        if det == ALL_DETECTORS:
            does = (f"every detector's training windows ({windows:,}) over the wall time of the whole "
                    "training: report.json's `train` span where the detectors trained side by side "
                    "(trainer.jobs), else the sum of the train.<name> stages")
        fusioncore_rows.append(row(
            [seconds for _, seconds in measured], comparison="detector training", case=det, variant=det,
            does=does,
            items=windows, unit="windows", source=source,
            work=f"`fusioncore train {' '.join(options[len(dataset_options(source)):])}` on {source.name}",
        ))
