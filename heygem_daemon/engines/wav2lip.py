"""The ``wav2lip`` engine: the public Wav2Lip weights, resident on a GPU (or the CPU).

Per frame: the tracked face box (plus a little chin padding) is cut out, resized to
96×96 and given to the network with its 0.2 s mel window; the 96×96 mouth it draws is
resized back and blended in through a feathered lower-face mask, so neither the
square crop nor its edge is visible and everything above the box stays untouched.

On a GPU the crop, resize and blend run there too (``gpu_warp.FaceWindows``): a batch of
frames is uploaded once and comes back finished.  On the CPU they stay OpenCV per face.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from ..errors import EngineError, for_admin
from ..logging import get_logger
from .base import AudioClip, AudioFeatures, EngineConfig, Face
from .device import run_batched, select_device
from .gpu_warp import FaceWindows
from .wav2lip_audio import SAMPLE_RATE, mel_filterbank, mel_windows, melspectrogram
from .wav2lip_net import load_checkpoint, parameter_count

log = get_logger()

#: the network's face size
CROP = 96
#: pixels added below the face box so the chin is inside the crop (the original's --pads 0 10 0 0)
DEFAULT_BOTTOM_PAD = 10
#: on a GPU, fewer frames per call leave it idle between calls
CUDA_MIN_BATCH = 128

MISSING_CHECKPOINT = (
    'The wav2lip engine is not set up on this daemon: it has no checkpoint. Use engine = "builtin", '
    'or ask the administrator. (For the administrator: set models.wav2lip = "/path/to/wav2lip_gan.pth" '
    "in daemon.toml, or HEYGEM_MODELS__WAV2LIP.)"
)


@dataclass(frozen=True)
class CropBox:
    """Integer pixel rectangle [x0, x1) × [y0, y1) inside the frame."""

    x0: int
    y0: int
    x1: int
    y1: int


class Wav2LipEngine:
    """Lip-sync with a Wav2Lip checkpoint; the model is loaded once and stays resident."""

    name = "wav2lip"
    #: engines/base.py InPlaceEngine
    renders_in_place = True

    @staticmethod
    def check_config(config: EngineConfig) -> None:
        """Raise EngineError unless a checkpoint file is configured (read by ``validate``
        without loading the network)."""
        checkpoint = config.models.get("wav2lip")
        if checkpoint is None:
            raise EngineError(MISSING_CHECKPOINT)
        if not Path(checkpoint).is_file():
            raise EngineError(
                f"The wav2lip checkpoint {checkpoint} does not exist or is not a file.",
                hint=for_admin("check models.wav2lip in daemon.toml, or HEYGEM_MODELS__WAV2LIP"),
            )

    def __init__(self, config: EngineConfig, *, bottom_pad: int = DEFAULT_BOTTOM_PAD,
                 device_warp: bool | None = None) -> None:
        """``device_warp``: crop, resize and blend with torch on the engine's device; None: on a GPU
        only (on a CPU OpenCV is faster; the tests force it on to check it there)."""
        self.check_config(config)
        checkpoint = config.models["wav2lip"]
        self.checkpoint = Path(checkpoint)
        self.bottom_pad = bottom_pad
        torch_device = select_device(config.device)
        self.device = str(torch_device)
        self._torch_device = torch_device
        self._cuda = torch_device.type == "cuda"
        self._net = self._load(self.checkpoint, torch_device)
        self.parameters = parameter_count(self._net)
        self.batch_size = max(config.batch_size, CUDA_MIN_BATCH) if self._cuda else config.batch_size
        self._model_batch = self.batch_size
        self._mel_basis = mel_filterbank()
        self._mask = feather_mask(CROP)
        self.device_warp = self._cuda if device_warp is None else device_warp
        self._mask_on_device = torch.from_numpy(self._mask).to(torch_device)
        log.info("wav2lip_loaded", **self.describe())

    def _load(self, path: Path, device: torch.device) -> torch.nn.Module:
        net = load_checkpoint(path).to(device)
        if self._cuda:
            # channels-last lets cuDNN use its fastest fp16 convolution kernels
            # (runtime.configure_runtime turns on cuDNN's kernel search)
            net = net.to(memory_format=torch.channels_last)
        return net

    def describe(self) -> dict[str, Any]:
        """Facts for ``heygem-daemon doctor`` and the report."""
        return {
            "engine": self.name,
            "checkpoint": str(self.checkpoint),
            "parameters": self.parameters,
            "device": self.device,
            "precision": "fp16 autocast" if self._cuda else "fp32",
            "batch_size": self._model_batch,
            "crop_and_paste": f"torch on {self.device}" if self.device_warp else "OpenCV on the CPU",
        }

    # -- audio ----------------------------------------------------------------------
    def prepare(self, audio: AudioClip, *, transcript: str | None = None) -> AudioFeatures:
        """The whole audio's normalised mel spectrogram, (80, T) at 80 frames/s."""
        if audio.sample_rate != SAMPLE_RATE:
            raise EngineError(f"The wav2lip engine needs 16 kHz audio, got {audio.sample_rate} Hz.")
        mel = melspectrogram(audio.samples, self._mel_basis)
        return AudioFeatures(
            data=mel, duration_s=audio.duration_s, source="mel:wav2lip", details={"mel_frames": mel.shape[1]}
        )

    # -- frames ---------------------------------------------------------------------
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
        """New mouths for the frames that have a face; the others come back byte-identical.
        ``in_place`` (the render pass): the result is ``frames``, drawn into (engines/base.py InPlaceEngine)."""
        height, width = frames.shape[1:3]
        boxes = [None if f is None else crop_box(f, width, height, self.bottom_pad) for f in faces]
        rows = [b for b, box in enumerate(boxes) if box is not None]
        if not rows:
            return frames if in_place else frames.copy()
        mels = mel_windows(features.data, np.asarray(frame_indices)[rows], fps)
        if self.device_warp:
            corners = np.array([[box.x0, box.y0, box.x1, box.y1] for box in boxes if box is not None])
            try:
                return self._render_on_device(frames, corners, np.asarray(rows), mels, in_place)
            except torch.cuda.OutOfMemoryError:
                # the whole batch and its copy did not fit beside the network: this batch
                # takes the OpenCV path, which only sends the 96-pixel crops over
                log.warning("device_warp_out_of_memory", frames=len(frames), fallback="OpenCV crop + paste")
        out = frames if in_place else frames.copy()
        # every crop is cut before any mouth is pasted: drawing into ``frames`` reads no pasted pixel
        crops = np.stack([crop_face(frames[b], boxes[b]) for b in rows])  # type: ignore[arg-type]
        mouths = self.infer(crops, mels)
        for b, mouth in zip(rows, mouths):
            paste_face(out[b], boxes[b], mouth, self._mask)  # type: ignore[arg-type]
        return out

    def _render_on_device(self, frames: np.ndarray, corners: np.ndarray, rows: np.ndarray,
                          mels: np.ndarray, in_place: bool = False) -> np.ndarray:
        """The batch goes up once; crop, network and paste run on the device; the finished frames come
        down once (``in_place``: into ``frames``, not a new 512 MB array per batch)."""
        device = self._torch_device
        with torch.inference_mode():
            source = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
            # pasted into a copy, so a chunk retried after out-of-memory reads the original pixels
            out = source.clone()
            mel = torch.from_numpy(np.ascontiguousarray(mels)).to(device)

            def chunk(start: int, stop: int) -> None:
                windows = FaceWindows.plan(corners[start:stop], rows[start:stop], frames.shape[1:3], device)
                # whole grey levels, as the uint8 crops the OpenCV path gives the network
                crops = windows.crop(source, CROP).round_().clamp_(0, 255)
                windows.paste(source, out, self._mouths(crops, mel[start:stop]), self._mask_on_device)

            _, self._model_batch = run_batched(chunk, len(rows), self._model_batch)
            if in_place:  # only now: a batch that ran out of memory above left ``frames`` as they were
                torch.from_numpy(frames).copy_(out)
                return frames
            return out.cpu().numpy()

    def infer(self, crops: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """(N, 96, 96, 3) uint8 faces + (N, 80, 16) mel windows → (N, 96, 96, 3) uint8 faces.

        Batched at the current model batch size, which halves on GPU out-of-memory
        and stays at the size that worked.
        """
        parts, self._model_batch = run_batched(
            lambda start, stop: self._forward(crops[start:stop], mels[start:stop]), len(crops), self._model_batch
        )
        return np.concatenate(parts)

    def _forward(self, crops: np.ndarray, mels: np.ndarray) -> np.ndarray:
        device = self._torch_device
        with torch.inference_mode():
            # uint8 crosses the bus (4× less than float); the GPU does the conversion
            faces = torch.from_numpy(crops).to(device)
            mel = torch.from_numpy(np.ascontiguousarray(mels)).to(device)
            return self._mouths(faces, mel).to(torch.uint8).contiguous().cpu().numpy()

    def _mouths(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """(N, 96, 96, 3) faces in 0..255 (uint8 or whole-number floats) + (N, 80, 16) mels on the
        device → (N, 96, 96, 3) float32 whole numbers 0..255; only the network runs under autocast."""
        face = faces.permute(0, 3, 1, 2).float() / 255.0  # a new tensor: the caller's faces stay as they are
        masked = face.clone()
        masked[:, :, CROP // 2 :] = 0.0
        face_in = torch.cat((masked, face), dim=1)
        if self._cuda:
            face_in = face_in.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            pred: torch.Tensor = self._net(mels.unsqueeze(1), face_in)
        return pred.float().mul_(255.0).round_().clamp_(0, 255).permute(0, 2, 3, 1)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._cuda:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()


def crop_box(face: Face, width: int, height: int, bottom_pad: int = DEFAULT_BOTTOM_PAD) -> CropBox | None:
    """The face box plus ``bottom_pad`` pixels below, clamped to the frame; None if too small."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(face.box).reshape(4))
    if not np.all(np.isfinite([x0, y0, x1, y1])):
        return None
    box = CropBox(
        x0=max(0, int(np.floor(x0))),
        y0=max(0, int(np.floor(y0))),
        x1=min(width, int(np.ceil(x1))),
        y1=min(height, int(np.ceil(y1)) + bottom_pad),
    )
    if box.x1 - box.x0 < 8 or box.y1 - box.y0 < 8:
        return None
    return box


def crop_face(frame: np.ndarray, box: CropBox) -> np.ndarray:
    region = frame[box.y0 : box.y1, box.x0 : box.x1]
    shrinking = region.shape[0] > CROP or region.shape[1] > CROP
    return cv2.resize(region, (CROP, CROP), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def paste_face(frame: np.ndarray, box: CropBox, mouth: np.ndarray, mask96: np.ndarray) -> None:
    size = (box.x1 - box.x0, box.y1 - box.y0)
    mouth_full = cv2.resize(mouth, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    mask = cv2.resize(mask96, size, interpolation=cv2.INTER_LINEAR)[:, :, None]
    region = frame[box.y0 : box.y1, box.x0 : box.x1]
    blended = region.astype(np.float32) * (1.0 - mask) + mouth_full * mask
    region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def feather_mask(size: int) -> np.ndarray:
    """(size, size) float32 weights: 1 over mouth and chin, fading to exactly 0 at the crop's edges.

    The network redraws only the lower half of its input; the ellipse covers that
    region, and the blur plus the border ramp hide any trace of the square crop.
    """
    mask = np.zeros((size, size), np.float32)
    centre = (size // 2, int(size * 0.66))
    axes = (int(size * 0.36), int(size * 0.27))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=size * 0.05)
    ramp = np.clip(np.minimum(np.arange(size), np.arange(size)[::-1]) / (size * 0.08), 0.0, 1.0)
    mask *= np.minimum(ramp[:, None], ramp[None, :])
    return mask.astype(np.float32)
