"""The built-in engine: re-animates the filmed mouth from the new speech, no weights.

``prepare`` turns the audio into a mouth curve (opening, width, rounding
every 10 ms): visemes of the phones pocketsphinx hears by default, of an
aligned transcript when one is given, or of a wav2vec2 phoneme model's IPA
phones when ``models.phonemes`` is configured; loudness modulates how far
(``speech/mouth.py``).  ``adapt`` fits the curve to one avatar's own opening
range, learned from the avatar video's own speech (``render/avatar.py``).  ``render``
measures how open the filmed mouth is in each frame, and warps the lower lip,
jaw and chin by the difference to the target (closing the mouth where the new
audio is silent, opening it where it is loud), painting a mouth interior
where it opens wider than filmed.  When the avatar has a mouth library (its own
filmed mouths, ``builtin_library.py``), the lips and mouth interior of each
warped frame are replaced by the person's own at that opening
(``builtin_exemplar.py``); the painted interior is the fallback.  Only the
lower face changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import EngineError
from ..logging import get_logger
from ..speech import MouthCurve, mouth_curve
from ..speech.acoustic import shipped_model
from ..speech.avatar import AvatarProfile
from ..speech.align import Phone
from ..speech.ctc import PhoneSegment
from ..speech.phone_worker import PhoneWorkers
from ..speech.phoneme_cache import PhonemeCache, cached_segments, recognize_cached
from ..speech.phones import IDENTITY as PHONES_IDENTITY
from ..speech.phones import PhoneRecognitionFailed
from .base import AudioClip, AudioFeatures, EngineConfig, Face
from .builtin_exemplar import ExemplarChain, exemplar_chain, paste_exemplars
from .builtin_geometry import MAX_GAP_IOD, plan_warp
from .builtin_library import MouthLibrary
from .device import select_device
from .builtin_warp import warp_batch

log = get_logger()

#: landmark count of the face tracker this engine was built for
_MESH_POINTS = 478


def _load_phonemes(folder: Path | None, device: torch.device):
    """The configured phoneme model, or None (the default phone recogniser) when unset or unusable."""
    if folder is None:
        return None
    from ..speech.phonemes import PhonemeModelError, PhonemeRecognizer

    try:
        return PhonemeRecognizer(folder, device=device)
    except PhonemeModelError as exc:
        log.error("phonemes_unavailable", reason=str(exc), fallback="phones:pocketsphinx")
        return None


@dataclass(frozen=True)
class CalibratedCurve:
    """A job audio's mouth curve for one avatar: the person's own (rest, open) range and filmed mouths."""

    curve: MouthCurve
    #: None: the generic opening range
    gap_range: tuple[float, float] | None
    #: the avatar's own mouths to paste (None: the painted interior only)
    exemplars: ExemplarChain | None = None


class BuiltinEngine:
    """Landmark-driven mouth warp; implements :class:`heygem_daemon.engines.base.Engine`."""

    name = "builtin"
    #: engines/base.py InPlaceEngine
    renders_in_place = True

    def __init__(self, config: EngineConfig) -> None:
        self._device = select_device(config.device)
        self.device = str(self._device)
        self.batch_size = config.batch_size
        self.phonemes = _load_phonemes(config.models.get("phonemes"), self._device)
        self._phoneme_cache = PhonemeCache(config.cache_dir) if config.cache_dir else None
        #: the acoustic mouth regressor shipped in the package (None: phones alone)
        self.acoustic = shipped_model()
        #: the phone recogniser runs in processes of its own: in this one it held the GIL, and with
        #: it every other thread of the daemon, for a third of a second per 8 s of speech; one per
        #: video in flight at most (each new avatar's own sound, and the job's voice)
        self.phones = PhoneWorkers(config.videos_in_flight)
        #: extra keyword arguments for :func:`mouth_curve` (benchmarks compare speech sources with it)
        self.speech_options: dict[str, object] = {}
        #: paste the avatar's own filmed mouths when it has a library (benchmarks switch it off to compare)
        self.use_exemplars = True
        log.info("engine_ready", engine=self.name, device=self.device,
                 phonemes=self.phonemes.describe() if self.phonemes else None)

    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        """Mouth curve for one audio; ``source`` says transcript, phonemes, phones or loudness."""
        stats: dict[str, object] = {}
        phonemes = self._phoneme_source(audio, stats) if self.phonemes else None
        options = {"acoustic": self.acoustic, "phone_recogniser": self._phones_of(audio, stats), **self.speech_options}
        curve = mouth_curve(audio.samples, audio.sample_rate, transcript=transcript, phonemes=phonemes, **options)
        voiced = float(curve.voiced.mean()) if len(curve.voiced) else 0.0
        return AudioFeatures(
            data=curve,
            duration_s=audio.duration_s,
            source=curve.source,
            details={"rate_hz": curve.rate_hz, "voiced_share": round(voiced, 3), **stats},
        )

    def warm_up(self) -> None:
        """Start the phone recogniser's process now (the daemon calls this before it reports ready)."""
        try:
            self.phones.start()
        except PhoneRecognitionFailed as exc:  # the first audio tries again, then falls back to loudness
            log.warning("phones_unavailable", reason=str(exc))

    def _phones_of(self, audio: AudioClip, stats: dict[str, object]) -> Callable[[np.ndarray, int], list[Phone]]:
        """The phone recogniser (its worker process) bound to this audio's cache entry: the same voice
        in a later job (a retry, another batch of avatars) is not recognised again.  On two cores
        that was a third of a second per 8 s of speech before a known avatar's first frame."""
        def recognise(samples: np.ndarray, rate: int) -> list[Phone]:
            # keyed by the samples' count too: the same file cut by another duration limit is other audio
            model = f"{PHONES_IDENTITY}-{rate}hz-{len(samples)}"
            segments, cached = cached_segments(self._phoneme_cache, audio.digest, model, lambda: [
                PhoneSegment(p.name, p.start_s, p.end_s) for p in self.phones.recognise(samples, rate)])
            stats.update(phones_cached=cached)
            return [Phone(s.name, s.start_s, s.end_s) for s in segments]

        return recognise

    def _phoneme_source(self, audio: AudioClip, stats: dict[str, object]):
        """The recogniser bound to this audio's cache entry; it fills ``stats`` when used."""
        recognizer = self.phonemes

        def recognise(samples: np.ndarray) -> list[PhoneSegment]:
            started = time.perf_counter()
            segments, cached = recognize_cached(recognizer, samples, digest=audio.digest, cache=self._phoneme_cache)
            stats.update(phonemes=len(segments), phonemes_s=round(time.perf_counter() - started, 3),
                         phonemes_cached=cached)
            return segments

        return recognise

    def adapt(self, features: AudioFeatures, avatar: AvatarProfile, *,
              mouths: MouthLibrary | None = None) -> AudioFeatures:
        """The job audio's features fitted to one avatar: its calibrated opening range and its own mouths.

        The result's ``details["exemplar_frames"]`` counts, as frames are
        rendered, those that got the avatar's own mouth (the report's field).
        """
        curve = features.data
        if not isinstance(curve, MouthCurve):
            return features
        gap_range = None
        if avatar.rest_gap is not None:
            opened = avatar.open_gap if avatar.open_gap is not None else max(MAX_GAP_IOD, avatar.rest_gap + 0.02)
            gap_range = (avatar.rest_gap, opened)
        chain = exemplar_chain(mouths) if mouths is not None and self.use_exemplars else None
        details = {**features.details, "exemplar_frames": 0} if chain is not None else dict(features.details)
        return replace(features, data=CalibratedCurve(curve, gap_range, chain), details=details)

    def render(
        self,
        frames: np.ndarray,
        faces: Sequence[Face | None],
        features: AudioFeatures,
        frame_indices: np.ndarray,
        fps: float,
        *,
        in_place: bool = False,
    ) -> np.ndarray:
        """Re-animate each frame's mouth to the audio at ``frame_indices / fps`` (``in_place``: in ``frames``)."""
        curve, gap_range, chain = features.data, None, None
        if isinstance(curve, CalibratedCurve):
            curve, gap_range, chain = curve.curve, curve.gap_range, curve.exemplars
        if not isinstance(curve, MouthCurve):
            raise EngineError("The built-in engine got audio features from another engine.")
        shape = curve.at(np.asarray(frame_indices, dtype=np.float64) / float(fps))
        plans = []
        lips = chain.placement if chain is not None else None
        for b, face in enumerate(faces):
            if face is None or face.landmarks is None or len(face.landmarks) < _MESH_POINTS:
                continue
            marks = np.asarray(face.landmarks, dtype=np.float64)
            if not np.isfinite(marks).all():
                continue
            plans.append((b, plan_warp(marks, frames[b], shape.open[b], shape.width[b], shape.round[b],
                                           gap_range, lips)))
        out = warp_batch(frames, plans, self._device, in_place=in_place)
        if chain is not None:
            pasted = sum(paste_exemplars(out[b], plan, chain) for b, plan in plans)
            features.details["exemplar_frames"] = features.details.get("exemplar_frames", 0) + pasted
        return out
