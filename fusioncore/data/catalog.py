"""Dataset catalog: named datasets and folders in the can-train-and-test v1.5 layout.

::

    <data root>/<dataset>/
        train_01_attack_free/*.csv[.gz]
        train_02_with_attacks/*.csv[.gz]
        test_01_known_vehicle_known_attack/*.csv[.gz]
        test_02_.../  (every test_* folder is one scenario)

:func:`resolve_dataset` turns a ``--dataset`` value into a
:class:`~fusioncore.contracts.DatasetSource`: a registered name, a folder in
this layout under the data root, or a path to such a folder -- your own
captures need no plugin.

Train folders form the training pool; byte-identical files (hcrl_sa ships
``train_02`` copies of the ``train_01`` files) are read once. The training
pool is split in time (see :mod:`fusioncore.data.splits`), never by random
window. A test file byte-identical to a training file would leak, and one
identical to an earlier test file would be scored twice; it is dropped from
its scenario with a warning, listed in ``duplicates`` and, per scenario, in
``dropped_tests`` (``fusioncore datasets`` and the run report show them).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import attrs

from fusioncore.contracts import DatasetFiles, DatasetSource
from fusioncore.errors import DatasetNotFoundError, UnknownComponentError

__all__ = [
    "CANTrainAndTestDataset",
    "builtin_datasets",
    "file_sha256",
    "is_dataset_folder",
    "local_datasets",
    "resolve_dataset",
]

log = logging.getLogger(__name__)

SOURCE_URL = "https://bitbucket.org/brooke-lampe/can-train-and-test-v1.5"
_SUFFIXES = (".csv", ".csv.gz")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _capture_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_SUFFIXES))


def is_dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` is in the can-train-and-test layout (``train_*/`` and ``test_*/`` folders)."""
    folder = Path(folder)
    try:
        return folder.is_dir() and any(p.is_dir() for p in folder.glob("train_*")) and any(
            p.is_dir() for p in folder.glob("test_*")
        )
    except OSError:
        return False


@attrs.frozen
class CANTrainAndTestDataset:
    """A dataset in the can-train-and-test layout, found under the data root (or at ``path``)."""

    name: str
    description: str
    vehicles: str = ""
    #: an explicit folder (a dataset given by path); ``None``: ``<data root>/<name>``
    path: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p))

    def resolve(self, data_root: Path) -> DatasetFiles:
        root = self.path if self.path is not None else Path(data_root) / self.name
        if self.path is None and not root.is_dir() and Path(data_root).name == self.name:
            root = Path(data_root)  # --data-root may point at the dataset itself
        train_dirs = sorted(root.glob("train_*")) if root.is_dir() else []
        test_dirs = sorted(root.glob("test_*")) if root.is_dir() else []
        if not train_dirs or not test_dirs:
            raise DatasetNotFoundError(
                f"dataset {self.name!r} not found: looked in {root} "
                f"(data root {data_root}; set --data-root or FUSIONCORE_DATA). Expected "
                f"{root}/train_*/*.csv and {root}/test_*/*.csv in the can-train-and-test v1.5 "
                f"layout; the dataset is published at {SOURCE_URL}"
            )
        seen: dict[str, Path] = {}
        duplicates: dict[Path, Path] = {}
        train: list[Path] = []
        for folder in train_dirs:
            for path in _capture_files(folder):
                digest = file_sha256(path)
                if digest in seen:
                    duplicates[path] = seen[digest]
                    continue
                seen[digest] = path
                train.append(path)
        tests: dict[str, tuple[Path, ...]] = {}
        dropped: dict[str, tuple[Path, ...]] = {}
        for folder in test_dirs:
            files, lost = [], []
            for path in _capture_files(folder):
                digest = file_sha256(path)
                if digest in seen:
                    duplicates[path] = seen[digest]
                    lost.append(path)
                    log.warning("%s: byte-identical to %s; left out of scenario %s", path, seen[digest],
                                folder.name)
                    continue
                seen[digest] = path
                files.append(path)
            if files:
                tests[folder.name] = tuple(files)
            elif lost:
                log.warning("scenario %s is left out: all its files duplicate earlier ones", folder.name)
            if lost:
                dropped[folder.name] = tuple(lost)
        if not train:
            raise DatasetNotFoundError(f"dataset {self.name!r}: no .csv files in {root}/train_*")
        return DatasetFiles(
            name=self.name, root=root, train=tuple(train), tests=tests, duplicates=duplicates,
            dropped_tests=dropped,
        )


def builtin_datasets() -> list[CANTrainAndTestDataset]:
    sets = [
        CANTrainAndTestDataset("hcrl_ch", "HCRL Car-Hacking (Hyundai Sonata): DoS, fuzzing, gear, RPM"),
        CANTrainAndTestDataset(
            "hcrl_sa", "HCRL Survival Analysis: Kia Soul, Hyundai Sonata, Chevrolet Spark"
        ),
    ]
    sets += [
        CANTrainAndTestDataset(f"set_{i:02d}", f"can-train-and-test set_{i:02d}")
        for i in range(1, 5)
    ]
    return sets


def local_datasets(data_root: Path) -> list[str]:
    """Names of the folders under ``data_root`` that are in the can-train-and-test layout."""
    root = Path(data_root)
    try:
        return sorted(p.name for p in root.iterdir() if is_dataset_folder(p)) if root.is_dir() else []
    except OSError:
        return []


def resolve_dataset(spec: str, data_root: Path, registered: Mapping[str, DatasetSource]) -> DatasetSource:
    """The dataset a ``--dataset`` value names, in this order:

    1. a registered dataset name (``hcrl_sa``, ``synthetic``, a plugin's);
    2. a folder ``<data_root>/<spec>`` in the can-train-and-test layout (``mycar``);
    3. a path to such a folder (``~/captures/mycar``, ``./mycar``).

    Anything else is an :class:`~fusioncore.errors.UnknownComponentError`
    listing the registered names and the layout folders found under the data
    root; a path that exists but is not in the layout says what is missing.
    """
    if spec in registered:
        return registered[spec]
    root = Path(data_root)
    looks_like_path = any(sep in spec for sep in ("/", "\\")) or spec.startswith(("~", "."))
    if not looks_like_path and is_dataset_folder(root / spec):
        folder = root / spec
        return CANTrainAndTestDataset(spec, f"can-train-and-test layout folder {folder}", path=folder)
    folder = Path(spec).expanduser()
    if is_dataset_folder(folder):
        folder = folder.resolve()
        return CANTrainAndTestDataset(folder.name, f"can-train-and-test layout folder {folder}", path=folder)
    if folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} is not a dataset folder: expected train_*/ and test_*/ sub-folders of capture "
            f"files (the can-train-and-test layout, e.g. train_01_attack_free/, "
            f"test_01_known_vehicle_known_attack/)"
        )
    error = UnknownComponentError("dataset", spec, sorted({*registered, *local_datasets(root)}))
    error.args = (f"{error} Any folder in the can-train-and-test layout works too: its name under "
                  f"the data root ({root}) or its path.",)
    raise error
