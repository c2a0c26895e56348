"""jobs/pipeline.py in process: stages over bounded queues, errors, stops that never hang."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from structlog.testing import capture_logs

from heygem_daemon.errors import StopRequested
from heygem_daemon.jobs.pipeline import Pipeline
from heygem_daemon.media.frames import FrameWriter


def _stop_after(seconds: float):
    """A ``check`` that asks for a forced stop once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds

    def check() -> None:
        if time.monotonic() > deadline:
            raise StopRequested()

    return check


def _endless():
    """A source that never ends."""
    count = iter(range(10**9))
    return lambda: next(count)


def test_a_forced_stop_returns_within_the_bound_when_the_sink_blocks_forever():
    """A sink stuck for good (no process to kill): run() still raises StopRequested within
    two join timeouts, calls on_hung once, and logs the thread it leaves behind."""
    release = threading.Event()
    hung_calls = []
    pipeline = Pipeline(_endless(), [], lambda item: release.wait(), depth=1, check=_stop_after(0.2),
                        on_hung=lambda: hung_calls.append(1), join_timeout_s=0.3)
    started = time.monotonic()
    try:
        with capture_logs() as logs, pytest.raises(StopRequested):
            pipeline.run()
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 0.2 + 2 * 0.3 + 1.0
    assert [1] == hung_calls
    assert ["pipeline_hung", "pipeline_threads_abandoned"] == [e["event"] for e in logs]
    assert ["pipeline-sink"] == logs[-1]["threads"]


def _ffmpeg_children() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)
            if p.name() == "ffmpeg" and p.status() != psutil.STATUS_ZOMBIE]


def test_a_hung_encoder_is_killed_and_a_forced_stop_returns(tmp_path: Path):
    """An encoder that stops reading (SIGSTOPped ffmpeg): the sink blocks on a full pipe, the
    forced stop times out the join, on_hung kills ffmpeg, the sink's write fails and every
    thread ends; no ffmpeg survives and the partial output is removed."""
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    out = tmp_path / "out.mp4"
    started = time.monotonic()
    with pytest.raises(StopRequested):
        with FrameWriter(out, (160, 120), "25", audio_path=None, duration_s=1000.0, crf=23, preset="ultrafast",
                         pad_audio=False) as writer:
            os.kill(writer._proc.proc.pid, signal.SIGSTOP)
            pipeline = Pipeline(lambda: frame, [], writer.write, depth=1, check=_stop_after(0.5),
                                on_hung=writer.kill, join_timeout_s=0.5)
            with capture_logs() as logs:
                pipeline.run()
    assert time.monotonic() - started < 0.5 + 2 * 0.5 + 4.0
    assert ["pipeline_hung"] == [e["event"] for e in logs if e["event"].startswith("pipeline")]
    assert not any(t.name.startswith("pipeline-") for t in threading.enumerate())
    assert [] == _ffmpeg_children()
    assert not out.exists()
