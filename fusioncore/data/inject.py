"""Anomalies injected into copies of benign windows: attacks the supervised detector never saw.

A fusion learns whom to trust from windows where its detectors disagree.
The fusion block of the training captures holds only the attack kinds the
supervised detector was trained on, scored by detectors that saw
neighbouring windows of the same captures: both detectors are right on it,
and the fusion learns "follow the classifier", inheriting its misses on
unknown attacks. Injection adds the missing case. Copies of benign windows
of the fusion block (the training vehicles' own traffic) are altered at the
frame level, before graph building, in one of four ways, and labelled as
attacks:

=========== ================================================= ==============
kind        what changes from a random onset frame on         labelled as
=========== ================================================= ==============
payload     one known ID's payload: 1 to DLC consecutive       malfunction
            bytes stuck at 0x00 / 0xFF or random (a failing
            ECU; severity drawn per window)
timing      one known ID sends 2-4x as often: extra copies of   spoofing
            its frames (same payload) between its own, the
            window refilled in time order (period anomaly,
            nothing new in the payloads)
spoof       as timing, but the extra frames carry one forged    spoofing
            payload (bytes as in payload): a known ID, its
            period cut, its payload values jumping
silence     one known ID falls silent: its frames are dropped  suppress
            and the window refilled with the frames after it
            (windows without enough frames left are skipped)
masquerade  one known ID keeps its period, its payloads are    masquerade
            replaced by the same ID's payloads from another
            moment of the block (plausible frames, wrong
            context)
=========== ================================================= ==============

The target is the ID of a random frame of the window (so fast IDs, like
the real targets, are picked most) and the onset is that frame, in the
first 60 % of the window. Every draw comes from one ``numpy`` generator
seeded by :attr:`InjectionSpec.seed`: same frames, same spec, same windows.
Only rows inside the block given (``in_block``) are read -- refill frames
and donor payloads included -- so validation and test data are never
touched. The work is vectorised over windows; the only Python loops run
over the kinds and, for masquerade, over distinct target IDs.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from fusioncore.data.frames import Frames, attack_type_code
from fusioncore.errors import ConfigError

__all__ = ["INJECTION_KINDS", "InjectedWindows", "InjectionSpec", "inject_anomalies"]

#: kind -> attack type its frames are labelled with
INJECTION_KINDS: dict[str, str] = {
    "payload": "malfunction",
    "timing": "spoofing",
    "spoof": "spoofing",
    "silence": "suppress",
    "masquerade": "masquerade",
}
_ONSET_SHARE = 0.6  # onsets fall in the first 60 % of the window: every injection shows


def _kinds(value: Sequence[str]) -> tuple[str, ...]:
    kinds = (value,) if isinstance(value, str) else tuple(str(k) for k in value)
    unknown = [k for k in kinds if k not in INJECTION_KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"injection kinds must be a non-empty subset of {list(INJECTION_KINDS)}, got {list(kinds)}"
        )
    return kinds


@attrs.frozen
class InjectionSpec:
    """How many windows to inject (``share`` of the benign windows), of which kinds, with which seed."""

    share: float = attrs.field(default=0.5, converter=float)
    kinds: tuple[str, ...] = attrs.field(default=tuple(INJECTION_KINDS), converter=_kinds)
    seed: int = attrs.field(default=0, converter=int)

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.share <= 4.0:
            raise ConfigError(
                f"injection share must be in [0, 4] (windows per benign window), got {self.share}"
            )

    def describe(self) -> str:
        """A stable text form (part of the injected split's fingerprint)."""
        return f"inject share={self.share:g} kinds={','.join(self.kinds)} seed={self.seed}"


@attrs.frozen(eq=False)
class InjectedWindows:
    """``n`` injected windows of ``size`` frames each, stored back to back in ``frames``.

    ``starts[i] = i * size``; ``origin[i]`` is the start row (in the frames the
    windows were copied from) of the benign window that window i alters;
    ``kind[i]`` indexes :attr:`kinds`; ``target_id[i]`` is the altered CAN ID.
    """

    frames: Frames
    starts: np.ndarray
    origin: np.ndarray
    kind: np.ndarray
    target_id: np.ndarray
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.starts)


def _block_rows(n_rows: int, starts: np.ndarray, size: int) -> np.ndarray:
    """Rows covered by the windows at ``starts``."""
    cover = np.zeros(n_rows + 1, np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, np.minimum(starts + size, n_rows), -1)
    return np.cumsum(cover[:-1]) > 0


