"""`fusioncore detect`: files, growing logs, a python-can virtual bus, and the real-world mess."""

from __future__ import annotations

import _thread
import json
import threading
import time
from pathlib import Path

import can
import numpy as np
import pytest
from can.interfaces import virtual
from detector_batches import one_torch_thread

from fusioncore import streaming as sources_api
from fusioncore.cli import main
from fusioncore.data.formats import read_capture
from fusioncore.data.frames import Frames
from fusioncore.data.synthetic.capture import simulate_capture
from fusioncore.data.synthetic.csvfile import format_csv
from fusioncore.data.synthetic.vehicles import build_fleet
from fusioncore.data.windows import WindowSpec, window_labels, window_starts
from fusioncore.paths import data_root
from fusioncore.plugins import get_plugins
from fusioncore.scoring import ScoringSystem
from fusioncore.streaming import FrameChunk, FrameQueue, LiveSource, WindowStream, file_chunks, run_detection

ATTACKS = ("DoS-suv.csv", "fuzzing-sedan.csv")  # test_01: known vehicle, known attack


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """One quick run for the module; the session-wide cache lets a second module reuse its detectors."""
    out = tmp_path_factory.mktemp("detect") / "run"
    # the zero-shot protocol: these tests are about detect on a known vehicle, without a warm-up
    # (warm-up, --profile and unseen vehicles: tests/test_adapt_cli.py)
    assert main(["run", "--preset", "quick", "--adapt", "none", "--out", str(out),
                 "trainer.progress=false"]) == 0
    return out


