"""The status board: what status.json, status.js and index.html hold, and what survives a restart."""

from __future__ import annotations

import json

from heygem_daemon.status import MAX_NOTICES, JobStatus, StatusBoard

from .scenes import NO_FACE, done, every_state, failed, make_scene, partial

#: the keys of status.json before the page showed results (NAS scripts read these)
OLD_TOP_KEYS = {"updated_at", "host", "problem", "waiting", "queued", "running", "recent"}
OLD_JOB_KEYS = {"job", "state", "detail", "since", "outbox_name", "progress"}


def _status(scene) -> dict:
    return json.loads((scene.outbox / "status.json").read_text(encoding="utf-8"))


def test_status_json_keeps_every_key_nas_scripts_read(tmp_path):
    """status.json only grows: the old keys are there, with the old meanings."""
    data = _status(every_state(tmp_path))
    assert OLD_TOP_KEYS <= set(data)
    for row in data["queued"] + data["running"] + data["recent"]:
        assert OLD_JOB_KEYS <= set(row)
    assert {"job", "detail"} == set(data["waiting"][0])
    assert ["Holiday greeting", "Welcome", "Quarterly update"] == [r["job"] for r in data["recent"]]
    assert "video 3 of 8: 40%" == data["running"][0]["detail"] and 0.3 == data["running"][0]["progress"]


def test_a_finished_job_lists_its_outputs_with_posters_from_report_json(tmp_path):
    """Each output: the MP4, its poster, the sources it came from."""
    data = _status(done(make_scene(tmp_path)))
    expected = [
        {"video": "alice.mp4", "audio": "voice.wav", "file": "alice_voice.mp4", "poster": "alice_voice.jpg",
         "status": "done", "error": None},
        {"video": "bob.mp4", "audio": "voice.wav", "file": "bob_voice.mp4", "poster": "bob_voice.jpg",
         "status": "done", "error": None},
    ]
    assert expected == data["recent"][0]["outputs"]
    assert data["recent"][0]["reason"] is None


def test_a_failed_job_carries_the_first_lines_of_its_error_txt(tmp_path):
    """The reason is ERROR.txt without its heading and advice: the problem itself."""
    data = _status(failed(make_scene(tmp_path)))
    assert f"- talk.mp4 with voice.wav: {NO_FACE}" == data["recent"][0]["reason"]


def test_a_partial_job_has_both_its_videos_and_its_reason(tmp_path):
    data = _status(partial(make_scene(tmp_path)))
    row = data["recent"][0]
    assert "partial" == row["state"]
    assert ["done", "failed"] == [o["status"] for o in row["outputs"]]
    assert "talk.mp4 with voice.wav: No face" in row["reason"]


def test_time_left_comes_from_the_speed_of_the_videos_not_from_the_audio_analysis(tmp_path):
    """30 % of the job in the 90 s since the first video began: 70 % take about 210 s more."""
    scene = make_scene(tmp_path)
    board = scene.board
    board.running_update("j", "analysing audio voice.wav")
    scene.clock.now += 600  # a long analysis does not count
    board.running_update("j", "video 1 of 8: 0%", 0.0)
    assert board.running["j"].eta_s is None
    scene.clock.now += 90
    board.running_update("j", "video 3 of 8: 40%", 0.3)
    assert 210 == board.running["j"].eta_s
    assert 210 == _status(scene)["running"][0]["eta_s"]


def test_no_time_left_is_guessed_from_the_first_seconds(tmp_path):
    scene = make_scene(tmp_path)
    scene.board.running_update("j", "video 1 of 2: 0%", 0.0)
    scene.clock.now += 2
    scene.board.running_update("j", "video 1 of 2: 10%", 0.05)
    assert scene.board.running["j"].eta_s is None


def test_finished_jobs_and_notices_survive_a_restart_with_their_results(tmp_path):
    """A new board on the same state folder shows the same finished jobs, outputs and notices."""
    scene = every_state(tmp_path)
    again = StatusBoard(scene.outbox, tmp_path / "state", "nas-1")
    assert [r.job for r in scene.board.recent] == [r.job for r in again.recent]
    assert [r.outputs for r in scene.board.recent] == [r.outputs for r in again.recent]
    assert scene.board.notices == again.notices


