"""The status page in a real browser: headless Chromium opens index.html from disk, as from the share.

Each test builds an outbox in one state with the real board and real files
(scenes.py), lets Chromium load the page and run its script, and reads the DOM it
leaves.  Screenshots go to a temporary folder, or to the folder HEYGEM_DOCS_IMG
names (``HEYGEM_DOCS_IMG=docs/img pytest tests/status/test_browser.py`` renews the
ones in docs/status-page.md).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import cv2
import pytest
from bs4 import BeautifulSoup

from .scenes import Scene, done, every_state, failed, make_scene, running


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HEYGEM_DOCS_IMG") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _dom(browser, scene: Scene, **options) -> BeautifulSoup:
    return BeautifulSoup(browser.dom(scene.page, **options), "html.parser")


def _shoot(browser, scene: Scene, dest: Path, size=(1280, 900)) -> None:
    """A screenshot that shows something: not one flat colour."""
    browser.screenshot(scene.page, dest, size=size)
    assert cv2.imread(str(dest), cv2.IMREAD_GRAYSCALE).std() > 10


def test_a_running_job_shows_video_n_of_m_a_bar_a_percentage_and_the_time_left(tmp_path, browser, shots):
    """Video 3 of 8, 30 % of the whole job, about 4 min left (70 % at the 90 s per 30 % so far)."""
    scene = running(make_scene(tmp_path))
    soup = _dom(browser, scene)
    assert "yes" == soup.html["data-live"]  # the script ran
    row = soup.select_one("#running tbody tr")
    assert "Onboarding 2027" in row.th.get_text()
    assert "video 3 of 8: 40%" == row.select_one(".detail").get_text()
    bar = row.select_one("progress")
    assert ("100", "30") == (bar["max"], bar["value"])
    assert "Onboarding 2027: 30% done" == bar["aria-label"]
    assert "30% done · about 4 min left" == row.select_one(".figures").get_text()
    assert "Team call" in soup.select_one("#queued tbody").get_text()
    assert "settling (3/10 s unchanged)" in soup.select_one("#waiting tbody").get_text()
    assert "Onboarding 2027 (1 running)" not in soup.title.get_text()
    assert "heygem-daemon (1 running)" == soup.title.get_text()
    _shoot(browser, scene, shots / "status-running.png", size=(1100, 560))


def test_a_failed_job_shows_its_reason_in_plain_words(tmp_path, browser, shots):
    """The reason from ERROR.txt, the word "failed" beside the icon, a link to the whole ERROR.txt."""
    scene = failed(make_scene(tmp_path))
    row = _dom(browser, scene).select_one("#finished tbody tr")
    assert "state-failed" in row["class"]
    assert "✖ failed" == row.select_one(".state").get_text(" ", strip=True)
    reason = " ".join(row.select_one(".reason").get_text().split())
    assert ("Why: talk.mp4 with voice.wav: No face was found in any frame of 'talk.mp4'. "
            "Use a video where one person faces the camera.") == reason
    link = row.select_one(".more a")
    assert "Holiday%20greeting/ERROR.txt" == link["href"]
    assert (scene.page.parent / unquote(link["href"])).is_file()
    assert [] == row.select("video")
    _shoot(browser, scene, shots / "status-failed.png", size=(1100, 600))


def test_a_finished_job_links_its_folder_and_each_video_with_a_thumbnail_and_a_player(tmp_path, browser, shots):
    """Folder link, one <video> per output whose poster is the JPEG beside it, a link to each MP4."""
    scene = done(make_scene(tmp_path))
    row = _dom(browser, scene).select_one("#finished tbody tr")
    assert "Quarterly%20update/" == row.th.a["href"]
    assert "✔ done" == row.select_one(".state").get_text(" ", strip=True)
    videos = row.select("video")
    assert [("Quarterly%20update/alice_voice.mp4", "Quarterly%20update/alice_voice.jpg", "none"),
            ("Quarterly%20update/bob_voice.mp4", "Quarterly%20update/bob_voice.jpg", "none")] == \
        [(v["src"], v["poster"], v["preload"]) for v in videos]
    for video in videos:
        assert video.has_attr("controls")
        poster = cv2.imread(str(scene.page.parent / unquote(video["poster"])))
        assert poster is not None and poster.shape[1] <= 320
    assert ["alice_voice.mp4", "bob_voice.mp4"] == [a.get_text() for a in row.select(".caption a")]
    assert [] == row.select(".reason")
    _shoot(browser, scene, shots / "status-done.png", size=(1100, 860))


def test_the_whole_page_in_every_state_with_notices(tmp_path, browser, shots):
    """Running, queued, arriving, finished (done, partial, failed) and notices, on one page; wide and narrow."""
    scene = every_state(tmp_path)
    soup = _dom(browser, scene)
    assert ["Running (1)", "Queued (1)", "Arriving (1)", "Finished (3)", "Notices (2)"] == \
        [h.get_text() for h in soup.select("main h2")]
    assert ["failed", "partly done (1 of 2 videos)", "done"] == \
        [td.get_text(" ", strip=True)[2:] for td in soup.select("#finished .state")]
    notices = soup.select("#notices tbody tr")
    assert ["⚠ notification", "ℹ retention"] == [n.th.get_text(" ", strip=True) for n in notices]
    assert "HTTP 503 after 5 tries" in notices[0].get_text()
    _shoot(browser, scene, shots / "status-page.png", size=(1280, 1900))
    _shoot(browser, scene, shots / "status-page-narrow.png", size=(420, 1400))


def test_the_script_keeps_relative_times_current(tmp_path, browser):
    """A page written 7 minutes ago still says "7 min ago" for a job that finished then, not "just now"."""
    scene = done(make_scene(tmp_path))
    scene.age(7)
    page = scene.page.read_text(encoding="utf-8")
    scene.page.write_text(re.sub(r"(<span class=ago [^>]*>)[^<]*", r"\1just now", page), encoding="utf-8")
    row = _dom(browser, scene).select_one("#finished tbody tr")
    assert "7 min ago" == row.select_one(".ago").get_text()


def test_polling_patches_the_page_in_place_and_keeps_what_did_not_change(tmp_path, browser):
    """A changed status.js shows up without a reload, and a video element already on the page stays
    the same element (so a video someone is watching keeps playing).

    status.js is replaced by a test script that serves the first status on its first load and the
    next one after: it marks the first <video> element with a JavaScript property, which only the
    same element still carries later (a reload or a replaced row would lose it)."""
    scene = running(done(make_scene(tmp_path, refresh_s=1)))
    page, first = scene.page.read_text(encoding="utf-8"), (scene.outbox / "status.js").read_text(encoding="utf-8")
    scene.publish("Onboarding 2027", {"dana.mp4": None})
    second = (scene.outbox / "status.js").read_text(encoding="utf-8")
    updated = json.loads(second.split(" = ", 1)[1].rstrip(";\n"))["updated_at"]
    scene.page.write_text(page, encoding="utf-8")
    (scene.outbox / "status.js").write_text(
        "(function () {\n"
        "  var n = window.__loads = (window.__loads || 0) + 1;\n"
        "  var video = document.querySelector('video[src=\"Quarterly%20update/alice_voice.mp4\"]');\n"
        "  if (n === 1) { video.__marked = true; }\n"
        "  else { document.documentElement.setAttribute('data-video-kept', String(!!video.__marked)); }\n"
        "})();\n"
        f"if (window.__loads === 1) {{ {first} }} else {{ {second} }}\n", encoding="utf-8")

    soup = _dom(browser, scene, budget_ms=5000)
    assert int(soup.html["data-polls"]) >= 3
    assert updated == soup.html["data-updated"]
    assert "true" == soup.html["data-video-kept"]
    assert ["Onboarding 2027", "Quarterly update"] == [th.get_text(strip=True) for th in soup.select("#finished tbody th")]
    assert "Running (0)" == soup.select_one("#running h2").get_text()


def test_an_unreachable_status_file_is_said_on_the_page(tmp_path, browser):
    """status.js gone (the share dropped): a status line says so; the last good content stays."""
    scene = done(make_scene(tmp_path, refresh_s=1))
    (scene.outbox / "status.js").unlink()
    soup = _dom(browser, scene, budget_ms=2500)
    assert "Cannot read status.js" in soup.select_one("#live").get_text()
    assert 2 == len(soup.select("#finished video"))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base class's name
        pass


@pytest.fixture
def web_server(tmp_path):
    """A static web server on 127.0.0.1 serving ``tmp_path/outbox`` (made by the test), as a NAS would."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "outbox"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_behind_a_static_web_server_the_page_polls_and_its_links_resolve(tmp_path, browser, web_server):
    """Served over HTTP the page is the same: status.js is polled, videos and posters are served."""
    done(make_scene(tmp_path, refresh_s=1))
    soup = BeautifulSoup(browser.dom(f"{web_server}/index.html", budget_ms=2500), "html.parser")
    assert int(soup.html["data-polls"]) >= 1
    assert "" == soup.select_one("#live").get_text()
    for video in soup.select("#finished video"):
        for link in (video["src"], video["poster"]):
            with urllib.request.urlopen(f"{web_server}/{link}", timeout=10) as reply:
                assert 200 == reply.status


def test_a_page_the_daemon_stopped_writing_says_so(tmp_path, browser):
    """status.js last written 12 minutes ago (a running daemon writes every few seconds): the status line says so."""
    scene = done(make_scene(tmp_path, refresh_s=1))
    status_js = scene.outbox / "status.js"
    stamp = datetime.now(timezone.utc) - timedelta(minutes=12)
    text = status_js.read_text(encoding="utf-8")
    live = json.loads(text.split(" = ", 1)[1].rstrip(";\n"))
    status_js.write_text(text.replace(live["updated_at"], stamp.isoformat(timespec="seconds")), encoding="utf-8")
    soup = _dom(browser, scene, budget_ms=2500)
    assert "Not updated for 12 min: the daemon may have stopped." == soup.select_one("#live").get_text()
