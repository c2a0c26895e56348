"""Publishing: atomic appearance, collision suffixes, sources never followed."""

from __future__ import annotations

import os
from pathlib import Path

from heygem_daemon.jobs.publish import (
    Staging,
    choose_name,
    publish,
    remove_atomic_temps,
    rename_noreplace,
    stage_sources,
    write_atomic,
)


def test_a_taken_name_gets_a_suffix_and_nothing_is_overwritten(tmp_path):
    """outbox/job exists → the new result becomes job-2, then job-3."""
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "keep.txt").write_text("old")
    names = []
    for i in range(2):
        staging = Staging(tmp_path, f"s{i}")
        staging.create()
        staging.file("report.json").write_text("{}")
        names.append(publish(staging, "job").name)
    assert names == ["job-2", "job-3"]
    assert (tmp_path / "job" / "keep.txt").read_text() == "old"
    assert choose_name(tmp_path, "job") == "job-4"


def test_rename_noreplace_refuses_an_existing_empty_folder(tmp_path):
    """Plain rename() would replace an empty folder; ours does not."""
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    assert rename_noreplace(tmp_path / "src", tmp_path / "dst") is False
    assert (tmp_path / "src").is_dir()


def test_sources_are_copied_without_links_hard_links_or_special_files(tmp_path):
    """Regular files are kept; a symlink, a FIFO and a hard-linked file are left out, never followed."""
    src = tmp_path / "claimed"
    src.mkdir()
    (src / "talk.mp4").write_bytes(b"video")
    (src / "evil.wav").symlink_to("/etc/passwd")
    os.mkfifo(src / "pipe.wav")
    (tmp_path / "outside.txt").write_text("secret")
    os.link(tmp_path / "outside.txt", src / "hard.wav")
    staging = Staging(tmp_path / "out", "s")
    staging.create()
    skipped = stage_sources(staging, src)
    dst = staging.path / "source"
    assert skipped == ["evil.wav", "hard.wav", "pipe.wav"]
    assert (dst / "talk.mp4").read_bytes() == b"video"
    assert not os.path.lexists(dst / "evil.wav")
    assert not (dst / "hard.wav").exists() and not (dst / "pipe.wav").exists()


def test_committed_outputs_leave_no_partial_file(tmp_path):
    """commit_output renames the hidden partial to the final name."""
    staging = Staging(tmp_path, "s")
    staging.create()
    staging.partial_path("a.mp4").write_bytes(b"mp4")
    staging.commit_output("a.mp4")
    assert sorted(p.name for p in staging.path.iterdir()) == [".results", "a.mp4"]


def test_a_resumed_job_drops_the_temp_files_a_kill_left_in_its_staging(tmp_path):
    """A SIGKILL inside write_atomic leaves '.report.json.<pid>.<tid>.tmp' in staging: the next
    attempt removes it, so it is never published with the job."""
    staging = Staging(tmp_path, "job.h.1.1000")
    staging.create()
    write_atomic(staging.file("report.json"), "{}")
    litter = [staging.file(".report.json.4242.139918808390528.tmp"),
              staging.results / ".0.json.4242.139918808390528.tmp"]
    for path in litter:
        path.write_text("{", encoding="utf-8")
    staging.drop_partials()
    assert not any(path.exists() for path in litter)
    assert ["report.json"] == sorted(p.name for p in staging.path.iterdir() if p.name != ".results")


def test_outbox_temp_files_are_removed_only_once_nobody_can_be_writing_them(tmp_path):
    """status.json's temp file is removed when older than the given age, never a fresh one."""
    fresh = tmp_path / ".status.json.4242.1.tmp"
    old = tmp_path / ".index.html.4242.1.tmp"
    for path in (fresh, old, tmp_path / "status.json", tmp_path / ".notes.tmp"):
        path.write_text("x", encoding="utf-8")
    past = os.path.getmtime(old) - 120
    os.utime(old, (past, past))
    assert [old.name] == remove_atomic_temps(tmp_path, older_than_s=60)
    assert sorted([".notes.tmp", fresh.name, "status.json"]) == sorted(p.name for p in tmp_path.iterdir())


def test_a_resumed_job_drops_the_sources_an_earlier_attempt_staged(tmp_path):
    """A kill between staging the sources and the publish rename leaves the job's files hard-linked
    into staging; the next attempt unlinks them first, so validation does not refuse them as links."""
    job = tmp_path / "claimed" / "job.h.1"
    job.mkdir(parents=True)
    (job / "voice.wav").write_bytes(b"RIFF")
    staging = Staging(tmp_path / "outbox", "job.h.1.1000")
    staging.create()
    stage_sources(staging, job)
    assert 2 == (job / "voice.wav").stat().st_nlink
    staging.drop_partials()
    assert 1 == (job / "voice.wav").stat().st_nlink
    assert not (staging.path / "source").exists()
