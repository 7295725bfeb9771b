"""Shared setup of the benchmark suites (``nox -s bench``; see docs/benchmarks.md).

Files named ``bench_*.py`` are collected here (the normal test run never
looks in this folder). ``--quick`` shrinks data sizes and rounds so a whole
run takes a few minutes; every comparison is still measured.

Every benchmark tags itself with :func:`benchmarks.common.describe` so
:mod:`benchmarks.summarize` can pair it with its counterpart.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from fusioncore.paths import redirected_dirs

from .common import BenchSizes, sizes_for
from .system import TRAINING, DataSource, TrainedSystem, resolve_data, train_system

_SOURCE_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fusioncore benchmarks")
    group.addoption("--quick", action="store_true", help="smaller data and fewer rounds (a few minutes)")
    group.addoption("--smoke", action="store_true",
                    help="tiny sizes: a correctness check, with --benchmark-disable")
    group.addoption(
        "--bench-data", choices=("auto", "real", "synthetic"), default="auto",
        help="auto: real hcrl_sa when ../shared/data has it, else synthetic",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    # a file named on the command line is collected by pytest itself
    named = parent.session.isinitpath(file_path)
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not named:
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.benchmark)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """CPU, cores, library versions, accelerator and data source, for the summary."""
    import numpy
    import torch
    import torch_geometric

    machine_info["fusioncore"] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
        "mode": sizes_for(config).mode,
        "data_source": config.stash.get(_SOURCE_KEY, "not loaded"),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@pytest.fixture(scope="session")
def sizes(pytestconfig: pytest.Config) -> BenchSizes:
    return sizes_for(pytestconfig)


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
    pytestconfig.stash[_SOURCE_KEY] = data.label
    return data


@pytest.fixture(scope="session")
def system(source: DataSource, sizes: BenchSizes, bench_env: Path) -> Iterator[TrainedSystem]:
    epochs, batches = sizes.training
    training = attrs.evolve(TRAINING, max_epochs=epochs, limit_train_batches=batches)
    trained = train_system(source, bench_env / "store", training)
    yield trained
    trained.store.close()
