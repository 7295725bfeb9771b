"""State encoders: detector outputs -> one standardised state vector per window.

Both encoders standardise every column with the mean and standard deviation of
the training outputs given to ``fit`` (finite values only). Non-finite values
(a NaN feature, an infinite reconstruction error) become 0 after
standardisation, i.e. "the training average": the state stays usable and the
Q-network sees no NaN. ``nonfinite="raise"`` makes them an error instead.
A column that is constant in training (or has no finite value) gets std 1, so
it encodes as a constant instead of dividing by zero.

Detectors are always taken in sorted name order, so the state layout does not
depend on the order of the mapping the core passes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fusioncore import ConfigError, DetectorOutput, StateEncoder

__all__ = ["DetectorFeaturesEncoder", "ScoresOnlyEncoder"]

_NONFINITE = ("zero", "raise")


class _StandardisedEncoder(StateEncoder):
    """Shared machinery: pick detectors, align rows, standardise columns."""

    def __init__(self, detectors: Sequence[str] | None = None, nonfinite: str = "zero") -> None:
        if nonfinite not in _NONFINITE:
            raise ConfigError(f"nonfinite must be one of {_NONFINITE}, got {nonfinite!r}")
        self.detectors: tuple[str, ...] | None = (
            tuple(sorted(detectors)) if detectors is not None else None
        )
        self.nonfinite = nonfinite
        self._columns: tuple[tuple[str, str], ...] | None = None  # (detector, column name)
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None

    # subclasses say which columns a detector contributes and how to read them
    def _column_names(self, output: DetectorOutput) -> tuple[str, ...]:  # pragma: no cover
        raise NotImplementedError

    def _column_values(self, output: DetectorOutput) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ API
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f"{det}.{col}" for det, col in self._fitted_columns())

    def fit(self, outputs: Mapping[str, DetectorOutput]) -> _StandardisedEncoder:
        chosen = self._choose(outputs)
        self._columns = tuple(
            (det, col) for det in chosen for col in self._column_names(outputs[det])
        )
        if not self._columns:
            raise ConfigError(
                f"detectors {list(chosen)} provide no columns for {self.name!r}; "
                "use the 'scores-only' encoder"
            )
        raw = self._raw(outputs, chosen)
        finite = np.isfinite(raw)
        count = finite.sum(axis=0)
        safe = np.where(finite, raw, 0.0).astype(np.float64)
        mean = safe.sum(axis=0) / np.maximum(count, 1)
        var = (np.where(finite, safe - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt(var)
        self._mean = mean.astype(np.float32)
        self._std = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        return self

    def encode(self, outputs: Mapping[str, DetectorOutput]) -> np.ndarray:
        chosen = tuple(dict.fromkeys(det for det, _ in self._fitted_columns()))
        missing = [d for d in chosen if d not in outputs]
        if missing:
            raise ConfigError(
                f"encoder was fitted on detectors {list(chosen)}; missing outputs for {missing}"
            )
        for det in chosen:
            expected = tuple(col for d, col in self._fitted_columns() if d == det)
            got = self._column_names(outputs[det])
            if got != expected:
                raise ConfigError(
                    f"detector {det!r} columns changed since fit: expected {list(expected)}, "
                    f"got {list(got)}"
                )
        raw = self._raw(outputs, chosen)
        bad = ~np.isfinite(raw)
        if bad.any() and self.nonfinite == "raise":
            rows, cols = np.nonzero(bad)
            raise ConfigError(
                f"{int(bad.sum())} non-finite values, first in column "
                f"{self.state_names[cols[0]]!r} of row {rows[0]} (nonfinite='raise')"
            )
        assert self._mean is not None and self._std is not None
        with np.errstate(invalid="ignore", over="ignore"):
            state = (raw - self._mean) / self._std
        state[bad] = 0.0
        return np.ascontiguousarray(state, dtype=np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        columns = self._fitted_columns()
        assert self._mean is not None and self._std is not None
        return {
            "detectors": np.asarray([d for d, _ in columns], dtype=str),
            "columns": np.asarray([c for _, c in columns], dtype=str),
            "mean": self._mean.copy(),
            "std": self._std.copy(),
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        dets = [str(d) for d in state["detectors"]]
        cols = [str(c) for c in state["columns"]]
        mean = np.asarray(state["mean"], dtype=np.float32)
        std = np.asarray(state["std"], dtype=np.float32)
        if not (len(dets) == len(cols) == len(mean) == len(std)):
            raise ConfigError("encoder state arrays have inconsistent lengths")
        self._columns = tuple(zip(dets, cols))
        self._mean, self._std = mean, std

    # -------------------------------------------------------------- helpers
    def _fitted_columns(self) -> tuple[tuple[str, str], ...]:
        if self._columns is None:
            raise ConfigError(f"{type(self).__name__} is not fitted: call fit(outputs) first")
        return self._columns

    def _choose(self, outputs: Mapping[str, DetectorOutput]) -> tuple[str, ...]:
        if not outputs:
            raise ConfigError("no detector outputs to encode")
        if self.detectors is None:
            return tuple(sorted(outputs))
        missing = [d for d in self.detectors if d not in outputs]
        if missing:
            raise ConfigError(
                f"detectors {missing} were requested but only {sorted(outputs)} have outputs"
            )
        return self.detectors

    def _raw(self, outputs: Mapping[str, DetectorOutput], chosen: Sequence[str]) -> np.ndarray:
        first = outputs[chosen[0]]
        for det in chosen[1:]:
            other = outputs[det]
            if len(other) != len(first) or not np.array_equal(other.window_ids, first.window_ids):
                raise ConfigError(
                    f"rows of detectors {chosen[0]!r} and {det!r} are not aligned "
                    "(window_ids differ); outputs must cover the same windows in the same order"
                )
        blocks = [self._column_values(outputs[det]) for det in chosen]
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)


class DetectorFeaturesEncoder(_StandardisedEncoder):
    """Every chosen detector's named features, concatenated (``<detector>.<feature>``), standardised.

    ``detectors``: which outputs to use (default: all passed to ``fit``);
    ``nonfinite``: ``"zero"`` (default, non-finite -> 0 after standardisation)
    or ``"raise"``.
    """

    name = "detector-features"

    def _column_names(self, output: DetectorOutput) -> tuple[str, ...]:
        return output.feature_names

    def _column_values(self, output: DetectorOutput) -> np.ndarray:
        return output.features


class ScoresOnlyEncoder(_StandardisedEncoder):
    """Each chosen detector's score (``<detector>.score``), standardised."""

    name = "scores-only"

    def _column_names(self, output: DetectorOutput) -> tuple[str, ...]:
        return ("score",)

    def _column_values(self, output: DetectorOutput) -> np.ndarray:
        return output.score[:, None]
