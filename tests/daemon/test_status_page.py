"""The status page with the real daemon: a real job, then the page as a browser shows it.

The page's states one by one (running, failed, done, polling) are specified in
tests/status/; this is the whole chain: runner → poster → publish → board → page.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup

from heygem_daemon.engines.builtin_geometry import source_gap
from heygem_daemon.faces.tracker import FaceTracker

from tests.support.browser import browser  # noqa: F401 -- the fixture

from .conftest import REPO, drop_job

pytestmark = pytest.mark.slow

ASSETS = Path(__file__).resolve().parents[2] / "heygem_daemon" / "assets"


def test_finished_jobs_appear_on_the_page_with_thumbnails_links_and_reasons(daemon_factory, browser):  # noqa: F811
    """After real jobs, index.html (in Chromium, from disk) links the job folder and its video, shows
    the video in place with the poster the publish step cut from a frame with a face, and says when;
    a job with a mistake in job.toml shows the mistake, in ERROR.txt's words."""
    d = daemon_factory().start()
    drop_job(d.inbox, "Typo", {"host.mp4": ASSETS / "sample_face.mp4", "voice.m4a": ASSETS / "sample_voice.m4a",
                               "job.toml": 'vidoes = ["host.mp4"]\n'})
    d.wait_published("Typo")
    drop_job(d.inbox, "Town hall", {"host.mp4": ASSETS / "sample_face.mp4", "voice.m4a": ASSETS / "sample_voice.m4a"})
    out = d.wait_published("Town hall")

    output = json.loads((out / "report.json").read_text())["outputs"][0]
    assert ("host_voice.mp4", "host_voice.jpg") == (output["file"], output["poster"])
    assert 0 < output["poster_at_s"] < output["duration_s"]
    assert (out / "host_voice.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

    soup = BeautifulSoup(browser.dom(d.outbox / "index.html"), "html.parser")
    assert "yes" == soup.html["data-live"]
    row = soup.select_one("#finished tbody tr")
    assert "Town hall/" == row.th.a["href"].replace("%20", " ")
    assert "done" in row.select_one(".state").get_text()
    video = row.select_one("video")
    assert ("Town%20hall/host_voice.mp4", "Town%20hall/host_voice.jpg") == (video["src"], video["poster"])
    assert ["Town%20hall/host_voice.mp4"] == [a["href"] for a in row.select(".caption a")]
    assert re.fullmatch(r"just now|\d+ s ago", row.select_one(".ago").get_text())

    typo = soup.select("#finished tbody tr")[1]
    assert "✖ failed" == typo.select_one(".state").get_text(" ", strip=True)
    assert "Did you mean 'videos'?" in typo.select_one(".reason").get_text()


def _mouth_gaps(video: Path, size: int) -> np.ndarray:
    """Mouth opening in every frame (lip gap over eye distance), from the project's face tracker."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)
    track = FaceTracker().track(iter(frames))
    faces = [track.face(i, size, size) for i in range(len(track))]
    return np.array([np.nan if f is None else source_gap(np.asarray(f.landmarks, float)) for f in faces])


def test_the_poster_shows_the_mouth_open(tmp_path):
    """With the builtin engine (the demo job), the poster's frame has the mouth wider open than at least
    80 % of the output's frames (measured 2026-11-29: 95.6 %, gap 0.239 against a median of 0.079)."""
    done = subprocess.run([sys.executable, "-m", "heygem_daemon.cli", "demo", "--inbox", str(tmp_path / "in"),
                           "--outbox", str(tmp_path / "out"), "--settle-seconds", "0", "--log-level", "warning"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (job,) = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("sample-")]
    output = json.loads((job / "report.json").read_text())["outputs"][0]
    gaps = _mouth_gaps(job / output["file"], 524)
    frame = int(output["poster_at_s"] * 25)
    seen = gaps[~np.isnan(gaps)]
    assert not np.isnan(gaps[frame])
    assert (seen < gaps[frame]).mean() >= 0.8
