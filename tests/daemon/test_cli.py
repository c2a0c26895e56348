"""The command line as an admin uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heygem_daemon.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def test_validate_accepts_a_good_folder_and_lists_its_outputs(tmp_path, media_dir):
    """validate DIR prints the plan and exits 0 for a runnable job."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "talk.mp4").write_bytes((media_dir / "face_5.mp4").read_bytes())
    (job / "voice.wav").write_bytes((media_dir / "audio_1.wav").read_bytes())
    result = cli("validate", str(job))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "talk_voice.mp4" in result.stdout and "OK" in result.stdout


def test_validate_names_the_problem_and_exits_1(tmp_path, media_dir):
    """An unknown key and a corrupt video are both reported with exit code 1."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "talk.mp4").write_bytes(b"not a video at all" * 100)
    (job / "voice.wav").write_bytes((media_dir / "audio_1.wav").read_bytes())
    bad = cli("validate", str(job))
    assert bad.returncode == 1 and "talk.mp4" in bad.stdout
    (job / "job.toml").write_text("enigne = 'builtin'\n")
    typo = cli("validate", str(job))
    assert typo.returncode == 1 and "enigne" in typo.stdout


def test_status_reads_the_outbox_overview(tmp_path):
    """status prints running/queued/recent from status.json."""
    (tmp_path / "status.json").write_text(json.dumps({
        "updated_at": "now", "host": "h", "problem": None, "waiting": [], "queued": [],
        "running": [{"job": "big", "state": "running", "detail": "video 2 of 4"}], "recent": []}))
    result = cli("status", "--outbox", str(tmp_path))
    assert result.returncode == 0 and "video 2 of 4" in result.stdout


def test_doctor_checks_ffmpeg_gpu_models_and_folders(tmp_path):
    """doctor reports each check; folders that exist and are writable pass."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    result = cli("doctor", "--inbox", str(tmp_path / "in"), "--outbox", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    for word in ("ffmpeg", "ffprobe", "gpu", "wav2lip", "inbox", "outbox", "GB free",
                 "[ok] runtime: 1 video(s) in flight (set)"):
        assert word in result.stdout
    assert "[ok] engine builtin (default): created in " in result.stdout  # its load time, as before READY
    missing = cli("doctor", "--inbox", str(tmp_path / "nope"), "--outbox", str(tmp_path / "out"))
    assert missing.returncode == 1 and "does not exist" in missing.stdout


def test_a_bad_config_is_one_readable_line_not_a_traceback(tmp_path):
    """A typo in daemon.toml: exit 2 and the key named."""
    cfg = tmp_path / "d.toml"
    cfg.write_text("setle_seconds = 1\n")
    result = cli("status", "--config", str(cfg))
    assert result.returncode == 2 and "setle_seconds" in result.stderr and "Traceback" not in result.stderr


def test_demo_processes_the_bundled_sample_job_with_the_builtin_engine(tmp_path):
    """demo needs nothing but the package: it drops its own sample job and publishes it."""
    result = cli("demo", "--inbox", str(tmp_path / "in"), "--outbox", str(tmp_path / "out"),
                 "--settle-seconds", "0", "--log-level", "warning", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (job,) = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("sample-")]
    report = json.loads((job / "report.json").read_text())
    assert report["status"] == "done" and report["engine"] == "builtin"
    assert (job / "presenter_voice.mp4").stat().st_size > 10_000
    assert report["outputs"][0]["frames_with_face"] > 0.9 * report["outputs"][0]["frames"]


def _job(tmp_path: Path, media_dir: Path, video: Path | None = None) -> Path:
    job = tmp_path / "job"
    job.mkdir()
    (job / "talk.mp4").write_bytes((video or media_dir / "face_5.mp4").read_bytes())
    (job / "voice.wav").write_bytes((media_dir / "audio_1.wav").read_bytes())
    return job


def test_validate_fails_a_wav2lip_job_when_no_checkpoint_is_configured(tmp_path, media_dir):
    """engine = "wav2lip" on a daemon without models.wav2lip would fail: validate says so, naming the setting."""
    job = _job(tmp_path, media_dir)
    (job / "job.toml").write_text('engine = "wav2lip"\n')
    result = cli("validate", str(job))
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "PROBLEM engine wav2lip" in result.stdout and "models.wav2lip" in result.stdout
    checkpoint = tmp_path / "missing.pth"
    config = tmp_path / "daemon.toml"
    config.write_text(f'[models]\nwav2lip = "{checkpoint}"\n')
    result = cli("validate", "--config", str(config), str(job))
    assert 1 == result.returncode and "missing.pth does not exist" in result.stdout


def test_validate_warns_about_a_video_without_a_face(tmp_path, media_dir):
    """A video in which no sampled frame shows a face: a WARNING naming the file, exit code still 0."""
    faceless = tmp_path / "bars.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
                    "-c:v", "libx264", "-preset", "ultrafast", str(faceless)], check=True, timeout=60)
    result = cli("validate", str(_job(tmp_path, media_dir, faceless)))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "WARNING talk.mp4: no face found in 8 frames sampled" in result.stdout
    assert "OK (1 warning)" in result.stdout


def test_validate_finds_the_face_of_a_talking_head(tmp_path, media_dir):
    """The sample talking head gives no face warning (--json lists problems and warnings)."""
    result = cli("validate", "--json", str(_job(tmp_path, media_dir)))
    assert 0 == result.returncode, result.stdout + result.stderr
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert ([], []) == (report["problems"], report["warnings"])


def test_validate_lists_every_problem_at_once(tmp_path, media_dir):
    """A wrong type, a wrong choice and two missing videos: all four named in one run."""
    job = _job(tmp_path, media_dir)
    (job / "job.toml").write_text('priority = "high"\nvideos = ["talk.mp4", "alice.mp4", "bob.mp4"]\n'
                                  '[output]\nwhen_video_shorter = "bounce"\n')
    result = cli("validate", str(job))
    assert 1 == result.returncode
    for words in ("'priority' must be a whole number", "'bounce'", "'alice.mp4'", "'bob.mp4'"):
        assert words in result.stdout, result.stdout


def test_workers_flag_takes_a_count_or_auto(capsys):
    """--workers auto and --workers 3 are passed on to the settings; --workers many stops at the parser."""
    import pytest

    from heygem_daemon.cli import _load, build_parser

    parser = build_parser()
    assert "auto" == _load(parser.parse_args(["doctor", "--workers", "auto"])).workers
    assert 3 == _load(parser.parse_args(["doctor", "--workers", "3"])).workers
    with pytest.raises(SystemExit):
        parser.parse_args(["doctor", "--workers", "many"])
    assert 'expected a number or "auto"' in capsys.readouterr().err
