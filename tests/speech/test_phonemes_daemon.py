"""The real daemon with and without a phoneme model: report.json names the mouth-shape source."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.daemon.conftest import daemon_factory, drop_job, folders  # noqa: F401 - fixtures

from .tiny_wav2vec2 import build_tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture
def short_job(tmp_path: Path, media_dir: Path) -> dict[str, Path]:  # noqa: F811
    """1.5 s of real speech and 1.5 s of a real talking head at 256x256 (keeps the test fast)."""
    audio, video = tmp_path / "voice.wav", tmp_path / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "audio_1.wav"), "-t", "1.5", str(audio)],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_5.mp4"), "-t", "1.5", "-an",
                    "-vf", "scale=256:256", "-c:v", "libx264", "-preset", "ultrafast", str(video)], check=True)
    return {"voice.wav": audio, "talk.mp4": video}


@pytest.mark.parametrize("configured", [True, False], ids=["with-model", "without-model"])
def test_report_names_the_phoneme_source(daemon_factory, short_job, tmp_path, configured):  # noqa: F811
    """With models.phonemes the audio's source is phonemes:wav2vec2 (with its time); without, the
    default phone recogniser (phones:pocketsphinx)."""
    config: dict = {"default_engine": "builtin"}
    if configured:
        config["models"] = {"phonemes": str(build_tiny_model(tmp_path / "phoneme-model"))}
    daemon = daemon_factory(config).start()
    drop_job(daemon.inbox, "speech", short_job, ready=True)
    out = daemon.wait_published("speech", timeout=180)
    report = json.loads((out / "report.json").read_text())
    assert "done" == report["status"], report
    [audio] = report["audio"]
    assert ("phonemes:wav2vec2" if configured else "phones:pocketsphinx") == audio["source"]
    assert audio["features_s"] > 0
    events = [row for row in daemon.events() if row.get("event") == "phoneme_model_loaded"]
    assert configured == bool(events)


def test_a_second_job_with_the_same_voice_reads_its_phonemes_from_the_cache(daemon_factory, short_job, tmp_path):  # noqa: F811
    """The runner keys the audio by its content: the phoneme model runs for the first job only,
    the second job with the same voice file (another job, another name) hits the cache."""
    model = build_tiny_model(tmp_path / "phoneme-model")
    daemon = daemon_factory({"default_engine": "builtin", "models": {"phonemes": str(model)}}).start()
    drop_job(daemon.inbox, "first", short_job, ready=True)
    daemon.wait_published("first", timeout=180)
    drop_job(daemon.inbox, "second", short_job, ready=True)
    daemon.wait_published("second", timeout=180)
    prepared = [row for row in daemon.events() if row.get("event") == "audio_prepared"]
    assert ["first", "second"] == [row["job"] for row in prepared]
    assert [False, True] == [row["details"]["phonemes_cached"] for row in prepared]
    assert prepared[0]["details"]["phonemes"] == prepared[1]["details"]["phonemes"] > 0
    assert 1 == len(list((tmp_path / "cache" / "phonemes").glob("*.json")))