def test_history_from_before_the_page_showed_results_is_read_from_the_outbox(tmp_path):
    """recent.json rows of an older version (no outputs, unknown keys) load, and their results are read."""
    scene = done(make_scene(tmp_path))
    old_row = {"job": "Quarterly update", "state": "done", "detail": "published", "since": "2026-11-01T10:00:00+00:00",
               "outbox_name": "Quarterly update", "progress": None, "some_future_key": 1}
    (tmp_path / "state" / "recent.json").write_text(json.dumps([old_row]), encoding="utf-8")
    again = StatusBoard(scene.outbox, tmp_path / "state", "nas-1")
    assert ["alice_voice.jpg", "bob_voice.jpg"] == [o["poster"] for o in again.recent[0].outputs]


def test_a_job_folder_cleared_away_leaves_its_row_without_results(tmp_path):
    """A finished job whose folder is gone (retention, by hand) still loads, with no outputs."""
    row = JobStatus("gone", "done", "published", outbox_name="gone")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "recent.json").write_text(json.dumps([row.__dict__]), encoding="utf-8")
    again = StatusBoard(tmp_path, tmp_path / "state", "h")
    assert [] == again.recent[0].outputs


def test_notices_are_listed_newest_first_bounded_and_survive_a_restart(tmp_path):
    """notice() adds to status.json's "notices" (newest first, at most MAX_NOTICES), kept across restarts."""
    board = StatusBoard(tmp_path, tmp_path / "state", "h")
    for i in range(MAX_NOTICES + 3):
        board.notice("retention", f"moved job-{i} to .trash")
    board.notice("notify_failed", "webhook https://example.invalid: HTTP 500")
    data = json.loads((tmp_path / "status.json").read_text())
    assert MAX_NOTICES == len(data["notices"])
    assert "notify_failed" == data["notices"][0]["kind"]
    assert f"moved job-{MAX_NOTICES + 2} to .trash" == data["notices"][1]["text"]
    assert {"at", "kind", "text"} == set(data["notices"][0])
    assert "webhook https://example.invalid: HTTP 500" in (tmp_path / "index.html").read_text()
    assert data["notices"] == StatusBoard(tmp_path, tmp_path / "state", "h").notices


def test_status_js_carries_the_changing_part_of_the_page(tmp_path):
    """status.js sets window.heygemStatus to {updated_at, html}: the <main> of index.html."""
    scene = every_state(tmp_path)
    text = (scene.outbox / "status.js").read_text(encoding="utf-8")
    prefix = "window.heygemStatus = "
    assert text.startswith(prefix) and text.endswith(";\n")
    live = json.loads(text[len(prefix):-2])
    assert live["updated_at"] == _status(scene)["updated_at"]
    page = scene.page.read_text(encoding="utf-8")
    assert f"<main id=status>{live['html']}</main>" in page


def test_a_folder_name_that_is_not_utf8_does_not_stop_the_page(tmp_path):
    """Surrogate-escaped bytes are shown escaped in the text and keep their bytes in links."""
    board = StatusBoard(tmp_path, tmp_path / "state", "h")
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    board.finished(name, "failed", "published", name)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert ">caf\\udce9</a>" in page
    assert "href='caf%E9/'" in page


def test_progress_alone_rewrites_the_page_at_most_once_a_second(tmp_path):
    """Batches report several times a second; the files on the share change at most once a second
    for progress, at once for a new job or a new step without a fraction."""
    scene = make_scene(tmp_path)
    board, status = scene.board, scene.outbox / "status.json"

    def shown() -> str:
        return json.loads(status.read_text())["running"][0]["detail"]

    board.running_update("j", "video 1 of 2: 0%", 0.0)
    scene.clock.now += 0.3
    board.running_update("j", "video 1 of 2: 3%", 0.015)
    assert "video 1 of 2: 0%" == shown()
    assert 0.015 == board.running["j"].progress  # kept for the next write
    scene.clock.now += 0.8
    board.running_update("j", "video 1 of 2: 6%", 0.03)
    assert "video 1 of 2: 6%" == shown()
    board.running_update("j", "waiting to retry: outbox full")
    assert "waiting to retry: outbox full" == shown()