@pytest.fixture(scope="module")
def benign_csv(tmp_path_factory) -> Path:
    """20 s of attack-free traffic of a known vehicle that no training file contains (fresh seed)."""
    sedan = next(v for v in build_fleet(0) if v.name == "sedan")
    capture = simulate_capture(sedan, "benign", rng=np.random.default_rng(2024), duration=20.0,
                               start_us=1_720_000_000 * 1_000_000)
    path = tmp_path_factory.mktemp("benign") / "attack-free-sedan-heldout.csv"
    path.write_bytes(format_csv(capture.frames))
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Score as `fusioncore detect` does (one thread) in the tests that call the API directly."""
    with one_torch_thread():
        yield


def _attack_files() -> list[Path]:
    files = get_plugins().registry.get("dataset", "synthetic").resolve(data_root())
    return [p for p in files.tests["test_01_known_vehicle_known_attack"] if p.name in ATTACKS]


def _window_labels(frames: Frames, window: np.ndarray) -> np.ndarray:
    return window_labels(frames, window, 100)[0]


def _verdicts(jsonl: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return np.array([r["window"] for r in rows], np.int64), np.array([r["alert"] for r in rows], bool)


def _assert_targets(attack_frames: Frames, attack_out: Path, benign_frames: Frames, benign_out: Path) -> None:
    window, alert = _verdicts(attack_out)
    assert np.array_equal(window, window_starts(attack_frames, WindowSpec(100, 100)))
    label = _window_labels(attack_frames, window)
    assert label.sum() >= 40
    assert alert[label == 1].mean() >= 0.95, "attack windows alerted"
    window, alert = _verdicts(benign_out)
    assert len(window) >= 100 and not _window_labels(benign_frames, window).any()
    assert alert.mean() <= 0.01, "benign windows alerted on the attack-free file"


def _listening(channel: str, timeout: float = 300.0) -> bool:
    """Wait until a detector has opened ``channel`` (python-can's virtual bus delivers only to open buses)."""
    deadline = time.monotonic() + timeout
    while not virtual.channels.get(channel):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _send(frames: Frames, channel: str) -> threading.Thread:
    """Send ``frames`` on a virtual bus, recorded timestamps kept, once the detector listens."""
    messages = [
        can.Message(timestamp=t, arbitration_id=int(i), is_extended_id=bool(x), dlc=int(n),
                    data=bytes(d[:n]))
        for t, i, x, n, d in zip(frames.timestamp.tolist(), frames.can_id, frames.extended, frames.dlc,
                                 frames.data)
    ]

    def run() -> None:
        if _listening(channel):
            with can.Bus(interface="virtual", channel=channel, preserve_timestamps=True) as bus:
                for msg in messages:
                    bus.send(msg)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _detect_bus(run: Path, channel: str, out: Path, capsys) -> str:
    code = main(["detect", "--run", str(run), "--bus", f"virtual:{channel}", "--idle-exit", "1.5",
                 "--jsonl", str(out)])
    assert code == 0
    return capsys.readouterr().out


def test_virtual_bus_replay_alerts_on_attacks_not_on_benign(quick_run, benign_csv, tmp_path, capsys):
    attack = Frames.concat([read_capture(p).frames for p in _attack_files()])
    attack = Frames.from_columns(**{k: getattr(attack, k) for k in
                                    ("timestamp", "can_id", "data", "dlc", "label", "attack_type")})
    benign = read_capture(benign_csv).frames
    sender = _send(attack, "fc-attack")
    out = _detect_bus(quick_run, "fc-attack", tmp_path / "attack.jsonl", capsys)
    sender.join()
    assert "ALERT window@" in out and f"{len(attack):,} frames" in out and "windows/s" in out
    sender = _send(benign, "fc-benign")
    _detect_bus(quick_run, "fc-benign", tmp_path / "benign.jsonl", capsys)
    sender.join()
    _assert_targets(attack, tmp_path / "attack.jsonl", benign, tmp_path / "benign.jsonl")


def test_input_file_alerts_on_attacks_not_on_benign(quick_run, benign_csv, tmp_path, capsys):
    benign = read_capture(benign_csv).frames
    assert main(["detect", "--run", str(quick_run), "--input", str(benign_csv),
                 "--jsonl", str(tmp_path / "benign.jsonl")]) == 0
    for path in _attack_files():
        out = tmp_path / f"{path.stem}.jsonl"
        assert main(["detect", "--run", str(quick_run), "--input", str(path), "--jsonl", str(out)]) == 0
        _assert_targets(read_capture(path).frames, out, benign, tmp_path / "benign.jsonl")
    assert "summary: " in capsys.readouterr().out


def test_impala_candump_runs_to_completion(quick_run, shared_data, tmp_path, capsys):
    out = tmp_path / "impala.jsonl"
    log = shared_data / "candump" / "impala-drive.log"
    assert main(["detect", "--run", str(quick_run), "--input", str(log), "--jsonl", str(out)]) == 0
    text = capsys.readouterr().out
    assert "36,498 frames, 364 windows" in text and "windows/s" in text and "p99" in text
    assert len(out.read_text().splitlines()) == 364
    assert text.count("ALERT") <= 5 * 60  # rate-limited, whatever this unknown car triggers


def test_follow_reads_a_growing_log_like_the_whole_file(quick_run, benign_csv, tmp_path):
    data = benign_csv.read_bytes()
    growing = tmp_path / "growing.csv"
    cut1, cut2 = len(data) // 3, 2 * len(data) // 3 + 7  # the second cut splits a line
    growing.write_bytes(data[:cut1])

    def append() -> None:
        for lo, hi in ((cut1, cut2), (cut2, len(data))):
            time.sleep(0.4)
            with open(growing, "ab") as fh:
                fh.write(data[lo:hi])

    writer = threading.Thread(target=append)
    writer.start()
    assert main(["detect", "--run", str(quick_run), "--input", str(growing), "--follow",
                 "--idle-exit", "1.2", "--jsonl", str(tmp_path / "follow.jsonl")]) == 0
    writer.join()
    assert main(["detect", "--run", str(quick_run), "--input", str(benign_csv),
                 "--jsonl", str(tmp_path / "whole.jsonl")]) == 0
    followed, whole = (
        [json.loads(x) for x in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        for name in ("follow", "whole")
    )
    assert [r["window"] for r in followed] == [r["window"] for r in whole]
    np.testing.assert_allclose([r["fused"] for r in followed], [r["fused"] for r in whole], rtol=1e-5)


def test_realtime_replays_at_the_recorded_pace(quick_run, benign_csv, tmp_path, capsys):
    frames = read_capture(benign_csv).frames
    short = tmp_path / "two-seconds.csv"
    n = int(np.searchsorted(frames.timestamp, frames.timestamp[0] + 2))
    short.write_bytes(format_csv(frames[:n]))
    start = time.perf_counter()
    assert main(["detect", "--run", str(quick_run), "--input", str(short), "--realtime", "--speed", "4"]) == 0
    assert time.perf_counter() - start >= 0.45  # 2 recorded seconds at 4x
    assert f"{n:,} frames, {n // 100} windows" in capsys.readouterr().out


def test_bus_quirks_are_counted_not_fatal(quick_run):
    """Error frames, remote frames, CAN FD payloads, timestamps that repeat or step back."""
    system = ScoringSystem.load(quick_run)
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0, 1e-3, 450)) + 1e9
    t[[50, 51]] = t[49]  # repeated
    t[200] = t[199] - 0.5  # steps back
    messages = [can.Message(timestamp=x, arbitration_id=int(rng.integers(0, 0x7FF)), data=bytes(8))
                for x in t]
    messages[10] = can.Message(timestamp=t[10], arbitration_id=0x123, is_remote_frame=True, dlc=4)
    quirks = [can.Message(timestamp=t[-1], is_error_frame=True),
              can.Message(timestamp=t[-1], is_fd=True, data=bytes(12))]
    with can.Bus(interface="virtual", channel="fc-quirks", receive_own_messages=True,
                 preserve_timestamps=True) as bus:
        for msg in [*messages, *quirks]:
            bus.send(msg)
        source = LiveSource(sources_api.bus_producer(bus, idle_exit=0.3))
        summary = run_detection(system, source)
    assert summary.error is None and summary.frames == 450 and summary.windows == 4
    assert summary.skipped == {"error frame": 1, "payload longer than 8 bytes": 1}
    assert summary.duplicate_timestamps >= 2 and summary.backward_steps == 1


