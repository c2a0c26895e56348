"""Posters: which frame of an output becomes its thumbnail, and cutting it before publishing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from structlog.testing import capture_logs

from heygem_daemon.jobs.poster import cut_posters, poster_name
from heygem_daemon.render.moment import PosterMoment
from heygem_daemon.jobs.report import JobReport, OutputReport
from heygem_daemon.speech.curve import MouthCurve


def _curve(seconds: float, **open_from: float) -> MouthCurve:
    """A 100 Hz opening curve, closed but for plateaus: ``_curve(3, s1_0=0.9)`` opens 0.9 over 1.0-1.1 s."""
    values = np.zeros(int(seconds * 100))
    for key, value in open_from.items():
        start = int(round(float(key[1:].replace("_", ".")) * 100))
        values[start:start + 10] = value
    return MouthCurve(100.0, values, np.zeros_like(values), np.zeros_like(values))


def _see_all(moment: PosterMoment, faces: list[bool], batch: int = 4) -> None:
    for start in range(0, len(faces), batch):
        outs = np.arange(start, min(start + batch, len(faces)))
        moment.see(outs, faces[start:start + batch])


def test_the_poster_moment_is_the_widest_open_mouth_among_frames_with_a_face():
    """The voice opens the mouth most at 1.05 s (frame 10 at 10 fps), and that frame has a face."""
    moment = PosterMoment(fps=10.0, duration_s=3.0, opening=_curve(3, s1_0=0.9, s2_0=0.6))
    _see_all(moment, [True] * 30)
    assert 1.05 == moment.at_s


def test_a_frame_without_a_face_is_never_the_poster_however_loud():
    """The loudest moment has no face: the loudest one with a face wins."""
    faces = [True] * 30
    faces[10] = False
    moment = PosterMoment(fps=10.0, duration_s=3.0, opening=_curve(3, s1_0=0.9, s2_0=0.6))
    _see_all(moment, faces)
    assert 2.05 == moment.at_s


def test_without_voice_the_poster_lies_near_forty_percent_of_the_video():
    """Silence (or no opening curve): the face frame nearest 40 % of the length stands in."""
    silent = PosterMoment(fps=10.0, duration_s=3.1, opening=_curve(3.1))
    _see_all(silent, [True] * 30)
    blind = PosterMoment(fps=10.0, duration_s=3.1)
    _see_all(blind, [True] * 30)
    assert 1.25 == silent.at_s == blind.at_s


def test_no_face_anywhere_means_no_poster_moment():
    moment = PosterMoment(fps=25.0, duration_s=1.0, opening=_curve(1, s0_0=1.0))
    _see_all(moment, [False] * 25)
    assert moment.at_s is None


def test_poster_names_follow_the_output():
    assert "alice_voice.jpg" == poster_name("alice_voice.mp4")
    assert "Ärger 1.jpg" == poster_name("Ärger 1.mp4")


def test_cut_posters_writes_a_jpeg_per_finished_output_and_names_it_in_the_report(tmp_path: Path):
    """Finished outputs get ``<output>.jpg``; a failed output gets none; a broken file is logged, not fatal."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1",
                    "-pix_fmt", "yuv420p", str(tmp_path / "a_voice.mp4")], check=True)
    (tmp_path / "b_voice.mp4").write_bytes(b"not a video")
    report = JobReport(job="j", outputs=[
        OutputReport(video="a.mp4", audio="voice.wav", file="a_voice.mp4", status="done", poster_at_s=0.5),
        OutputReport(video="b.mp4", audio="voice.wav", file="b_voice.mp4", status="done", poster_at_s=0.5),
        OutputReport(video="c.mp4", audio="voice.wav", status="failed", error="No face was found"),
    ])
    with capture_logs() as logs:
        cut_posters(report, tmp_path)
    assert ["a_voice.jpg", None, None] == [o.poster for o in report.outputs]
    assert (tmp_path / "a_voice.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert not (tmp_path / "b_voice.jpg").exists()
    assert ["b_voice.mp4"] == [e["output"] for e in logs if e["event"] == "poster_failed"]
