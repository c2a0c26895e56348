"""Tracking on worker processes: the same landmarks as in-process, and nothing left behind."""

from __future__ import annotations

import glob
import multiprocessing

import cv2
import numpy as np
import pytest

from heygem_daemon.faces.segments import SEGMENT_FRAMES
from heygem_daemon.faces.session import TrackingSession
from heygem_daemon.faces.tracker import FaceTracker


@pytest.fixture(scope="module")
def frames(face_1_frames) -> list[np.ndarray]:
    # two whole segments and a part: the cut points and the short last segment are covered
    return face_1_frames[: 2 * SEGMENT_FRAMES + 5]


def _leftovers() -> tuple[list, list[str]]:
    return multiprocessing.active_children(), glob.glob("/dev/shm/heygem-faces-*")


def test_workers_give_the_in_process_track_and_stop_cleanly(frames):
    """Two worker processes track a video to exactly the in-process landmarks; close leaves no
    process and no shared-memory file, and a second close does nothing."""
    expected = FaceTracker().track(iter(frames))
    with FaceTracker(processes=2) as tracker:
        assert _leftovers()[1] == []  # the slot files are unlinked once mapped
        got = tracker.track(iter(frames))
        again = tracker.track(iter(frames))
    tracker.close()
    assert np.array_equal(expected.present, got.present)
    assert np.array_equal(expected.landmarks, got.landmarks, equal_nan=True)
    assert np.array_equal(got.landmarks, again.landmarks, equal_nan=True)
    assert _leftovers() == ([], [])


def test_a_session_stopped_mid_video_leaves_the_workers_ready_for_the_next(frames):
    """Closing a session with segments in flight drops them; the next video is tracked as a fresh one."""
    expected = FaceTracker().track(iter(frames[:40]))
    with FaceTracker(processes=2) as tracker:
        with TrackingSession(tracker) as session:
            for frame in frames:
                session.push(frame)
        got = tracker.track(iter(frames[:40]))
    assert np.array_equal(expected.landmarks, got.landmarks, equal_nan=True)
    assert _leftovers() == ([], [])


def test_a_dead_worker_is_replaced_for_the_next_video(frames):
    """A worker killed between videos is restarted; the next video tracks normally."""
    with FaceTracker(processes=1) as tracker:
        tracker._workers._procs[0].kill()  # type: ignore[union-attr]
        tracker._workers._procs[0].join()  # type: ignore[union-attr]
        track = tracker.track(iter(frames[:10]))
    assert track.frames_with_face == 10
    assert _leftovers() == ([], [])


def test_worker_processes_come_from_the_cores_a_video_has():
    """Two cores per video track in-process; more give every core but two, at most eight."""
    from heygem_daemon.faces.workers import tracking_processes

    assert [0, 0, 1, 2, 6, 8] == [tracking_processes(c) for c in (1, 2, 3, 4, 8, 16)]


def test_the_local_executor_stops_its_trackers_workers_on_close(tmp_path):
    """A daemon's trackers are made with the executor's worker count and stopped with it."""
    from heygem_daemon.executors.local import LocalExecutor
    from heygem_daemon.faces.cache import FaceTrackCache

    executor = LocalExecutor(1, FaceTrackCache(tmp_path), tracker_processes=1)
    executor.prepare("builtin")
    assert 1 == len(multiprocessing.active_children())
    executor.close()
    assert _leftovers() == ([], [])


def test_a_worker_lost_mid_video_fails_that_video_and_not_the_next(frames):
    """A worker killed while a video is tracked: that video gets a TrackingWorkerError (a HeygemError,
    so only its output fails); the tracker starts a new worker and tracks the next video."""
    from heygem_daemon.errors import HeygemError
    from heygem_daemon.faces.workers import TrackingWorkerError

    with FaceTracker(processes=1) as tracker:
        with TrackingSession(tracker) as session:
            tracker._workers._procs[0].kill()  # type: ignore[union-attr]
            tracker._workers._procs[0].join()  # type: ignore[union-attr]
            with pytest.raises(TrackingWorkerError) as raised:
                for frame in frames:
                    session.push(frame)
                session.end()
        track = tracker.track(iter(frames[:10]))
    assert isinstance(raised.value, HeygemError)
    assert track.frames_with_face == 10
    assert _leftovers() == ([], [])


def test_720p_frames_give_the_track_of_the_frames_shrunk_beforehand(frames):
    """720p frames go to the runner whole and are shrunk around the face only: in-process and on
    worker processes the landmarks are exactly those of the same frames shrunk whole to 640x360
    by the caller."""
    big = []
    for frame in frames:
        canvas = np.zeros((720, 1280, 3), np.uint8)
        canvas[: frame.shape[0], 290 : 290 + frame.shape[1]] = frame
        big.append(canvas)
    shrunk = [cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA) for frame in big]
    expected = FaceTracker().track(iter(shrunk))
    in_process = FaceTracker().track(iter(big))
    with FaceTracker(processes=2) as tracker:
        on_workers = tracker.track(iter(big))
    assert expected.present.all()
    for got in (in_process, on_workers):
        assert np.array_equal(expected.present, got.present)
        assert np.array_equal(expected.landmarks, got.landmarks, equal_nan=True)