def test_a_bus_that_closes_is_reported_not_a_traceback(quick_run, monkeypatch, capsys):
    bus = can.Bus(interface="virtual", channel="fc-closing")
    monkeypatch.setattr(sources_api, "open_bus", lambda *a, **k: bus)
    threading.Timer(0.5, bus.shutdown).start()
    assert main(["detect", "--run", str(quick_run), "--bus", "virtual:fc-closing"]) == 2
    captured = capsys.readouterr()
    assert "summary: 0 frames" in captured.out
    assert "error:" in captured.err and "closed bus" in captured.err and "Traceback" not in captured.err
    # an interface python-can does not know: one line, exit 2
    monkeypatch.undo()
    assert main(["detect", "--run", str(quick_run), "--bus", "no-such-interface:x"]) == 2
    assert "cannot open CAN bus no-such-interface:x" in capsys.readouterr().err


def test_ctrl_c_ends_cleanly_with_the_summary(quick_run, capsys):
    # Ctrl-C once the detector listens -- and after the wait in any case, so a detector that is
    # slow to start on a loaded machine fails the assertions below instead of hanging the suite
    threading.Thread(target=lambda: (_listening("fc-ctrl-c"), _thread.interrupt_main()),
                     daemon=True).start()
    assert main(["detect", "--run", str(quick_run), "--bus", "virtual:fc-ctrl-c"]) == 130
    assert "summary (interrupted): 0 frames" in capsys.readouterr().out


def test_a_full_backlog_drops_counted_frames_and_restarts_the_window_grid(quick_run):
    system = ScoringSystem.load(quick_run)
    frames = read_capture(_attack_files()[0]).frames[:1000]

    queued = threading.Event()

    def burst(out: FrameQueue, stop: threading.Event) -> None:
        for lo in range(0, 1000, 100):  # all at once, before the scorer takes anything
            out.put(frames[lo:lo + 100])
        queued.set()

    source = LiveSource(burst, max_frames=450)
    assert queued.wait(10)
    windows: list = []
    summary = run_detection(system, source, windows.append)
    assert summary.dropped == 550 and summary.frames == 450
    assert [int(w) for v in windows for w in v.window_id] == [0, 100, 200, 300]
    assert summary.trailing == 50  # the frames before the gap that filled no window


def test_window_stream_hands_out_every_window_once_across_chunks_and_gaps():
    frames = Frames.from_columns(timestamp=np.arange(200.0), can_id=np.arange(200) % 7,
                                 data=np.zeros((200, 8)))
    stream = WindowStream(size=10, stride=4, capacity=24)
    got: list[tuple[int, np.ndarray]] = []
    for lo, hi in ((0, 3), (3, 50), (50, 51), (51, 120)):
        stream.push(next(file_chunks(frames[lo:hi], hi - lo)))
        while stream.pending():
            view, rows, pos, _ = stream.take(3)
            got += [(int(p), view.timestamp[r:r + 10].copy()) for p, r in zip(pos, rows)]
            stream.compact()
    assert [p for p, _ in got] == list(range(0, 111, 4))
    assert all(np.array_equal(ts, np.arange(p, p + 10.0)) for p, ts in got)
    # a gap of 5 lost frames: the grid restarts at the first frame after it
    stream.push(FrameChunk(frames[125:140], 0.0, dropped_before=5))
    assert stream.position == 140 and stream.pending() == 2
    _, rows, pos, _ = stream.take(10)
    assert pos.tolist() == [125, 129]


def test_bus_messages_keep_can_fd_flags_length_and_bytes():
    """A live bus's FD frames reach the graphs as a log file's do: flags (fd_share), DLC, bytes 8..63."""
    from fusioncore.data.frames import FLAG_BRS, FLAG_FD

    msgs = [
        can.Message(timestamp=1.0, arbitration_id=0x123, data=bytes(range(8)), is_extended_id=False),
        can.Message(timestamp=1.1, arbitration_id=0x18DAF110, data=bytes(range(64)), is_fd=True,
                    bitrate_switch=True, is_extended_id=True),
        can.Message(timestamp=1.2, arbitration_id=0x7DF, is_remote_frame=True, dlc=3, is_extended_id=False),
    ]
    frames = sources_api.messages_to_frames(msgs, source="bus")
    assert frames.dlc.tolist() == [8, 64, 3]
    assert frames.flags.tolist() == [0, FLAG_FD | FLAG_BRS, 0]
    assert frames.extended.tolist() == [False, True, False] and frames.remote.tolist() == [False, False, True]
    assert frames.data[1].tolist() == list(range(8)) and frames.data_ext[1].tolist() == list(range(8, 64))
    assert frames.sources == ("bus",) and frames.source.tolist() == [0, 0, 0]
    stream = WindowStream(size=2, stride=1)
    stream.push(FrameChunk(frames, 0.0))
    held, rows, _, _ = stream.take(10)
    assert rows.tolist() == [0, 1] and held.flags.tolist() == frames.flags.tolist()
