"""Tracking inside the render pass gives exactly the offline track."""

from __future__ import annotations

import numpy as np

import heygem_daemon.faces.session as session_module
from heygem_daemon.faces.segments import SEGMENT_FRAMES
from heygem_daemon.faces.session import TrackingSession
from heygem_daemon.faces.tracker import FaceTracker


def test_windows_and_blockwise_result_equal_the_offline_smoothed_track(face_1_frames, monkeypatch):
    """Faces handed on a few frames behind the decode, and the cached whole track, match FaceTracker.track."""
    frames = face_1_frames[:45]
    tracker = FaceTracker()
    offline = tracker.track(iter(frames))
    monkeypatch.setattr(session_module, "_RESULT_BLOCK", 7)
    with TrackingSession(tracker) as session:
        windows = []
        for index, frame in enumerate(frames):
            session.push(frame)
            if index == 40:  # one 32-frame segment tracked, the second still filling
                assert session.final_until() == SEGMENT_FRAMES - session.radius
                windows.append(session.window(0, session.final_until()))
        session.end()
        windows.append(session.window(windows[0].present.size, len(frames)))
        whole = session.result()
    streamed = np.concatenate([w.landmarks for w in windows])
    assert np.array_equal(streamed, offline.landmarks, equal_nan=True)
    assert np.array_equal(whole.landmarks, offline.landmarks, equal_nan=True)
    assert np.array_equal(whole.boxes, offline.boxes, equal_nan=True)
