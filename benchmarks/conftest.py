"""Shared setup of the benchmark suites (``nox -s bench``; see docs/benchmarks.md).

Files named ``bench_*.py`` are collected here (the normal test run never
looks in this folder); ``bench_baseline.py`` only with ``--baseline``.
``--quick`` shrinks data sizes and rounds so a whole run takes a few
minutes; every comparison is still measured.

Every measurement tags itself (:mod:`benchmarks.common`) so
:mod:`benchmarks.summarize` can pair it with its counterpart. The
subprocess benchmarks time themselves and leave their rows in the session;
:func:`pytest_benchmark_update_json` writes them, the side-by-side figures
and the run's stamp (:mod:`benchmarks.stamp`) into the same JSON file as
pytest-benchmark's own measurements: one file per run.

A full-size run refuses to start on a tree with uncommitted changes
(``--allow-dirty`` overrides; the stamp then says so); ``--quick`` and
``--smoke`` runs are allowed and stamped dirty.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from fusioncore.paths import redirected_dirs

from .common import BenchSizes, sizes_for
from .stamp import dirty_refusal, git_state, load_average, machine
from .system import REPO, TRAINING, DataSource, TrainedSystem, resolve_data, train_system

_SOURCE = pytest.StashKey[str]()
_STAMP = pytest.StashKey[dict]()
_ROWS = pytest.StashKey[list]()
_SIDE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fusioncore benchmarks")
    group.addoption("--quick", action="store_true", help="smaller data and fewer rounds (a few minutes)")
    group.addoption("--smoke", action="store_true",
                    help="tiny sizes: a correctness check, with --benchmark-disable")
    group.addoption(
        "--bench-data", choices=("auto", "real", "synthetic"), default="auto",
        help="auto: real hcrl_sa when ../shared/data has it, else synthetic",
    )
    group.addoption("--allow-dirty", action="store_true",
                    help="run full sizes on a tree with uncommitted changes (stamped dirty)")
    group.addoption("--baseline", metavar="COMMIT",
                    help="also measure COMMIT side by side with this tree (e.g. efc4daf)")
    group.addoption("--baseline-env", choices=("venv", "shared"), default="venv",
                    help="venv: install the baseline into its own virtualenv (default); shared: run its "
                         "sources with this environment's packages")
    group.addoption("--baseline-dir", metavar="DIR",
                    help="keep the baseline checkout and virtualenv in DIR (reused next time)")
    group.addoption("--baseline-rounds", type=int, help="rounds of the side by side (default: the mode's)")


def pytest_configure(config: pytest.Config) -> None:
    rounds = config.getoption("--baseline-rounds")
    if rounds is not None and rounds < 1:
        raise pytest.UsageError("--baseline-rounds must be >= 1")
    git = git_state(REPO)
    mode = sizes_for(config).mode
    refused = dirty_refusal(git, mode, config.getoption("--allow-dirty"))
    if refused:
        raise pytest.UsageError(refused)
    config.stash[_STAMP] = {
        "git": git, "mode": mode, "load_before": load_average(), "started": time.time(),
        "argv": sys.argv[1:], "baseline": config.getoption("--baseline"),
    }
    config.stash[_ROWS] = []
    config.stash[_SIDE] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    # a file named on the command line is collected by pytest itself
    named = parent.session.isinitpath(file_path)
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_") or named:
        return None
    if file_path.name == "bench_baseline.py" and not parent.config.getoption("--baseline"):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.benchmark)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """CPU, cores, memory, library versions, threads and data source, for pytest-benchmark's storage."""
    machine_info["fusioncore"] = {**machine(), "mode": sizes_for(config).mode,
                                  "data_source": config.stash.get(_SOURCE, "not loaded")}


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    """The run's stamp, the subprocess rows and the side-by-side figures, beside pytest-benchmark's."""
    stamp: dict[str, Any] = dict(config.stash[_STAMP])
    stamp.update(machine=machine(), load_after=load_average(), finished=time.time(),
                 data_source=config.stash.get(_SOURCE, "not loaded"))
    output_json["fusioncore"] = {"stamp": stamp, "rows": list(config.stash[_ROWS]),
                                 "side_by_side": dict(config.stash[_SIDE]) or None}


@pytest.fixture(scope="session")
def sizes(pytestconfig: pytest.Config) -> BenchSizes:
    return sizes_for(pytestconfig)


@pytest.fixture(scope="session")
def git_stamp(pytestconfig: pytest.Config) -> dict:
    return pytestconfig.stash[_STAMP]["git"]


@pytest.fixture(scope="session")
def fusioncore_rows(pytestconfig: pytest.Config) -> list:
    """Rows the subprocess benchmarks time themselves (see ``benchmarks.common.row``)."""
    return pytestconfig.stash[_ROWS]


@pytest.fixture(scope="session")
def side_by_side_result(pytestconfig: pytest.Config) -> dict:
    return pytestconfig.stash[_SIDE]


@pytest.fixture(scope="session", autouse=True)
def bench_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Caches, generated data and the prediction store live in a temp dir, never next to inputs."""
    with redirected_dirs(tmp_path_factory.mktemp("fusioncore-bench")) as base:
        yield base


@pytest.fixture(scope="session")
def source(pytestconfig: pytest.Config, bench_env: Path) -> DataSource:
    choice = pytestconfig.getoption("--bench-data")
    data = resolve_data(prefer_real=choice != "synthetic")
    if choice == "real" and data.name != "hcrl_sa":
        pytest.fail("--bench-data real: ../shared/data/can-train-and-test/hcrl_sa not found")
    pytestconfig.stash[_SOURCE] = data.label
    return data


@pytest.fixture(scope="session")
def system(source: DataSource, sizes: BenchSizes, bench_env: Path) -> Iterator[TrainedSystem]:
    epochs, batches = sizes.training
    training = attrs.evolve(TRAINING, max_epochs=epochs, limit_train_batches=batches)
    trained = train_system(source, bench_env / "store", training)
    yield trained
    trained.store.close()
