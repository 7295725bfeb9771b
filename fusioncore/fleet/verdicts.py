"""One capture's verdicts: every method's score per window, the decision and the alarm, as Parquet.

:func:`score_capture` reads a capture, cuts it into the run's windows (one
file is one stream: windows never cross files) and scores every window with
every method of the run in one pass of the detectors: each detector's own
score and each fusion's fused score, each against its own validation
threshold, exactly as ``fusioncore run`` evaluated them. The deciding
method (``--method``, default the run's first fusion) gives the
``decision`` column; ``alarm`` is that decision through an alarm stage
(:mod:`fusioncore.evaluation.alarms`; by default the one the run was
evaluated with), run over the capture's windows as one stretch.

:func:`write_verdicts` writes one Parquet file per capture, atomically; the
capture's summary row (frames, windows, alerts, labelled attack windows,
errors) travels in the file's schema metadata, so a summary of a whole
folder is read from the files' footers alone (see :mod:`fusioncore.fleet.summary`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fusioncore.adapt.capture import SavedAdaptation, fit_capture_states, normalise_output
from fusioncore.adapt.splits import test_windows
from fusioncore.contracts import DetectorOutput, FormatReader
from fusioncore.data.windows import WindowSpec, window_labels, window_starts
from fusioncore.errors import ConfigError, FusionCoreError
from fusioncore.evaluation.alarms import AlarmStage, apply_alarm_stage
from fusioncore.scoring import checked_fuse, fusion_data

if TYPE_CHECKING:
    from fusioncore.pipeline.bundle import RunBundle

__all__ = ["CaptureVerdicts", "read_summary_row", "score_capture", "write_verdicts"]

#: Formats whose files carry per-frame attack labels (others score unlabelled).
LABELLED_FORMATS = frozenset({"can-train-and-test", "hcrl-car-hacking"})
META_KEY = b"fusioncore.capture"


@attrs.frozen(eq=False)
class CaptureVerdicts:
    """The verdict table of one capture (``columns``) and its summary row (``row``)."""

    columns: Mapping[str, np.ndarray]
    row: Mapping[str, Any]


def _detector_outputs(bundle: RunBundle, builder, frames, starts: np.ndarray, batch_size: int,
                      device) -> dict[str, DetectorOutput]:
    names = tuple(bundle.detectors)
    parts: dict[str, list[DetectorOutput]] = {n: [] for n in names}
    for lo in range(0, len(starts), batch_size):
        rows = starts[lo:lo + batch_size]
        batch = builder.build(frames, rows, window_ids=np.arange(lo, lo + len(rows)))
        if device is not None:
            batch = batch.to(device)
        for name, model in bundle.detectors.items():
            parts[name].append(model.predict_step(batch, 0))
    return {n: DetectorOutput.concat(p) for n, p in parts.items()}


def _fused(bundle: RunBundle, outputs: Mapping[str, DetectorOutput]) -> dict[str, np.ndarray]:
    data = fusion_data(outputs, tuple(bundle.detectors), bundle.calibrators, bundle.encoder)
    return {name: checked_fuse(fusion, name, data) for name, fusion in bundle.fusions.items()}


def _method_scores(bundle: RunBundle, frames, starts: np.ndarray, batch_size: int, device,
                   adaptation: SavedAdaptation | None = None, spec: WindowSpec | None = None) -> dict:
    """Every method's score on the windows at ``starts``: detectors' raw scores, fusions' fused ones.

    With an adapting run (``adaptation.uses_reference``) the capture's own
    reference segment first gives its profile and score statistics, and every
    score is standardised with them, exactly as ``fusioncore run`` and
    ``detect`` do (:func:`fusioncore.adapt.capture.fit_capture_states`).
    """
    names = tuple(bundle.detectors)
    builder, states = bundle.builder, None
    if adaptation is not None and adaptation.uses_reference:
        states = fit_capture_states(
            adaptation, frames, spec or bundle.builder.spec,
            outputs=lambda f, s, table: _detector_outputs(
                bundle, bundle.builder if table is None else bundle.builder.with_reference(table),
                f, s, batch_size, device),
            fuse=(lambda outs: _fused(bundle, outs)) if bundle.fusions else None,
        )
        if states.table is not None:
            builder = bundle.builder.with_reference(states.table)
    outputs = _detector_outputs(bundle, builder, frames, starts, batch_size, device)
    capture = states.capture_of(frames, starts) if states is not None else None
    if states is not None and states.detector:
        outputs = {n: normalise_output(adaptation, n, o, *(a[capture] for a in states.detector[n]))
                   if n in states.detector else o for n, o in outputs.items()}
    scores = {n: outputs[n].score.astype(np.float64) for n in names}
    if bundle.fusions and len(starts):
        for name, fused in _fused(bundle, outputs).items():
            if states is not None and name in states.fused:
                center, scale = states.fused[name]
                fused = adaptation.fused_scalers[name].apply(fused, center[capture], scale[capture])
            scores[name] = np.asarray(fused, np.float64).reshape(len(starts))
    elif bundle.fusions:
        scores.update({name: np.zeros(0) for name in bundle.fusions})
    return scores


def _empty_columns(methods: Sequence[str]) -> dict[str, np.ndarray]:
    cols = {"window": np.zeros(0, np.int64), "start_row": np.zeros(0, np.int64),
            "start_time": np.zeros(0), "end_time": np.zeros(0)}
    cols.update({f"score_{m}": np.zeros(0) for m in methods})
    cols.update({"decision": np.zeros(0, bool), "alarm": np.zeros(0, bool), "label": np.zeros(0, np.int8)})
    return cols


def score_capture(
    bundle: RunBundle,
    path: Path,
    *,
    method: str,
    name: str,
    stride: int | None = None,
    alarm: AlarmStage,
    readers: Sequence[FormatReader] = (),
    format: str | None = None,
    errors: str = "skip",
    batch_size: int = 256,
    device=None,
    adaptation: SavedAdaptation | None = None,
) -> CaptureVerdicts:
    """Score every window of the capture at ``path``; a capture that cannot be read gets an error row.

    An adapting run's capture starts with its reference segment (its first
    ``adaptation.adapter.warmup_s`` seconds): those windows are not scored,
    as in ``fusioncore run`` and ``detect``; ``reference_windows`` counts them.
    A capture too short for the segment gets an error row.
    """
    from fusioncore.data.formats import detect_format, read_capture

    methods = tuple(bundle.thresholds)
    row: dict[str, Any] = {"capture": name.removesuffix(".parquet"), "path": str(path), "format": None,
                           "frames": 0, "windows": 0,
                           "duration_s": 0.0, "alerts": 0, "alarms": 0, "labelled": False,
                           "attack_windows": None, "false_alerts": None, "benign_windows": None,
                           "skipped_rows": 0, "reference_windows": 0, "error": None, "method": method,
                           "threshold": float(bundle.thresholds[method])}
    try:
        readers = tuple(readers)
        fmt = format or detect_format(path, readers=readers).name
        result = read_capture(path, format=fmt, errors=errors, readers=readers)
    except FusionCoreError as exc:
        return CaptureVerdicts(_empty_columns(methods), {**row, "error": str(exc)})
    frames = result.frames
    spec = WindowSpec(bundle.builder.spec.size, stride or bundle.builder.spec.stride)
    adapting = adaptation is not None and adaptation.uses_reference
    ts = np.asarray(frames.timestamp)
    if adapting and (len(ts) == 0 or ts.max() - ts.min() < adaptation.adapter.warmup_s):
        seconds = float(ts.max() - ts.min()) if len(ts) else 0.0
        return CaptureVerdicts(_empty_columns(methods), {
            **row, "format": fmt, "frames": len(frames), "duration_s": seconds,
            "error": f"the capture ({seconds:.2f} s) ends before its {adaptation.adapter.warmup_s:g} s "
                     "reference segment is complete: nothing to score (a shorter --warmup fits it)"})
    if adapting:
        starts, ref = test_windows(frames, spec, adaptation.adapter)
        row["reference_windows"] = int(ref.sum())
        starts = starts[~ref]
    else:
        starts = window_starts(frames, spec)
    try:
        scores = (_method_scores(bundle, frames, starts, batch_size, device, adaptation, spec) if len(starts)
                  else {m: np.zeros(0) for m in methods})
    except FusionCoreError as exc:  # e.g. too short for its reference segment
        return CaptureVerdicts(_empty_columns(methods), {**row, "format": fmt, "frames": len(frames),
                                                          "error": str(exc)})
    decision = scores[method] > bundle.thresholds[method]
    alarms = apply_alarm_stage(alarm, decision, np.array([0]), np.array([len(decision)]))
    labelled = fmt in LABELLED_FORMATS
    label = window_labels(frames, starts, spec.size)[0].astype(np.int8) if labelled else None
    # min / max, not first / last: some captures' timestamps step back (as in `detect`)
    spans = sliding_window_view(ts, spec.size)[starts] if len(starts) else np.zeros((0, 1))
    columns = {"window": np.arange(len(starts), dtype=np.int64), "start_row": starts,
               "start_time": spans.min(axis=1, initial=np.inf),
               "end_time": spans.max(axis=1, initial=-np.inf),
               **{f"score_{m}": scores[m] for m in methods}, "decision": decision, "alarm": alarms,
               "label": label if label is not None else np.full(len(starts), -1, np.int8)}
    row.update(format=fmt, frames=len(frames), windows=len(starts), alerts=int(decision.sum()),
               alarms=int(alarms.sum()), skipped_rows=int(result.skipped), labelled=labelled,
               duration_s=float(ts.max() - ts.min()) if len(ts) else 0.0)
    if labelled:
        benign = label == 0
        row.update(attack_windows=int((label == 1).sum()), benign_windows=int(benign.sum()),
                   false_alerts=int((decision & benign).sum()))
    return CaptureVerdicts(columns, row)


def write_verdicts(target: Path, verdicts: CaptureVerdicts, meta: Mapping[str, Any]) -> None:
    """Write the verdict table to ``target`` (Parquet), its summary row and ``meta`` in the footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(dict(verdicts.columns))
    footer = {META_KEY: json.dumps({**verdicts.row, **meta}).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **footer})
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)  # a reader never sees half a file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_summary_row(path: Path) -> dict[str, Any]:
    """The summary row a verdict file carries in its footer (no table data is read)."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    if META_KEY not in metadata:
        raise ConfigError(f"{path} is not a fusioncore verdict file (no {META_KEY.decode()} metadata)")
    return json.loads(metadata[META_KEY])