def inject_anomalies(
    frames: Frames,
    starts: np.ndarray,
    size: int,
    spec: InjectionSpec,
    *,
    in_block: np.ndarray | None = None,
) -> InjectedWindows:
    """Altered copies of ``round(share * len(starts))`` of the windows at ``starts`` (all benign).

    ``in_block`` marks the rows the injection may read (default: the rows of
    the windows at ``starts``). Windows whose alteration cannot be made (a
    silence with too few frames left in the block) are left out.
    """
    starts = np.asarray(starts, np.int64)
    if in_block is None:
        in_block = _block_rows(len(frames), starts, size)
    rng = np.random.default_rng(spec.seed)
    n = round(spec.share * len(starts))
    if n == 0 or len(starts) == 0:
        return _empty(frames, spec.kinds, size)
    origin = np.sort(rng.choice(starts, n, replace=n > len(starts)))
    kind = rng.integers(len(spec.kinds), size=n)
    onset = rng.integers(0, max(int(_ONSET_SHARE * size), 1), size=n)
    rows = origin[:, None] + np.arange(size)
    target = frames.can_id[origin + onset]
    parts = []
    for k, name in enumerate(spec.kinds):
        sel = kind == k
        if sel.any():
            made = _MAKERS[name](frames, rows[sel], origin[sel], onset[sel], target[sel], size, rng, in_block)
            parts.append((*made, np.full(len(made[1]), k)))
    return _assemble(frames, parts, spec.kinds, size)


# ---------------------------------------------------------------- kinds
# Each maker returns (columns of the altered windows [m, size, ...], origin[m], target[m]).


def _columns(frames: Frames, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "timestamp": frames.timestamp[rows], "can_id": frames.can_id[rows], "dlc": frames.dlc[rows],
        "data": frames.data[rows].copy(), "source": frames.source[rows],
        "label": np.zeros(rows.shape, np.uint8),
        "attack_type": np.zeros(rows.shape, np.uint8),
    }


def _mark(cols: dict[str, np.ndarray], mask: np.ndarray, kind: str) -> None:
    cols["label"][mask] = 1
    cols["attack_type"][mask] = attack_type_code(INJECTION_KINDS[kind])


def _targeted(cols, onset, target, size) -> np.ndarray:
    """Frames of the target ID from the onset on: ``bool[m, size]``."""
    return (cols["can_id"] == target[:, None]) & (np.arange(size) >= onset[:, None])


def _corrupt(data: np.ndarray, mask: np.ndarray, dlc: np.ndarray, rng) -> np.ndarray:
    """``data[m, w, 8]`` with 1 to ``dlc`` consecutive bytes of the masked frames stuck or random.

    Severity and mode are drawn per window: the bytes lie inside the payload
    (``dlc[m]``), stuck at 0x00 or 0xFF, or random per frame.
    """
    m = len(data)
    dlc = np.maximum(dlc.astype(np.int64), 1)
    width = rng.integers(1, dlc + 1)
    first = rng.integers(0, dlc - width + 1)
    mode = rng.integers(3, size=m)  # 0: stuck at 0x00, 1: stuck at 0xFF, 2: random
    byte = np.arange(8)
    hit = mask[:, :, None] & (byte >= first[:, None, None]) & (byte < (first + width)[:, None, None])
    random = rng.integers(0, 256, data.shape, dtype=np.uint8)
    value = np.where(mode[:, None, None] == 0, 0, np.where(mode[:, None, None] == 1, 255, random))
    return np.where(hit, value, data).astype(np.uint8)


def _payload(frames, rows, origin, onset, target, size, rng, in_block):
    cols = _columns(frames, rows)
    mask = _targeted(cols, onset, target, size)
    cols["data"] = _corrupt(cols["data"], mask, cols["dlc"][np.arange(len(rows)), onset], rng)
    _mark(cols, mask, "payload")
    return cols, origin, target


def _readable(frames, origin, in_block, width):
    """Rows ``origin .. origin + width`` of each window, and which of them may be read."""
    wide = origin[:, None] + np.arange(width)
    inside = wide < len(frames)
    wide = np.minimum(wide, len(frames) - 1)
    ok = inside & (frames.source[wide] == frames.source[origin][:, None]) & in_block[wide]
    return wide, np.cumprod(ok, axis=1).astype(bool)  # stop at the first unreadable row


