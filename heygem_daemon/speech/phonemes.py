"""Time-stamped IPA phones for any language from a local wav2vec2 CTC phoneme model.

The admin downloads a checkpoint folder once (for example the public
``facebook/wav2vec2-xlsr-53-espeak-cv-ft``) and points ``models.phonemes`` at
it; nothing is ever fetched from the network (the folder must exist and is
opened with ``local_files_only``).  The model is loaded once and stays
resident; on CUDA it runs in fp16.

Long audio goes through in overlapping windows (20 s, 2 s overlap by
default): every window keeps only its centre part, the halves of each
overlap going to the neighbour with more context, so memory is bounded by the
window and not by the audio's length.  Only the best token per 20 ms frame is
kept across windows; decoding is CTC greedy (:mod:`.ctc`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EngineError
from ..logging import get_logger
from .ctc import PhoneSegment, ctc_segments, fill_gaps

log = get_logger()

SAMPLE_RATE = 16_000
WINDOW_S = 20.0
OVERLAP_S = 2.0
SETTING = "models.phonemes"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_PHONEME_TOKENIZER = "Wav2Vec2PhonemeCTCTokenizer"


class PhonemeModelError(EngineError):
    """The configured phoneme model folder is missing or cannot be loaded."""

    kind = "phoneme_model"


class PhonemeRecognizer:
    """A wav2vec2 CTC phoneme model from a local folder, resident on one torch device."""

    def __init__(
        self,
        folder: Path | str,
        *,
        device: str | torch.device = "cpu",
        window_s: float = WINDOW_S,
        overlap_s: float = OVERLAP_S,
    ) -> None:
        self.folder = Path(folder)
        self._device = torch.device(device)
        self.device = str(self._device)
        self._half = self._device.type == "cuda"
        started = time.perf_counter()
        self.identity = model_identity(self.folder)
        self._model, self._extractor, tokenizer = _load(self.folder)
        self._model.to(self._device)
        if self._half:
            self._model.half()
        self._model.eval()
        self.stride = frame_stride(self._model.config)
        self.frame_s = self.stride / SAMPLE_RATE
        self._min_samples = receptive_field(self._model.config)
        self._window = _round_to(window_s * SAMPLE_RATE, self.stride)
        overlap = _round_to(overlap_s * SAMPLE_RATE, self.stride)
        if not 0 <= overlap < self._window:
            raise ValueError("the overlap must be shorter than the window")
        self._hop = self._window - overlap
        self.tokens, self.blank_id, self.skip_ids = _vocabulary(tokenizer, self._model.config)
        self.load_s = round(time.perf_counter() - started, 3)
        log.info("phoneme_model_loaded", **self.describe())

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def describe(self) -> dict[str, Any]:
        """Facts for ``doctor`` and the logs."""
        return {
            "folder": str(self.folder),
            "device": self.device,
            "precision": "fp16" if self._half else "fp32",
            "vocab_size": self.vocab_size,
            "frame_ms": round(self.frame_s * 1000, 3),
            "load_s": self.load_s,
        }

    # -- recognition -----------------------------------------------------------------
    def recognize(self, samples_16k: np.ndarray) -> list[PhoneSegment]:
        """Timed IPA phones of 16 kHz mono audio, each held until the next one starts."""
        ids = self.frame_ids(samples_16k)
        segments = ctc_segments(ids, self.frame_s, blank_id=self.blank_id, tokens=self.tokens,
                                skip_ids=self.skip_ids)
        return fill_gaps(segments, end_s=len(samples_16k) / SAMPLE_RATE)

    def frame_ids(self, samples_16k: np.ndarray) -> np.ndarray:
        """The best token id for every frame (``frame_s`` apart), stitched from windows."""
        samples = np.asarray(samples_16k, dtype=np.float32).reshape(-1)
        total = int(math.ceil(len(samples) / self.stride))
        ids = np.full(total, self.blank_id, dtype=np.int32)
        starts = window_starts(len(samples), self._window, self._hop, self.stride)
        for k, start in enumerate(starts):
            lo = 0 if k == 0 else _boundary(starts[k - 1], start, self._window, self.stride)
            hi = total if k + 1 == len(starts) else _boundary(start, starts[k + 1], self._window, self.stride)
            window_ids = self._window_ids(samples[start : start + self._window])
            first = start // self.stride
            keep_lo, keep_hi = max(lo, first), min(hi, first + len(window_ids), total)
            if keep_hi > keep_lo:
                ids[keep_lo:keep_hi] = window_ids[keep_lo - first : keep_hi - first]
        return ids

    def _window_ids(self, chunk: np.ndarray) -> np.ndarray:
        if len(chunk) < self._min_samples:
            chunk = np.pad(chunk, (0, self._min_samples - len(chunk)))
        inputs = self._extractor(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
        inputs = inputs.to(self._device, dtype=torch.float16 if self._half else torch.float32)
        with torch.inference_mode():
            logits = self._model(inputs).logits[0]
        return logits.argmax(dim=-1).to("cpu", torch.int32).numpy()


# -- model folder ------------------------------------------------------------------------
def _load(folder: Path) -> tuple[Any, Any, Any]:
    """Model, feature extractor and tokenizer from ``folder``; never a download."""
    if not folder.is_dir():
        raise PhonemeModelError(
            f"The phoneme model folder '{folder}' does not exist.",
            hint=f"Set {SETTING} to a downloaded wav2vec2 phoneme model folder, or remove the setting.",
        )
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    # transformers' progress bars are switched off at start-up (runtime.configure_runtime)
    try:
        tokenizer = _load_tokenizer(folder)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(folder, local_files_only=True)
        model = Wav2Vec2ForCTC.from_pretrained(folder, local_files_only=True)
    # transformers and safetensors raise many kinds for a broken folder (OSError for a
    # missing file, ValueError/JSON errors for bad configs, RuntimeError for mismatched
    # weights, SafetensorError for a cut file); all of them mean "this folder is unusable"
    except Exception as exc:  # noqa: BLE001 - re-raised as one clear error
        raise PhonemeModelError(
            f"The phoneme model in '{folder}' cannot be loaded ({type(exc).__name__}: {_first_line(exc)}).",
            hint=f"{SETTING} must name a complete wav2vec2 CTC folder (config.json, "
            "preprocessor_config.json, vocab.json, model weights).",
        ) from exc
    return model, extractor, tokenizer


def _load_tokenizer(folder: Path) -> Any:
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2PhonemeCTCTokenizer

    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    if config.get("tokenizer_class") == _PHONEME_TOKENIZER:
        # decoding only: never phonemize text, so neither phonemizer nor espeak is needed
        return Wav2Vec2PhonemeCTCTokenizer.from_pretrained(folder, local_files_only=True, do_phonemize=False)
    return Wav2Vec2CTCTokenizer.from_pretrained(folder, local_files_only=True)


def _vocabulary(tokenizer: Any, config: Any) -> tuple[dict[int, str], int, set[int]]:
    """id → token, the CTC blank id (the pad token) and ids that are not phones."""
    tokens = {int(i): str(t) for t, i in tokenizer.get_vocab().items()}
    blank = tokenizer.pad_token_id
    if blank is None:
        blank = config.pad_token_id if config.pad_token_id is not None else 0
    skip = set(int(i) for i in tokenizer.all_special_ids)
    delimiter = getattr(tokenizer, "word_delimiter_token", None) or "|"
    skip |= {i for i, t in tokens.items() if t in (delimiter, "|") or not t.strip()}
    return tokens, int(blank), skip


def model_identity(folder: Path) -> str:
    """Short hash naming the model's content: configs and vocabulary bytes, weights' size and mtime."""
    digest = hashlib.sha256()
    for name in ("config.json", "preprocessor_config.json", "vocab.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    for path in (p for p in files if p.suffix in _WEIGHT_SUFFIXES and p.is_file()):  # sharded checkpoints have several
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def frame_stride(config: Any) -> int:
    """Samples per output frame: the product of the conv strides (320 = 20 ms at 16 kHz)."""
    stride = math.prod(int(s) for s in config.conv_stride)
    if getattr(config, "add_adapter", False):
        stride *= int(config.adapter_stride) ** int(config.num_adapter_layers)
    return stride


def receptive_field(config: Any) -> int:
    """Fewest samples that give one output frame (400 for the usual conv stack)."""
    field = 1
    for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        field = (field - 1) * int(stride) + int(kernel)
    return field


def window_starts(count: int, window: int, hop: int, stride: int) -> list[int]:
    """Window start samples (multiples of ``stride``); the last window ends at the audio's end."""
    if count <= window:
        return [0]
    starts = list(range(0, count - window, hop))
    last = (count - window) // stride * stride
    if last > starts[-1]:
        starts.append(last)
    return starts


def _boundary(start_a: int, start_b: int, window: int, stride: int) -> int:
    """Frame where window a hands over to window b: the middle of their overlap."""
    return (start_b + start_a + window) // 2 // stride


def _round_to(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
