"""Safe listing of untrusted job folders (heygem_daemon.jobs.folder)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from heygem_daemon.errors import LimitExceededError, UnsafeInputError
from heygem_daemon.jobs.folder import (
    Entry,
    classify,
    content_fingerprint,
    open_regular,
    partial_names,
    scan_folder,
)


def _touch(folder: Path, name: str, data: bytes = b"x") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _returns_quickly(call, timeout: float = 5.0):
    """Run ``call`` in a thread; fail (and unblock it) if it does not return in time."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    return thread, outcome


def _release_fifo(fifo: Path) -> None:
    """Open the FIFO's write end so a reader stuck on it wakes up."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("voice.wav", "audio"),
        ("Voice.MP3", "audio"),
        ("x.opus", "audio"),
        ("alice.mp4", "video"),
        ("bob.MOV", "video"),
        ("c.m4v", "video"),
        ("job.toml", "toml"),
        ("READY", "ready"),
        (".DS_Store", "junk"),
        ("._alice.mp4", "junk"),
        (".nfs000123", "junk"),
        ("Thumbs.db", "junk"),
        ("desktop.ini", "junk"),
        ("alice.mp4.part", "partial"),
        ("voice.wav.TMP", "partial"),
        ("bob.mov.crdownload", "partial"),
        ("~$notes.docx", "partial"),
        ("notes.txt", "other"),
        ("ready", "other"),
    ],
)
def test_classify_by_name(name: str, kind: str) -> None:
    """Each file name maps to the kind the folder contract gives it."""
    assert kind == classify(name)


def test_scan_lists_plain_files_sorted(tmp_path: Path) -> None:
    """A folder of plain files is listed by name with size, mtime and kind."""
    _touch(tmp_path, "voice.wav", b"abc")
    _touch(tmp_path, "alice.mp4", b"12345")
    _touch(tmp_path, ".DS_Store")
    entries = scan_folder(tmp_path, max_files=10)
    assert [".DS_Store", "alice.mp4", "voice.wav"] == [e.name for e in entries]
    assert ["junk", "video", "audio"] == [e.kind for e in entries]
    assert 5 == entries[1].size
    assert os.stat(tmp_path / "alice.mp4").st_mtime_ns == entries[1].mtime_ns


def test_symlink_to_file_outside_is_refused(tmp_path: Path) -> None:
    """A symlink named voice.wav pointing at /etc/passwd is refused with a fix."""
    (tmp_path / "voice.wav").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeInputError) as err:
        scan_folder(tmp_path, max_files=10)
    assert "'voice.wav' is a symbolic link; copy the real file into the job folder instead." == str(err.value)


def test_symlink_to_outside_fifo_is_never_opened(tmp_path: Path) -> None:
    """A symlink to a FIFO outside the folder is refused at once: nothing behind it is read."""
    job, outside = tmp_path / "job", tmp_path / "outside"
    job.mkdir()
    outside.mkdir()
    fifo = outside / "trap"
    os.mkfifo(fifo)
    (job / "voice.wav").symlink_to(fifo)
    thread, outcome = _returns_quickly(lambda: scan_folder(job, max_files=10))
    if thread.is_alive():
        _release_fifo(fifo)
        thread.join(5)
        pytest.fail("scan_folder blocked on a FIFO behind a symlink")
    assert isinstance(outcome.get("error"), UnsafeInputError)
    assert "symbolic link" in str(outcome["error"])


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    """A symlink pointing nowhere is refused like any other symlink."""
    (tmp_path / "alice.mp4").symlink_to(tmp_path / "missing.mp4")
    with pytest.raises(UnsafeInputError, match="'alice.mp4' is a symbolic link"):
        scan_folder(tmp_path, max_files=10)


def test_junk_symlink_and_folder_are_ignored(tmp_path: Path) -> None:
    """Dotfiles are never read, so even a hidden symlink or folder is just junk."""
    (tmp_path / ".hidden").symlink_to("/etc/passwd")
    (tmp_path / ".AppleDouble").mkdir()
    _touch(tmp_path, "voice.wav")
    entries = scan_folder(tmp_path, max_files=10)
    assert {".hidden": "junk", ".AppleDouble": "junk", "voice.wav": "audio"} == {e.name: e.kind for e in entries}


def test_hard_link_is_refused(tmp_path: Path) -> None:
    """A regular file with a second hard link could alias a file elsewhere: refused."""
    job = tmp_path / "job"
    job.mkdir()
    secret = _touch(tmp_path, "secret.wav")
    os.link(secret, job / "voice.wav")
    with pytest.raises(UnsafeInputError, match="'voice.wav' is a hard link"):
        scan_folder(job, max_files=10)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO in the job folder is refused and scanning does not wait on it."""
    os.mkfifo(tmp_path / "voice.wav")
    started = time.monotonic()
    with pytest.raises(UnsafeInputError, match="'voice.wav' is a named pipe"):
        scan_folder(tmp_path, max_files=10)
    assert time.monotonic() - started < 1.0


