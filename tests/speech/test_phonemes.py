"""The wav2vec2 phoneme recogniser, loaded from a local folder holding a tiny model built here.

No weights are downloaded: tests/speech/tiny_wav2vec2.py builds a random
Wav2Vec2ForCTC with an IPA vocabulary and saves it like a real checkpoint.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from heygem_daemon.errors import EngineError
from heygem_daemon.speech.ctc import PhoneSegment
from heygem_daemon.speech.phoneme_cache import PhonemeCache, recognize_cached
from heygem_daemon.speech.phonemes import PhonemeModelError, PhonemeRecognizer, window_starts

from .tiny_wav2vec2 import VOCAB, build_tiny_model

RATE = 16_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("phonemes") / "tiny")


@pytest.fixture(scope="module")
def local_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("phonemes") / "local", local=True)


@pytest.fixture(scope="module")
def recognizer(model_dir) -> PhonemeRecognizer:
    return PhonemeRecognizer(model_dir)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.2).astype(np.float32)


def forced_model(source: Path, target: Path, token: str) -> Path:
    """A copy of ``source`` whose output layer always says ``token`` (zero weights, one bias)."""
    from transformers import Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(source, local_files_only=True)
    model.lm_head.weight.data.zero_()
    model.lm_head.bias.data.fill_(-5.0)
    model.lm_head.bias.data[VOCAB.index(token)] = 5.0
    model.save_pretrained(target)
    for name in ("vocab.json", "tokenizer_config.json", "preprocessor_config.json"):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def test_loads_from_folder_with_20ms_frames(recognizer):
    """The model, feature extractor and IPA tokenizer load from the folder; frames are 320 samples."""
    assert 320 == recognizer.stride and 0.02 == recognizer.frame_s
    assert len(VOCAB) == recognizer.vocab_size
    assert "<pad>" == recognizer.tokens[recognizer.blank_id]
    assert {VOCAB.index(t) for t in ("<s>", "</s>", "<unk>", "|")} <= recognizer.skip_ids
    assert {"device": "cpu", "precision": "fp32"}.items() <= recognizer.describe().items()


def test_phoneme_tokenizer_kind_loads_without_phonemizer(tmp_path):
    """A folder saved with Wav2Vec2PhonemeCTCTokenizer (the espeak checkpoints) loads and decodes."""
    folder = build_tiny_model(tmp_path / "espeak", phoneme_tokenizer=True)
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    assert "Wav2Vec2PhonemeCTCTokenizer" == saved["tokenizer_class"]
    recognizer = PhonemeRecognizer(folder)
    assert {"tɕʰ", "aɪ", "ʂ"} <= set(recognizer.tokens.values())
    assert all(s.name in VOCAB for s in recognizer.recognize(noise(2.0)))


def test_forced_token_spans_the_whole_audio(model_dir, tmp_path):
    """A model that always outputs "m" gives one "m" phone from 0 s to the audio's end."""
    recognizer = PhonemeRecognizer(forced_model(model_dir, tmp_path / "forced", "m"), window_s=4, overlap_s=1)
    segments = recognizer.recognize(noise(9.0))
    assert 1 == len(segments)
    assert "m" == segments[0].name and 0.0 == segments[0].start_s
    assert 9.0 == pytest.approx(segments[0].end_s, abs=0.04)


def test_phones_are_timed_where_the_sound_is(local_model_dir):
    """A 1 s noise burst at 5 s in 12 s of silence changes the output only around 5-6 s, across windows."""
    recognizer = PhonemeRecognizer(local_model_dir, window_s=4, overlap_s=1)
    audio = np.zeros(12 * RATE, dtype=np.float32)
    audio[5 * RATE : 6 * RATE] = noise(1.0)
    ids = recognizer.frame_ids(audio)[:-2]  # the last frame has too little audio for the conv stack
    changed = np.flatnonzero(ids != ids[0])
    assert 600 - 2 == len(ids)
    # the model hears ~0.2 s either side (its positional convolution)
    assert 5.0 == pytest.approx(changed.min() * 0.02, abs=0.2)
    assert 6.0 == pytest.approx(changed.max() * 0.02, abs=0.2)


def test_windowed_recognition_equals_one_pass(local_model_dir):
    """Stitching overlapping windows' centres gives exactly the one-pass result (local model)."""
    audio = noise(31.3, seed=3)
    windowed = PhonemeRecognizer(local_model_dir, window_s=5, overlap_s=1.5)
    one_pass = PhonemeRecognizer(local_model_dir, window_s=60)
    assert one_pass.recognize(audio) == windowed.recognize(audio)


