"""MuseTalk 1.5's audio features, as its ``audio_processor.py`` computes them.

whisper-tiny's encoder runs over 30 s segments (the feature extractor pads each to 30 s);
the hidden states of *every* layer (the embeddings plus each block: 5 for tiny) are kept,
at 50 per second.  A video frame sees 10 of those steps (two per 25 fps frame, ±2 frames:
``2 * (left + right + 1)``), from ``floor(i * 50 / fps)`` in a copy padded with
``floor(50 / fps) * left`` zero steps in front; the 10 × 5 vectors are laid out time-major
as 50 tokens, and a sinusoidal positional encoding is added before the UNet attends to them.

Two deliberate differences, both for frames the public code never asks about:
the public code keeps ``floor(seconds) * 50`` steps (it renders whole seconds only); we
keep every step that holds audio and treat steps past the end as the zero padding the
public code appends.  And our fps may be fractional (29.97): the step multiplier uses it
as is, the padding uses ``floor(50 / fps)`` as the public code does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16_000
#: whisper encoder steps per second of audio
AUDIO_FPS = 50
#: whisper's fixed input length
SEGMENT_S = 30
#: frames of context each side (audio_padding_length_left / _right in the public code)
PAD_LEFT = 2
PAD_RIGHT = 2
#: whisper steps one frame sees
WINDOW = 2 * (PAD_LEFT + PAD_RIGHT + 1)


def whisper_features(samples: np.ndarray, extractor: Any, encoder: torch.nn.Module) -> torch.Tensor:
    """16 kHz mono → (T, L, D) float32 on the CPU: every layer's hidden state per 20 ms step.

    T counts the steps that hold audio (``ceil(len / 320)``); L is the encoder's layers + 1.
    """
    param = next(encoder.parameters())
    parts = []
    length = SEGMENT_S * SAMPLE_RATE
    for start in range(0, max(len(samples), 1), length):
        segment = np.asarray(samples[start : start + length], dtype=np.float32)
        mel = extractor(segment, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            states = encoder(mel.to(device=param.device, dtype=param.dtype), output_hidden_states=True).hidden_states
        parts.append(torch.stack(states, dim=2)[0].float().cpu())
    steps = math.ceil(len(samples) * AUDIO_FPS / SAMPLE_RATE)
    return torch.cat(parts, dim=0)[:steps]


def frame_windows(features: torch.Tensor, frame_indices: np.ndarray, fps: float) -> torch.Tensor:
    """(B, WINDOW * L, D): each frame's steps, time-major, zeros where the audio has none."""
    steps, layers, dim = features.shape
    per_frame = AUDIO_FPS / fps
    pad = math.floor(per_frame) * PAD_LEFT
    starts = np.floor(np.asarray(frame_indices, dtype=np.float64) * per_frame).astype(np.int64) - pad
    index = torch.from_numpy(starts[:, None] + np.arange(WINDOW)[None, :])
    inside = (index >= 0) & (index < steps)
    gathered = features[index.clamp(0, max(steps - 1, 0))] if steps else features.new_zeros((*index.shape, layers, dim))
    gathered = gathered * inside[:, :, None, None].to(gathered.dtype)
    return gathered.reshape(len(starts), WINDOW * layers, dim)


def positional_encoding(tokens: int, dim: int) -> torch.Tensor:
    """(1, tokens, dim) sin on even, cos on odd channels, 10000^(-2i/dim) frequencies."""
    position = torch.arange(0, tokens, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    table = torch.zeros(tokens, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table.unsqueeze(0)