def test_socket_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Unix socket in the job folder is refused."""
    monkeypatch.chdir(tmp_path)  # socket paths are limited to ~108 bytes: bind a short relative name
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("talk.mp4")
        with pytest.raises(UnsafeInputError, match="'talk.mp4' is a socket"):
            scan_folder(tmp_path, max_files=10)


def test_sub_folder_is_refused(tmp_path: Path) -> None:
    """A sub-folder is refused with a message saying to put files directly in the job folder."""
    (tmp_path / "clips").mkdir()
    with pytest.raises(UnsafeInputError, match="'clips' is a sub-folder; put all files directly"):
        scan_folder(tmp_path, max_files=10)


def test_job_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """A job 'folder' that is itself a symlink (e.g. to /etc) is not listed."""
    (tmp_path / "job").symlink_to("/etc")
    with pytest.raises(UnsafeInputError, match="not a real folder"):
        scan_folder(tmp_path / "job", max_files=10)


def test_ten_thousand_files_refused_fast(tmp_path: Path) -> None:
    """A folder with 10,000 files is refused at the limit, quickly."""
    for i in range(10_000):
        os.close(os.open(tmp_path / f"f{i}.mp4", os.O_CREAT | os.O_WRONLY, 0o644))
    started = time.monotonic()
    with pytest.raises(LimitExceededError) as err:
        scan_folder(tmp_path, max_files=500)
    assert time.monotonic() - started < 1.0
    assert "limits.max_files_per_job" == err.value.key
    assert "more than 500 files" in str(err.value)


def test_invalid_utf8_name_is_refused_readably(tmp_path: Path) -> None:
    """A file name whose bytes are not UTF-8 is refused, shown with \\x escapes."""
    os.close(os.open(os.fsencode(tmp_path) + b"/voice\xff.wav", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(UnsafeInputError) as err:
        scan_folder(tmp_path, max_files=10)
    assert "'voice\\xff.wav'" in str(err.value)
    assert "not valid UTF-8" in str(err.value)


def test_open_regular_reads_plain_file(tmp_path: Path) -> None:
    """open_regular returns a readable descriptor for a plain file."""
    fd = open_regular(_touch(tmp_path, "job.toml", b"priority = 1\n"))
    try:
        assert b"priority = 1\n" == os.read(fd, 100)
    finally:
        os.close(fd)


def test_open_regular_refuses_fifo_without_blocking(tmp_path: Path) -> None:
    """A file swapped for a FIFO after scanning is refused at once, not waited on."""
    fifo = tmp_path / "job.toml"
    os.mkfifo(fifo)
    thread, outcome = _returns_quickly(lambda: open_regular(fifo))
    if thread.is_alive():
        _release_fifo(fifo)
        thread.join(5)
        pytest.fail("open_regular blocked on a FIFO")
    assert isinstance(outcome.get("error"), UnsafeInputError)
    assert "'job.toml' is a named pipe" in str(outcome["error"])


def test_open_regular_refuses_symlink(tmp_path: Path) -> None:
    """A file swapped for a symlink after scanning is refused (O_NOFOLLOW)."""
    (tmp_path / "job.toml").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeInputError, match="'job.toml' is a symbolic link"):
        open_regular(tmp_path / "job.toml")


def test_fingerprint_changes_when_a_file_grows(tmp_path: Path) -> None:
    """The fingerprint is stable while nothing changes and differs once a file (even junk) grows."""
    _touch(tmp_path, "voice.wav")
    hidden = _touch(tmp_path, ".voice.wav.rsync")
    first = content_fingerprint(scan_folder(tmp_path, max_files=10))
    assert first == content_fingerprint(scan_folder(tmp_path, max_files=10))
    hidden.write_bytes(b"more bytes")
    assert first != content_fingerprint(scan_folder(tmp_path, max_files=10))


def test_partial_names_lists_copies_in_progress() -> None:
    """partial_names returns only the names that look like unfinished copies."""
    entries = [
        Entry("a.mp4.part", 1, 0, "partial"),
        Entry("voice.wav", 1, 0, "audio"),
        Entry("~$x.docx", 1, 0, "partial"),
    ]
    assert ["a.mp4.part", "~$x.docx"] == partial_names(entries)
