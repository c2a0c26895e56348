"""The status page with the real daemon: a real job, then the page as a browser shows it.

The page's states one by one (running, failed, done, polling) are specified in
tests/status/; this is the whole chain: runner → poster → publish → board → page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.support.browser import browser  # noqa: F401 -- the fixture

from .conftest import drop_job

pytestmark = pytest.mark.slow

ASSETS = Path(__file__).resolve().parents[2] / "heygem_daemon" / "assets"


def test_a_finished_job_appears_on_the_page_with_its_thumbnail_and_links(daemon_factory, browser):  # noqa: F811
    """After a real job, index.html (in Chromium, from disk) links the job folder and its video, shows
    the video in place with the poster the publish step cut from a frame with a face, and says when."""
    d = daemon_factory().start()
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
