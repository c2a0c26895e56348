"""The running job's line on the status page when several videos render at once."""

from __future__ import annotations

import pytest

from heygem_daemon.jobs.runner import VideoProgress


def test_one_video_at_a_time_reads_video_n_of_m_with_its_own_percentage():
    progress = VideoProgress(total=8, finished=2)
    assert progress.update(2, 0.4) == ("video 3 of 8: 40%", pytest.approx(2.4 / 8))


def test_videos_in_flight_together_are_all_named_and_all_count_towards_the_job():
    """Two videos at 60 % each are 1.2 videos of work, not 0.6: the time left depends on it."""
    progress = VideoProgress(total=4)
    progress.update(0, 0.6)
    line, fraction = progress.update(1, 0.6)
    assert line == "videos 1–2 of 4: 60%"
    assert fraction == pytest.approx(1.2 / 4)


def test_a_finished_video_leaves_the_line_and_counts_whole():
    progress = VideoProgress(total=3)
    progress.update(0, 0.9)
    progress.update(1, 0.2)
    progress.finish(0)
    assert progress.update(1, 0.5) == ("video 2 of 3: 50%", pytest.approx(1.5 / 3))


def test_a_resumed_job_counts_its_committed_videos_as_done():
    progress = VideoProgress(total=10, finished=7)
    assert progress.update(7, 0.0) == ("video 8 of 10: 0%", pytest.approx(0.7))
