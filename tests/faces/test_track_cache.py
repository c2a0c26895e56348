"""FaceTrackCache: hits return the same track, corrupt or foreign entries are misses."""

from __future__ import annotations

import numpy as np

from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.track import FaceTrack


def _track(tracker: str = "t1") -> FaceTrack:
    rng = np.random.default_rng(0)
    present = np.array([True, False, True])
    marks = rng.random((3, 478, 2)).astype(np.float32)
    marks[1] = np.nan
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [np.nan] * 4, [0.1, 0.2, 0.5, 0.7]], dtype=np.float32)
    return FaceTrack(boxes=boxes, landmarks=marks, present=present, tracker=tracker)


def test_hit_returns_an_equal_track(tmp_path):
    """put then get returns the same arrays and tracker name."""
    cache = FaceTrackCache(tmp_path / "faces")
    track = _track()
    cache.put("abc123", "t1", track)
    got = cache.get("abc123", "t1")
    assert got is not None
    np.testing.assert_array_equal(got.boxes, track.boxes)
    np.testing.assert_array_equal(got.landmarks, track.landmarks)
    np.testing.assert_array_equal(got.present, track.present)
    assert got.tracker == "t1"


def test_missing_entry_and_other_tracker_are_misses(tmp_path):
    """An unknown digest or a different tracker name is a miss."""
    cache = FaceTrackCache(tmp_path)
    cache.put("abc123", "t1", _track())
    assert cache.get("zzz", "t1") is None
    assert cache.get("abc123", "t2") is None


def test_corrupt_file_is_a_miss(tmp_path):
    """A truncated or garbage cache file is a miss, not an error."""
    cache = FaceTrackCache(tmp_path)
    cache.put("abc123", "t1", _track())
    path = cache.path_for("abc123", "t1")
    path.write_bytes(path.read_bytes()[:100])
    assert cache.get("abc123", "t1") is None
    path.write_bytes(b"not a zip at all")
    assert cache.get("abc123", "t1") is None


def test_put_leaves_no_temporary_files_and_overwrites(tmp_path):
    """Writing twice keeps exactly one file, the newest track."""
    cache = FaceTrackCache(tmp_path)
    cache.put("abc", "t1", _track())
    newer = _track()
    newer.present[:] = True
    cache.put("abc", "t1", newer)
    assert [p.name for p in tmp_path.iterdir()] == [cache.path_for("abc", "t1").name]
    assert cache.get("abc", "t1").present.all()


def test_unsafe_names_stay_inside_the_root(tmp_path):
    """Digests or tracker names with separators cannot escape the cache folder."""
    cache = FaceTrackCache(tmp_path / "c")
    path = cache.path_for("../../etc", "a/b")
    assert path.parent == tmp_path / "c"
