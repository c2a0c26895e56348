"""A test engine: visibly paints the lower face with a bar whose height follows
loudness. Stands in for a real engine where a test is about the daemon, not about
lip-sync quality (ARCHITECTURE §3 interface, no weights)."""

from __future__ import annotations

import numpy as np

from heygem_daemon.engines.base import AudioClip, AudioFeatures, EngineConfig


class PaintEngine:
    name = "paint"
    batch_size = 8
    device = "cpu"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.prepared = 0

    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        self.prepared += 1
        hop = audio.sample_rate // 100
        frames = len(audio.samples) // hop
        rms = np.sqrt(np.mean(audio.samples[: frames * hop].reshape(frames, hop) ** 2, axis=1))
        level = rms / (rms.max() + 1e-9)
        return AudioFeatures(data=level, duration_s=audio.duration_s, source="loudness")

    def render(self, frames, faces, features, frame_indices, fps):
        out = frames.copy()
        level = features.data
        for b, face in enumerate(faces):
            if face is None:
                continue
            x0, y0, x1, y1 = face.box.astype(int)
            t = int(frame_indices[b] / fps * 100)
            amount = float(level[min(t, len(level) - 1)]) if len(level) else 0.0
            mid = (y0 + y1) // 2
            bar = mid + int((y1 - mid) * amount)
            out[b, max(mid, 0):max(bar, 0), max(x0, 0):max(x1, 0)] = (0, 0, 255)
        return out


class SlowVoicePaintEngine(PaintEngine):
    """The paint engine with an audio analysis that takes 2 s, as a long voice's does."""

    name = "slowvoice"

    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        import time

        time.sleep(2.0)
        return super().prepare(audio, transcript=transcript)


class PickyVoicePaintEngine(PaintEngine):
    """The paint engine whose audio analysis fails on a voice too quiet to use (peak under 0.01)."""

    name = "pickyvoice"

    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        from heygem_daemon.errors import EngineError

        if float(np.max(np.abs(audio.samples), initial=0.0)) < 0.01:
            raise EngineError("The voice is too quiet to analyse.", hint="Record it again louder.")
        return super().prepare(audio, transcript=transcript)
