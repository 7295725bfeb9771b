"""The built-in data plugin: capture formats and the dataset catalog.

Registered through the ``fusioncore`` entry-point group like any third-party
plugin, so the core only ever sees formats and datasets through its registry.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from fusioncore.contracts import DatasetFiles
from fusioncore.data.catalog import CANTrainAndTestDataset, builtin_datasets
from fusioncore.errors import DatasetNotFoundError
from fusioncore.hookspecs import hookimpl
from fusioncore.paths import cache_dir

__all__ = ["SYNTHETIC_LARGE", "SYNTHETIC_MEDIUM", "SyntheticDataset"]


@attrs.frozen
class SyntheticDataset:
    """Simulated vehicles and attacks, generated on first use.

    Generated data is a cache, not input: it is written under the user cache
    dir (``$FUSIONCORE_CACHE_DIR/datasets/<name>``), never into the data
    root, which may hold read-only captures. A folder of the same name already
    in the data root (e.g. one a user generated and edited) takes precedence.
    ``scale`` stretches every capture, ``drives`` multiplies the captures (see
    :mod:`fusioncore.data.synthetic`).
    """

    name: str = "synthetic"
    description: str = (
        "simulated vehicles (embedded default): generated on first use, deterministic by seed"
    )
    seed: int = 0
    scale: float = 1.0
    drives: int = 1

    def location(self, data_root: Path) -> Path:
        user_copy = Path(data_root) / self.name
        if (user_copy / "manifest.json").exists():
            return user_copy
        return cache_dir("datasets", create=False) / self.name

    def is_generated(self, data_root: Path) -> bool:
        return (self.location(data_root) / "manifest.json").exists()

    def resolve(self, data_root: Path) -> DatasetFiles:
        from fusioncore.data.synthetic import ensure_synthetic

        target = self.location(data_root)
        # a bar only where generating takes more than a moment
        progress = self.scale * self.drives > 4
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder = ensure_synthetic(target, seed=self.seed, scale=self.scale, drives=self.drives,
                                      progress=progress)
        except OSError as exc:  # a read-only or full cache that does not hold it yet
            raise DatasetNotFoundError(
                f"cannot generate the {self.name} dataset into {target}: {exc.strerror or exc}; "
                "point FUSIONCORE_CACHE_DIR at a writable folder"
            ) from None
        return CANTrainAndTestDataset(self.name, self.description).resolve(folder.parent)


#: The scale tests' datasets: the same 9-minute captures, one drive (6 M frames) or ten (62 M).
SYNTHETIC_MEDIUM = SyntheticDataset(
    "synthetic-medium",
    "simulated, 21 captures of ~9 min, ~6 M frames (a tenth of synthetic-large); generated on first use",
    scale=13.0,
)
SYNTHETIC_LARGE = SyntheticDataset(
    "synthetic-large",
    "simulated scale test, 210 captures of ~9 min, ~62 M frames, 3 vehicles; generated on first use "
    "(about 3 GB of CSV, a few minutes)",
    scale=13.0,
    drives=10,
)


@hookimpl
def fusioncore_register_formats(register) -> None:
    from fusioncore.data.formats import BUILTIN_FORMATS

    for reader in BUILTIN_FORMATS:
        register(reader.name, reader, reader.description)


@hookimpl
def fusioncore_register_datasets(register) -> None:
    register("synthetic", SyntheticDataset())
    for dataset in (SYNTHETIC_MEDIUM, SYNTHETIC_LARGE):
        register(dataset.name, dataset, dataset.description)
    for dataset in builtin_datasets():
        register(dataset.name, dataset, dataset.description)
