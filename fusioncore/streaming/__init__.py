"""Streaming detection: frames arrive in chunks, each window is scored as soon as it is complete.

:mod:`.stream` cuts the stream into windows and scores them with a run's
:class:`~fusioncore.scoring.ScoringSystem`; :mod:`.sources` holds what feeds it
(files, live sources, python-can buses, growing logs).
"""

from fusioncore.streaming.sources import (
    BusError,
    FrameChunk,
    FrameQueue,
    LiveSource,
    bus_producer,
    file_chunks,
    follow_file,
    messages_to_frames,
    open_bus,
    realtime_producer,
)
from fusioncore.streaming.stream import DetectionSummary, StreamDetector, WindowStream, run_detection

__all__ = [
    "BusError",
    "DetectionSummary",
    "FrameChunk",
    "FrameQueue",
    "LiveSource",
    "StreamDetector",
    "WindowStream",
    "bus_producer",
    "file_chunks",
    "follow_file",
    "messages_to_frames",
    "open_bus",
    "realtime_producer",
    "run_detection",
]
