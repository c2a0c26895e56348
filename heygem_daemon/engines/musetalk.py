"""The ``musetalk`` engine: MuseTalk 1.5 (TMElyralab), resident on a GPU (or the CPU).

Per frame, as the public inference does it: the 256 × 256 crop of the lower face
(``musetalk_blend.crop_box``) is encoded by the VAE twice, once with its lower half
blanked and once whole (the reference); the 8 latent channels go through the UNet once,
at timestep 0, attending to 50 whisper tokens of the frame's audio
(``musetalk_audio``); the VAE decodes the new face.  It is then pasted back through a
mask drawn from our face mesh rather than MuseTalk's face parser (``musetalk_blend``).

The reference latents depend only on the avatar's frame, so with the render path's
``avatar`` argument they are cached per avatar (``musetalk_cache``) and a second job
with the same video skips the VAE encode, as MuseTalk's own avatar preparation does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import EngineError
from ..logging import get_logger
from .base import AudioClip, AudioFeatures, AvatarFrames, EngineConfig, Face
from .device import run_batched, select_device
from .musetalk_audio import SAMPLE_RATE, WINDOW, frame_windows, positional_encoding, whisper_features
from .musetalk_blend import EXTRA_MARGIN, NOSE_BASE, SIZE, Box, crop_box, crops, masks, match_colour, paste
from .musetalk_cache import LatentCache, fingerprint
from .musetalk_weights import VAE_DIR, check_folder, load_models, require_diffusers

log = get_logger()

#: bump when the crop or the encoding changes, so old cached latents are not reused
LATENT_VERSION = 1


class MuseTalkEngine:
    """Lip-sync with MuseTalk 1.5; whisper, UNet and VAE are loaded once and stay resident."""

    name = "musetalk"
    #: the render path passes ``avatar=AvatarFrames(...)`` to engines that set this
    per_avatar_cache = True
    renders_in_place = True

    @staticmethod
    def check_config(config: EngineConfig) -> None:
        """Raise EngineError unless diffusers is installed and the weights folder is complete
        (read by ``validate`` without loading any network)."""
        require_diffusers()
        check_folder(config.models.get("musetalk"))

    def __init__(self, config: EngineConfig, *, extra_margin: int = EXTRA_MARGIN) -> None:
        self.check_config(config)
        self.weights = Path(config.models["musetalk"])  # type: ignore[arg-type]
        self.extra_margin = extra_margin
        torch_device = select_device(config.device)
        self.device = str(torch_device)
        self._device = torch_device
        self._cuda = torch_device.type == "cuda"
        # the public inference's --use_float16 halves every network; on a CPU fp16 is slow and lossy
        self._dtype = torch.float16 if self._cuda else torch.float32
        self.models = load_models(self.weights, torch_device, self._dtype)
        layers = int(self.models.whisper.config.encoder_layers) + 1
        self._pe = positional_encoding(WINDOW * layers, self.models.audio_dim).to(torch_device, self._dtype)
        self._timestep = torch.zeros(1, device=torch_device, dtype=torch.long)
        self.batch_size = config.batch_size
        self._model_batch = self.batch_size
        self._cache = None
        if config.cache_dir is not None:
            self._cache = LatentCache(Path(config.cache_dir) / "faces", fingerprint(
                LATENT_VERSION, extra_margin, SIZE, *_file_identity(self.weights / VAE_DIR)))
        log.info("musetalk_loaded", **self.describe())

    @property
    def precision(self) -> str:
        return "fp16" if self._dtype == torch.float16 else "fp32"

    def describe(self) -> dict[str, Any]:
        """Facts for ``heygem-daemon doctor`` and the report."""
        return {
            "engine": self.name,
            "weights": str(self.weights),
            "parameters": self.models.parameters,
            "device": self.device,
            "precision": self.precision,
            "batch_size": self._model_batch,
        }

    # -- audio ----------------------------------------------------------------------
    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        """Every whisper layer's hidden states at 50 steps per second, (T, L, D) on the CPU."""
        if audio.sample_rate != SAMPLE_RATE:
            raise EngineError(f"The musetalk engine needs 16 kHz audio, got {audio.sample_rate} Hz.")
        features = whisper_features(audio.samples, self.models.feature_extractor, self.models.whisper)
        return AudioFeatures(data=features, duration_s=audio.duration_s, source="whisper:musetalk",
                             details={"whisper_steps": int(features.shape[0])})

    # -- frames ---------------------------------------------------------------------
    def render(
        self,
        frames: np.ndarray,
        faces: Sequence[Face | None],
        features: AudioFeatures,
        frame_indices: np.ndarray,
        fps: float,
        *,
        avatar: AvatarFrames | None = None,
        in_place: bool = False,
    ) -> np.ndarray:
        """New lower faces for the frames that have a face; the others come back byte-identical
        (``in_place``: the result is ``frames``, drawn into, engines/base.py InPlaceEngine)."""
        out = frames if in_place else frames.copy()
        height, width = frames.shape[1:3]
        boxes = [None if f is None else crop_box(f, width, height, self.extra_margin) for f in faces]
        rows = [b for b, box in enumerate(boxes) if box is not None]
        if not rows:
            return out
        kept_boxes: list[Box] = [boxes[b] for b in rows]  # type: ignore[misc]
        kept_faces: list[Face] = [faces[b] for b in rows]  # type: ignore[misc]
        with torch.inference_mode():
            # each frame crosses the bus once, as uint8; crop, blend and paste happen there
            pixels = torch.from_numpy(np.ascontiguousarray(frames[rows])).to(self._device)
            source = crops(pixels, kept_boxes)
            latents = self._reference_latents(source, avatar, np.asarray(rows), np.asarray(frame_indices))
            audio = frame_windows(features.data, np.asarray(frame_indices)[rows], fps)
            audio = audio.to(self._device, self._dtype) + self._pe
            generated = self.generate(latents, audio)
            lower, lips = (torch.from_numpy(m).to(self._device)[:, None] for m in masks(kept_faces, kept_boxes))
            faces256 = match_colour(generated, source, lower, lips)
            noses = [int(np.floor(f.landmarks[NOSE_BASE, 1])) for f in kept_faces]  # type: ignore[index]
            paste(pixels, faces256, lower, kept_boxes, noses)
            if len(rows) == len(out):  # the usual batch, a face in every frame: down once, into place
                torch.from_numpy(out).copy_(pixels)
            else:
                out[rows] = pixels.cpu().numpy()
        return out

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) RGB in [0, 1] → (N, 8, 32, 32): [lower half blanked, whole] latents.

        As the public ``get_latents_for_unet``: the lower half is zeroed *before* the
        [-1, 1] normalisation, and latents are scaled by the VAE's factor.  We take the
        posterior's mean where the public code draws a sample, so cached latents are
        reproducible (the VAE's posterior spread is tiny).
        """
        half = source.clone()
        half[:, :, SIZE // 2 :] = 0.0
        parts, self._model_batch = run_batched(
            lambda a, b: torch.cat((self._encode(half[a:b]), self._encode(source[a:b])), dim=1).float(),
            len(source), self._model_batch)
        return torch.cat(parts)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self._dtype).sub(0.5).div(0.5)
        return self.models.vae.encode(x).latent_dist.mode() * self.models.scaling_factor

    def generate(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(N, 8, 32, 32) latents + (N, 50, D) audio tokens → (N, 3, 256, 256) RGB in [0, 1]."""
        parts, self._model_batch = run_batched(
            lambda a, b: self._generate(latents[a:b], audio[a:b]), len(latents), self._model_batch)
        return torch.cat(parts)

    def _generate(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        models = self.models
        predicted = models.unet(latents.to(self._dtype), self._timestep, encoder_hidden_states=audio).sample
        image = models.vae.decode((1 / models.scaling_factor) * predicted).sample
        return (image.float() / 2 + 0.5).clamp_(0.0, 1.0)

    def _reference_latents(self, source: torch.Tensor, avatar: AvatarFrames | None, rows: np.ndarray,
                           frame_indices: np.ndarray) -> torch.Tensor:
        """The crops' latents, from the per-avatar cache where it has them."""
        if avatar is None or self._cache is None:
            return self.encode(source)
        sources = np.asarray(avatar.sources)[rows]
        cached = self._cache.get(avatar.key, sources)
        missing = [i for i, s in enumerate(sources) if int(s) not in cached]
        result = torch.empty((len(sources), 2 * int(self.models.vae.config.latent_channels), SIZE // 8, SIZE // 8),
                             device=self._device)
        if missing:
            encoded = self.encode(source[missing])
            result[missing] = encoded
            self._cache.put(avatar.key, {int(sources[i]): encoded[j].cpu().numpy() for j, i in enumerate(missing)})
        hits = [i for i in range(len(sources)) if i not in set(missing)]
        if hits:
            stacked = np.stack([cached[int(sources[i])] for i in hits])
            result[hits] = torch.from_numpy(stacked).to(self._device)
        # said once per output video (its first batch), per batch only at debug level
        emit = log.info if bool(np.any(frame_indices == 0)) else log.debug
        emit("musetalk_latents_from_cache" if hits else "musetalk_latents_encoded",
             avatar=avatar.key, from_cache=len(hits), encoded=len(missing))
        return result


def _file_identity(folder: Path) -> tuple[str, ...]:
    """Names, sizes and modification times of the VAE's files: new weights, new latents."""
    try:
        return tuple(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()))
    except OSError:
        return ()
