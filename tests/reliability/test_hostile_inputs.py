"""Hostile job folders through the real daemon: each fails alone with a clear ERROR.txt, nothing
outside the job folder is read or written, nothing is fetched from the network, the daemon goes on.

Many of these cases are unit-tested in tests/jobs and tests/media; here they pass
through intake, claim, validation, probing, publishing and the status page together.
"""

from __future__ import annotations

import http.server
import os
import stat
import struct
import subprocess
import threading
import unicodedata
from pathlib import Path
from typing import Callable

import pytest

from .conftest import InotifySpy, read_report, sha256, wait_for

pytestmark = pytest.mark.slow

Builder = Callable[[Path], None]


def _copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def _long_mp4(face: Path, dst: Path) -> None:
    """The tiny clip with its movie and media headers claiming 10 hours."""
    data = bytearray(face.read_bytes())
    for box in (b"mvhd", b"mdhd"):
        at = data.find(box)
        while at >= 0:
            assert data[at + 4] == 0, "version-0 header expected"
            timescale = struct.unpack_from(">I", data, at + 16)[0]
            struct.pack_into(">I", data, at + 20, timescale * 36_000)
            at = data.find(box, at + 4)
    dst.write_bytes(bytes(data))


def _huge_avi(dst: Path) -> None:
    """A 6 KB AVI whose headers declare 16000x16000 frames (never decoded)."""
    raw = dst.with_suffix(".src.avi")
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=s=16x16:d=0.04",
                    "-frames", "1", "-c:v", "rawvideo", "-pix_fmt", "bgr24", str(raw)], check=True, timeout=60)
    data = bytearray(raw.read_bytes())
    raw.unlink()
    avih = data.find(b"avih") + 8
    struct.pack_into("<II", data, avih + 32, 16000, 16000)
    strf = data.find(b"strf") + 8
    struct.pack_into("<ii", data, strf + 4, 16000, 16000)
    dst.write_bytes(bytes(data))


def _many_streams(dst: Path, count: int = 1000) -> None:
    maps = [a for _ in range(count) for a in ("-map", "0:a")]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "0.05", *maps, "-c:a", "pcm_u8", str(dst)], check=True, timeout=120)


def _silent_wav(dst: Path) -> None:
    """A valid WAV header with a data chunk of 0 bytes: an audio with no samples."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    dst.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", 0))


def _hls(target: str) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.5,\n{target}\n#EXT-X-ENDLIST\n"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_trap():
    """A local web server that records any request: the daemon must never make one."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()
    thread.join(5)