def _timing(frames, rows, origin, onset, target, size, rng, in_block, *, kind: str = "timing"):
    # the target ID is sent 2-4x as often from the onset on: r - 1 extra copies of each of its
    # frames, evenly spaced before its next one; the window is the first `size` frames by time.
    # A spoof's copies carry a forged payload; the owner's own frames stay genuine.
    wide, readable = _readable(frames, origin, in_block, 2 * size)
    m, width = wide.shape
    cols = _columns(frames, wide)
    t = np.where(readable, cols["timestamp"], np.inf)
    is_target = readable & (cols["can_id"] == target[:, None])
    own = np.where(is_target, t, np.inf)
    # time of the target's next frame after each of its frames (suffix minimum over later rows)
    later = np.minimum.accumulate(own[:, ::-1], axis=1)[:, ::-1]
    nxt = np.concatenate([later[:, 1:], np.full((m, 1), np.inf)], axis=1)
    with np.errstate(invalid="ignore"):  # inf - inf where a row is unreadable: not a gap
        gap = np.where(np.isfinite(t), nxt - t, np.inf)
    valid = is_target & np.isfinite(gap)
    ranked = np.sort(np.where(valid, gap, np.inf), axis=1)  # per window: its median gap (inf if none)
    typical = ranked[np.arange(m), np.maximum(valid.sum(axis=1) - 1, 0) // 2]
    gap = np.where(np.isfinite(gap), gap, typical[:, None])
    rate = rng.integers(2, 5, size=m)[:, None]
    source = is_target & (np.arange(width) >= onset[:, None]) & np.isfinite(gap)
    copies = [cols]
    forged = None
    if kind == "spoof":  # one forgery per window, repeated by the attacker
        dlc = cols["dlc"][np.arange(m), np.minimum(onset, width - 1)]
        forged = _corrupt(cols["data"], np.ones((m, width), bool), dlc, rng)
    for j in range(1, 4):
        extra = {k: v.copy() for k, v in cols.items()}
        extra["timestamp"] = np.where(source & (j < rate), t + j * gap / rate, np.inf)
        if forged is not None:
            extra["data"] = forged
        _mark(extra, np.isfinite(extra["timestamp"]), kind)
        copies.append(extra)
    cols["timestamp"] = t
    merged = {k: np.concatenate([c[k] for c in copies], axis=1) for k in cols}
    order = np.argsort(merged["timestamp"], axis=1, kind="stable")[:, :size]
    out = {k: np.take_along_axis(v, order if v.ndim == 2 else order[:, :, None], axis=1)
           for k, v in merged.items()}
    ok = np.isfinite(out["timestamp"]).all(axis=1) & (out["label"].sum(axis=1) > 0)
    return {k: v[ok] for k, v in out.items()}, origin[ok], target[ok]


def _silence(frames, rows, origin, onset, target, size, rng, in_block):
    # read up to four windows on, drop the silenced frames, keep the first `size` that remain
    wide, readable = _readable(frames, origin, in_block, 4 * size)
    dropped = (frames.can_id[wide] == target[:, None]) & (np.arange(4 * size) >= onset[:, None])
    keep = readable & ~dropped
    ok = keep.sum(axis=1) >= size
    keep, wide, onset, origin, target = keep[ok], wide[ok], onset[ok], origin[ok], target[ok]
    # stable order of kept rows first; their first `size` are the new window
    pick = np.argsort(~keep, axis=1, kind="stable")[:, :size]
    new_rows = np.take_along_axis(wide, pick, axis=1)
    cols = _columns(frames, new_rows)
    # a suppression has no attack frames: every frame from the onset on carries the label
    _mark(cols, np.arange(size) >= onset[:, None], "silence")
    return cols, origin, target


def _masquerade(frames, rows, origin, onset, target, size, rng, in_block):
    cols = _columns(frames, rows)
    mask = _targeted(cols, onset, target, size)
    block = np.flatnonzero(in_block)
    ids = frames.can_id[block]
    flat_rows = rows[mask]
    flat_target = np.broadcast_to(target[:, None], mask.shape)[mask]
    shift = np.broadcast_to(rng.random(len(rows))[:, None], mask.shape)[mask]
    donors = np.empty(len(flat_rows), np.int64)
    for can_id in np.unique(flat_target):  # one pass per distinct target ID, not per window
        own = block[ids == can_id]
        sel = flat_target == can_id
        at = np.searchsorted(own, flat_rows[sel])
        # the same ID's frames a quarter to three quarters of the block away (wrapping around)
        step = (len(own) * (0.25 + 0.5 * shift[sel])).astype(np.int64)
        donors[sel] = own[(at + step) % len(own)]
    cols["data"][mask] = frames.data[donors]
    cols["dlc"][mask] = frames.dlc[donors]
    _mark(cols, mask, "masquerade")
    return cols, origin, target


def _spoof(frames, rows, origin, onset, target, size, rng, in_block):
    return _timing(frames, rows, origin, onset, target, size, rng, in_block, kind="spoof")


_MAKERS = {
    "payload": _payload, "timing": _timing, "spoof": _spoof, "silence": _silence, "masquerade": _masquerade,
}


def _empty(frames: Frames, kinds: tuple[str, ...], size: int) -> InjectedWindows:
    empty = attrs.evolve(Frames.empty(frames.sources), sources=frames.sources)
    z = np.zeros(0, np.int64)
    return InjectedWindows(empty, z, z, z, np.zeros(0, np.uint32), kinds)


def _assemble(frames: Frames, parts, kinds: tuple[str, ...], size: int) -> InjectedWindows:
    if not parts:
        return _empty(frames, kinds, size)
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    origin = np.concatenate([p[1] for p in parts])
    target = np.concatenate([p[2] for p in parts])
    kind = np.concatenate([p[3] for p in parts])
    order = np.lexsort((kind, origin))  # by origin window: deterministic, independent of kinds order
    n = len(origin)
    flat = {k: v[order].reshape(n * size, *v.shape[2:]) for k, v in cols.items()}
    out = Frames.from_columns(
        timestamp=flat["timestamp"], can_id=flat["can_id"], data=flat["data"], dlc=flat["dlc"],
        label=flat["label"], attack_type=flat["attack_type"], source=flat["source"],
        sources=frames.sources,
    )
    return InjectedWindows(out, np.arange(n, dtype=np.int64) * size, origin[order], kind[order],
                           target[order].astype(np.uint32), kinds)
