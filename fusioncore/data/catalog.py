"""Dataset catalog: named datasets in the can-train-and-test v1.5 layout.

::

    <data root>/<dataset>/
        train_01_attack_free/*.csv[.gz]
        train_02_with_attacks/*.csv[.gz]
        test_01_known_vehicle_known_attack/*.csv[.gz]
        test_02_.../  (every test_* folder is one scenario)

Train folders form the training pool; byte-identical files (hcrl_sa ships
``train_02`` copies of the ``train_01`` files) are read once. Validation is a
held-out time block at the end of each training file (see
:mod:`fusioncore.data.datamodule`), never random windows. A test file
byte-identical to a training file would leak; it is dropped from its test
scenario and listed in ``duplicates`` (``fusioncore datasets`` shows it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs

from fusioncore.contracts import DatasetFiles
from fusioncore.errors import DatasetNotFoundError

__all__ = ["CANTrainAndTestDataset", "builtin_datasets", "file_sha256"]

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


@attrs.frozen
class CANTrainAndTestDataset:
    """A dataset in the can-train-and-test layout, found under the data root."""

    name: str
    description: str
    vehicles: str = ""

    def resolve(self, data_root: Path) -> DatasetFiles:
        root = Path(data_root) / self.name
        if not root.is_dir() and Path(data_root).name == self.name:
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
        for folder in test_dirs:
            files = []
            for path in _capture_files(folder):
                digest = file_sha256(path)
                if digest in seen:
                    duplicates[path] = seen[digest]
                    continue
                seen[digest] = path
                files.append(path)
            if files:
                tests[folder.name] = tuple(files)
        if not train:
            raise DatasetNotFoundError(f"dataset {self.name!r}: no .csv files in {root}/train_*")
        return DatasetFiles(
            name=self.name, root=root, train=tuple(train), tests=tests, duplicates=duplicates
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