def test_window_starts_cover_the_audio():
    """Windows start on frame boundaries, overlap, and the last one ends at the audio's end."""
    starts = window_starts(100_000, 32_000, 28_800, 320)
    assert [0, 28_800, 57_600, 67_840] == starts
    assert 100_000 - 320 < starts[-1] + 32_000 <= 100_000
    assert [0] == window_starts(10_000, 32_000, 28_800, 320)


def test_ten_minutes_in_bounded_memory(recognizer):
    """10 minutes of audio go through in 20 s windows: the model never sees more, memory stays flat."""
    audio = noise(600.0, seed=1)
    longest = []
    hook = recognizer._model.register_forward_pre_hook(lambda module, args: longest.append(args[0].shape[-1]))
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    before = process.memory_info().rss
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        segments = recognizer.recognize(audio)
    finally:
        done.set()
        watcher.join()
        hook.remove()
    assert max(longest) <= 20 * RATE and len(longest) >= 30
    # one pass over all 600 s would hold several 16 x 1.9M-sample conv activations (>300 MB)
    assert peak[0] - before < 120 * 1024**2
    assert segments and segments[-1].end_s <= 600.0
    assert all(a.start_s <= b.start_s for a, b in zip(segments, segments[1:]))


def test_short_audio_is_padded(recognizer):
    """Audio shorter than the conv stack's receptive field still works (no crash)."""
    assert isinstance(recognizer.recognize(noise(0.01)), list)
    assert [] == recognizer.recognize(np.zeros(0, dtype=np.float32))


def test_missing_folder_is_a_clear_error(tmp_path):
    """A folder that does not exist is a PhonemeModelError naming the setting."""
    with pytest.raises(PhonemeModelError, match="models.phonemes") as info:
        PhonemeRecognizer(tmp_path / "nowhere")
    assert isinstance(info.value, EngineError) and "does not exist" in str(info.value)


@pytest.mark.parametrize("damage", ["no_weights", "cut_weights", "bad_config", "no_vocab"])
def test_broken_folder_is_a_clear_error(model_dir, tmp_path, damage):
    """A folder with missing, cut or garbled files is a PhonemeModelError naming the setting."""
    folder = tmp_path / "broken"
    folder.mkdir()
    for path in model_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    weights = folder / "model.safetensors"
    if damage == "no_weights":
        weights.unlink()
    elif damage == "cut_weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "bad_config":
        (folder / "config.json").write_text("{not json")
    else:
        (folder / "vocab.json").unlink()
    with pytest.raises(PhonemeModelError, match="models.phonemes"):
        PhonemeRecognizer(folder)


def test_cache_skips_the_model_for_the_same_audio(recognizer, tmp_path):
    """The second run with the same audio digest reads the cache; another model does not share it."""
    cache = PhonemeCache(tmp_path)
    audio = noise(3.0)
    first, cached_first = recognize_cached(recognizer, audio, digest="abc123", cache=cache)
    calls = []
    hook = recognizer._model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        second, cached_second = recognize_cached(recognizer, audio, digest="abc123", cache=cache)
    finally:
        hook.remove()
    assert (False, True) == (cached_first, cached_second)
    assert [] == calls
    assert [(s.name, round(s.start_s, 4), round(s.end_s, 4)) for s in first] == \
           [(s.name, s.start_s, s.end_s) for s in second]
    assert [] == list(cache.folder.glob(".tmp-*"))
    assert cache.get("abc123", "another-model") is None


def test_unreadable_cache_entry_is_recomputed(tmp_path):
    """A garbled cache file is ignored (None), not trusted and not fatal."""
    cache = PhonemeCache(tmp_path)
    cache.put("d1", "m1", [PhoneSegment("a", 0.0, 0.1)])
    cache.path("d1", "m1").write_text("{garbled")
    assert cache.get("d1", "m1") is None
    assert cache.get("", "m1") is None


def test_model_identity_follows_the_weights(model_dir, tmp_path):
    """Replacing the weights (new size or mtime) changes the identity, so old cache entries are not used."""
    from heygem_daemon.speech.phonemes import model_identity

    folder = tmp_path / "copy"
    folder.mkdir()
    for path in model_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    before = model_identity(folder)
    assert before == model_identity(folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes() + b" ")
    assert before != model_identity(folder)