def _cases(media: dict[str, Path], outside: Path, url: str) -> dict[str, tuple[Builder, str]]:
    """job name → (how to build it, a phrase its ERROR.txt must hold)."""
    face, voice = media["face"], media["voice"]
    secret_wav, secret_mp4 = outside / "secret.wav", outside / "secret.mp4"

    def with_voice(extra: Builder) -> Builder:
        def build(job: Path) -> None:
            _copy(voice, job / "voice.wav")
            extra(job)
        return build

    def with_face(extra: Builder) -> Builder:
        def build(job: Path) -> None:
            _copy(face, job / "talk.mp4")
            extra(job)
        return build

    def text(name: str, content: str) -> Builder:
        return lambda job: (job / name).write_text(content, encoding="utf-8")

    def toml(content: str) -> Builder:
        return with_voice(with_face(text("job.toml", content)))

    def many_files(job: Path) -> None:
        for i in range(10_000):
            (job / f"note-{i:05d}.txt").write_bytes(b"x")

    def subfolder(job: Path) -> None:
        (job / "clips").mkdir()
        _copy(face, job / "clips" / "talk.mp4")

    return {
        "symlink-audio": (with_face(lambda j: (j / "voice.wav").symlink_to(secret_wav)), "symbolic link"),
        "symlink-video": (with_voice(lambda j: (j / "talk.mp4").symlink_to(secret_mp4)), "symbolic link"),
        "hard-link": (with_face(lambda j: os.link(secret_wav, j / "voice.wav")), "hard link"),
        "fifo": (with_voice(lambda j: os.mkfifo(j / "talk.mp4")), "named pipe"),
        "device": (with_voice(lambda j: os.mknod(j / "talk.mp4", stat.S_IFCHR | 0o600, os.makedev(1, 3))),
                   "device"),
        "sub-folder": (with_voice(subfolder), "sub-folder"),
        "folder-named-like-video": (with_voice(lambda j: (j / "talk.mp4").mkdir()), "sub-folder"),
        "toml-dotdot": (toml(f'videos = ["../../{outside.name}/secret.mp4"]\n'), "is a path"),
        "toml-absolute": (toml(f'audio = "{secret_wav}"\n'), "is a path"),
        "name-separator": (toml('output_name = "../../{video}.mp4"\n'), "separator"),
        "name-nul": (toml('output_name = "a\\u0000b.mp4"\n'), "NUL"),
        "name-con": (toml('output_name = "CON.mp4"\n'), "reserved"),
        "name-trailing-dot": (toml('output_name = "{video}.mp4."\n'), "ends in a dot"),
        "hls-etc-passwd": (with_voice(text("talk.mp4", _hls("file:///etc/passwd"))), "playlist"),
        "hls-outside-file": (with_voice(text("talk.mp4", _hls(f"file://{secret_mp4}"))), "playlist"),
        "hls-http": (with_voice(text("talk.mp4", _hls(f"{url}/segment.ts"))), "playlist"),
        "avi-that-is-hls": (with_voice(text("talk.avi", _hls(f"{url}/avi.ts"))), "playlist"),
        "concat-list": (with_voice(text("talk.mp4", f"ffconcat version 1.0\nfile '{secret_mp4}'\n")), "playlist"),
        "zero-byte": (with_voice(lambda j: (j / "talk.mp4").write_bytes(b"")), "empty"),
        "truncated": (with_voice(lambda j: (j / "talk.mp4").write_bytes(face.read_bytes()[: face.stat().st_size // 2])),
                      "talk.mp4"),
        "16000x16000": (with_voice(lambda j: _huge_avi(j / "talk.avi")), "pixels wide"),
        "ten-hours": (with_voice(lambda j: _long_mp4(face, j / "talk.mp4")), "max_duration_s"),
        "1000-streams": (with_voice(lambda j: _many_streams(j / "talk.mkv")), "streams"),
        "no-samples": (with_face(lambda j: _silent_wav(j / "voice.wav")), "voice.wav"),
        "50mb-job-toml": (with_voice(with_face(
            lambda j: (j / "job.toml").write_bytes(b"# padding\n" * 5_000_000))), "job.toml"),
        "invalid-utf8-name": (with_voice(lambda j: _copy(face, Path(os.fsdecode(bytes(j) + b"/talk\xff.mp4")))),
                              "UTF-8"),
        "10000-files": (with_voice(with_face(many_files)), "more than 500 files"),
    }


def _facts(path: Path) -> tuple:
    """Content and metadata that nothing may change (the link count may: jobs hard-link it)."""
    st = path.stat()
    return sha256(path), st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns


def _drop(inbox: Path, name: str, build: Builder) -> None:
    staging = inbox.parent / f"build-{name}"
    staging.mkdir()
    build(staging)
    os.rename(staging, inbox / name)


def test_hostile_job_folders_fail_alone_with_clear_errors(daemon_factory, tiny_media, tmp_path, http_trap):
    """27 hostile jobs at once: each failed with its reason in ERROR.txt, no outside access, daemon alive."""
    url, hits = http_trap
    outside = tmp_path / "outside"
    outside.mkdir()
    _copy(tiny_media["voice"], outside / "secret.wav")
    _copy(tiny_media["face"], outside / "secret.mp4")
    before = {p.name: _facts(p) for p in outside.iterdir()}
    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2}).start()
    cases = _cases(tiny_media, outside, url)
    try:
        os.mknod(tmp_path / "probe-device", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        cases.pop("device")  # not root: device files cannot be made here (CI runs as root)
    spy = InotifySpy([outside, *outside.iterdir()])
    try:
        for name, (build, _) in cases.items():
            _drop(d.inbox, name, build)
        # the sender's own copy (hard link) and the builders may touch the outside files;
        # only what happens after the drop counts
        spy.events()
        wait_for(lambda: all((d.outbox / n / "report.json").exists() for n in cases), 240, d.log)
        outside_events = spy.events()
    finally:
        spy.close()
    problems = []
    for name, (_, phrase) in cases.items():
        out = d.outbox / name
        report = read_report(out)
        error = (out / "ERROR.txt").read_text(encoding="utf-8") if (out / "ERROR.txt").exists() else ""
        if report["status"] != "failed" or phrase.lower() not in error.lower():
            problems.append(f"{name}: status {report['status']}, ERROR.txt: {error!r}")
        if "Traceback" in error or "Internal error" in error:
            problems.append(f"{name}: not a clear error: {error!r}")
        if len(error) > 4000:
            problems.append(f"{name}: ERROR.txt is {len(error)} characters long")
        if any(p.suffix == ".mp4" for p in out.iterdir()):
            problems.append(f"{name}: an output was published")
    assert problems == []
    assert outside_events == []
    assert hits == []
    assert {p.name: _facts(p) for p in outside.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("build-")) == []
    assert [p.name for p in d.inbox.iterdir()] == [".heygem"]
    assert d.proc.poll() is None
    _drop(d.inbox, "after-all-that", lambda j: (_copy(tiny_media["face"], j / "talk.mp4"),
                                                 _copy(tiny_media["voice"], j / "voice.wav")))
    assert read_report(d.wait_published("after-all-that", timeout=60))["status"] == "done"


def test_unicode_names_nfd_files_nfc_job_toml_and_non_ascii_job_names_work(daemon_factory, tiny_media):
    """A macOS (NFD) file named in NFC by job.toml is matched; a Unicode job name is kept in the outbox."""
    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2}).start()
    job = "Présentation Müller 東京"
    nfd_video = unicodedata.normalize("NFD", "café.mp4")
    nfc_video = unicodedata.normalize("NFC", "café.mp4")

    def build(j: Path) -> None:
        _copy(tiny_media["face"], j / nfd_video)
        _copy(tiny_media["voice"], j / "voix.wav")
        (j / "job.toml").write_text(f'videos = ["{nfc_video}"]\noutput_name = "{{job}} {{video}}.mp4"\n',
                                    encoding="utf-8")

    _drop(d.inbox, job, build)
    out = d.wait_published(job, timeout=60)
    report = read_report(out)
    assert report["status"] == "done", report
    assert (out / report["outputs"][0]["file"]).is_file()


def test_job_folder_with_an_invalid_utf8_name_fails_clearly_and_status_stays_readable(daemon_factory, tiny_media):
    """inbox/'job\\xff': published as failed (name shown escaped), status.json stays valid UTF-8 JSON."""
    import json

    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2}).start()
    raw = os.fsdecode(b"bad-\xff-name")
    _drop(d.inbox, raw, lambda j: (_copy(tiny_media["face"], j / "talk.mp4"),
                                   _copy(tiny_media["voice"], j / "voice.wav")))
    wait_for(lambda: not (d.inbox / raw).exists() and not any((d.inbox / ".heygem" / "claimed").iterdir()),
             60, d.log)
    published = [p for p in d.outbox.iterdir() if not p.name.startswith(".") and p.is_dir()]
    assert [p.name for p in published] == ["bad-\\xff-name"], d.log()
    report = read_report(published[0])
    assert report["status"] == "failed"
    assert "UTF-8" in (published[0] / "ERROR.txt").read_text(encoding="utf-8")
    json.loads((d.outbox / "status.json").read_bytes().decode("utf-8"))
    assert d.proc.poll() is None
