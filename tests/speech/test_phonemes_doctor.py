"""`heygem-daemon doctor` shows the phoneme model and transcript alignment."""

from __future__ import annotations

import argparse

from heygem_daemon.commands import doctor
from heygem_daemon.settings import Settings

from .tiny_wav2vec2 import VOCAB, build_tiny_model


def run_doctor(tmp_path, capsys, **models) -> tuple[int, dict[str, str]]:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    settings = Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", device="cpu", models=models)
    code = doctor(settings, argparse.Namespace())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    return code, {line.split("] ", 1)[1].split(":", 1)[0]: line for line in lines}


def test_doctor_shows_a_loaded_phoneme_model(tmp_path, capsys):
    """A configured model is loaded and its vocabulary size shown; pocketsphinx is listed."""
    folder = build_tiny_model(tmp_path / "model")
    code, lines = run_doctor(tmp_path, capsys, phonemes=folder)
    assert 0 == code
    assert lines["speech phonemes"].startswith("[ok]") and f'"vocab_size": {len(VOCAB)}' in lines["speech phonemes"]
    assert lines["speech alignment"].startswith("[ok]") and "pocketsphinx" in lines["speech alignment"]
    assert lines["speech phones"].startswith("[ok]") and "default" in lines["speech phones"]


def test_doctor_flags_a_broken_folder_without_failing(tmp_path, capsys):
    """A missing folder is a FAIL line naming the setting, but not an essential failure (exit 0)."""
    code, lines = run_doctor(tmp_path, capsys, phonemes=tmp_path / "nowhere")
    assert 0 == code
    assert lines["speech phonemes"].startswith("[FAIL]") and "models.phonemes" in lines["speech phonemes"]


def test_doctor_without_phoneme_model(tmp_path, capsys):
    """No model configured is fine: the line says loudness only."""
    code, lines = run_doctor(tmp_path, capsys)
    assert lines["speech phonemes"].startswith("[ok]") and "not configured" in lines["speech phonemes"]
