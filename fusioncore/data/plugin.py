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

__all__ = ["SyntheticDataset"]


@attrs.frozen
class SyntheticDataset:
    """Simulated vehicles and attacks, generated on first use.

    Generated data is a cache, not input: it is written under the user cache
    dir (``$FUSIONCORE_CACHE_DIR/datasets/synthetic``), never into the data
    root, which may hold read-only captures. A ``synthetic`` folder already in
    the data root (e.g. one a user generated and edited) takes precedence.
    """

    name: str = "synthetic"
    description: str = (
        "simulated vehicles (embedded default): generated on first use, deterministic by seed"
    )
    seed: int = 0

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
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder = ensure_synthetic(target, seed=self.seed)
        except OSError as exc:  # a read-only or full cache that does not hold it yet
            raise DatasetNotFoundError(
                f"cannot generate the {self.name} dataset into {target}: {exc.strerror or exc}; "
                "point FUSIONCORE_CACHE_DIR at a writable folder"
            ) from None
        return CANTrainAndTestDataset(self.name, self.description).resolve(folder.parent)


@hookimpl
def fusioncore_register_formats(register) -> None:
    from fusioncore.data.formats import BUILTIN_FORMATS

    for reader in BUILTIN_FORMATS:
        register(reader.name, reader, reader.description)


@hookimpl
def fusioncore_register_datasets(register) -> None:
    register("synthetic", SyntheticDataset())
    for dataset in builtin_datasets():
        register(dataset.name, dataset, dataset.description)
