"""The engine interface every lip-sync backend implements.

Engines never see paths, job folders or the outbox: decoded audio in
(``prepare``), batches of frames with their faces out (``render``).  Models are
loaded in the constructor and stay resident for the worker's life.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
from numpy.typing import NDArray

# the value types every layer shares live at the bottom; re-exported for engines and old imports
from ..types import SAMPLE_RATE, AudioClip, Face

__all__ = ["SAMPLE_RATE", "AudioClip", "AudioFeatures", "AvatarFrames", "Engine", "EngineConfig", "Face",
           "PerAvatarEngine"]

@dataclass
class AudioFeatures:
    """What ``prepare`` returns: engine-specific data plus facts for the report."""

    data: Any
    duration_s: float
    #: e.g. "loudness", "transcript", "phonemes:wav2vec2" -- reported per audio
    source: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AvatarFrames:
    """Which avatar video, and which of its frames, a ``render`` batch shows.

    Engines that keep per-avatar work (MuseTalk's reference latents) key it by
    content, not by path: ``key`` is the avatar video's content digest with the
    tracker's name, the same content key as its cached face track.  Only
    engines whose class sets ``per_avatar_cache = True`` are given it, as the
    keyword argument ``avatar``; the others are called as before.
    """

    key: str
    #: (B,) the source frame each frame of the batch shows (pingpong and loops revisit frames)
    sources: NDArray[np.int64]
    #: frames in the avatar video
    frame_count: int


@dataclass(frozen=True)
class EngineConfig:
    """What an engine may know about its surroundings (no job paths)."""

    device: str = "cpu"
    models: dict[str, Path | None] = field(default_factory=dict)
    cache_dir: Path | None = None
    batch_size: int = 32
    #: videos the daemon renders at once (runtime.RuntimePlan.workers): an engine with helper
    #: processes per audio or video sizes them by it
    videos_in_flight: int = 1


@runtime_checkable
class Engine(Protocol):
    """A lip-sync backend. One instance per worker; it keeps its model resident."""

    name: str
    #: preferred number of frames per ``render`` call
    batch_size: int
    #: the torch device actually used ("cpu", "cuda:0"), reported per output
    device: str

    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        """Analyse one audio once; the result is reused for every video."""
        ...

    def render(
        self,
        frames: NDArray[np.uint8],
        faces: Sequence[Face | None],
        features: AudioFeatures,
        frame_indices: NDArray[np.int64],
        fps: float,
    ) -> NDArray[np.uint8]:
        """Re-animate the mouth in a batch of frames.

        ``frames`` is (B, H, W, 3) uint8 BGR; ``faces[b]`` is the face in frame b
        or None (pass the frame through unchanged); ``frame_indices[b]`` is the
        output frame number, whose audio is centred at ``frame_indices[b] / fps``
        seconds.  Returns an array of the same shape and dtype.
        """
        ...


class PerAvatarEngine(Engine, Protocol):
    """An engine that keeps per-avatar work (``per_avatar_cache = True``): ``render`` also takes ``avatar``."""

    per_avatar_cache: bool

    def render(
        self,
        frames: NDArray[np.uint8],
        faces: Sequence[Face | None],
        features: AudioFeatures,
        frame_indices: NDArray[np.int64],
        fps: float,
        *,
        avatar: AvatarFrames | None = None,
    ) -> NDArray[np.uint8]:
        """As ``Engine.render``; ``avatar`` names the avatar frames the batch shows.  One that also
        sets ``renders_in_place`` takes ``in_place`` as InPlaceEngine's does."""
        ...



class InPlaceEngine(Engine, Protocol):
    """An engine that can draw into the frames it is given (``renders_in_place = True``): the render
    pass, which hands over frames it no longer needs, passes ``in_place=True`` and saves a copy of
    every batch (1.5 ms a 720p frame on the CPU).  Without it, ``render`` leaves ``frames`` as they are."""

    renders_in_place: bool

    def render(
        self,
        frames: NDArray[np.uint8],
        faces: Sequence[Face | None],
        features: AudioFeatures,
        frame_indices: NDArray[np.int64],
        fps: float,
        *,
        in_place: bool = False,
    ) -> NDArray[np.uint8]:
        """As ``Engine.render``; with ``in_place`` the result is ``frames`` itself, drawn into."""
        ...
