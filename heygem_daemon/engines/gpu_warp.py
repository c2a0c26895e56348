"""Batched face crop and paste-back in torch, on the device the frames already live on.

A GPU engine uploads a batch of frames once, cuts every face out at its network's size,
runs the network, blends the new faces back and downloads the finished frames once:
nothing goes back to the host in between.  CPU engines keep OpenCV, which is faster
per face on a CPU than these matrix products (docs/wav2lip.md has both figures).

Contract
--------
``FaceWindows.plan(boxes, rows, frame_hw, device)``
    ``boxes``: (N, 4) integer ``[x0, y0, x1, y1)`` pixel rectangles inside the frame;
    ``rows``: (N,) the frame of the batch each box belongs to, **at most one box per frame**.
``windows.crop(frames, size)``
    ``frames``: (B, H, W, C) uint8 tensor on the device.  Returns (N, size, size, C) float32
    in 0..255, the same as ``cv2.resize(frame[y0:y1, x0:x1], (size, size))`` with
    ``INTER_AREA`` when the box is larger than ``size`` on a side and ``INTER_LINEAR``
    otherwise, before OpenCV rounds to uint8.  (A box larger on one side and smaller on
    the other is resampled per side: area where it shrinks, linear where it grows.)
``windows.paste(frames, out, faces, mask)``
    ``faces``: (N, size, size, C) float 0..255; ``mask``: (size, size) float weights
    0..1.  Both are resized to each box as ``cv2.resize(..., INTER_LINEAR)`` does (the
    face rounded to whole grey levels, as OpenCV's uint8 resize returns it) and blended
    into the box: ``frame * (1 - m) + face * m``, rounded half to even, clamped, written
    into ``out`` (B, H, W, C) uint8.  Every pixel outside the boxes keeps its value in
    ``out`` bit for bit; ``frames`` is only read.

Channels are never reordered: BGR in, BGR out.  Both resamplings are separable, so each
box gets one weight matrix per axis and a whole batch of boxes of different sizes is two
batched matrix products.  They run in float32 (keep them out of fp16 autocast): OpenCV's
uint8 kernels use 11-bit fixed point, so crops can differ from ``cv2.resize`` by one grey
level.  Each box is read and written through a window of the batch's largest box size,
moved inward where it would leave the frame, so all crops are one gather and all pastes
one scatter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FaceWindows:
    """Where each box of a batch lies, as index and weight tensors on the device."""

    #: (N,) frame of the batch
    rows: torch.Tensor
    #: (N, Hw) and (N, Ww) frame rows and columns each window covers
    ys: torch.Tensor
    xs: torch.Tensor
    #: (N,) the box's offset inside its window and its size, per axis
    offset_y: torch.Tensor
    offset_x: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor

    @classmethod
    def plan(cls, boxes: np.ndarray, rows: np.ndarray, frame_hw: tuple[int, int],
             device: torch.device | str) -> "FaceWindows":
        """Windows for ``boxes`` (N, 4) ``[x0, y0, x1, y1)`` in frames of ``frame_hw`` pixels."""
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        frame_h, frame_w = frame_hw
        x0, y0, x1, y1 = boxes.T
        if np.any(x1 <= x0) or np.any(y1 <= y0) or np.any(x0 < 0) or np.any(y0 < 0) \
                or np.any(x1 > frame_w) or np.any(y1 > frame_h):
            raise ValueError(f"boxes must be non-empty and inside the {frame_w}x{frame_h} frame: {boxes.tolist()}")
        if len(set(np.asarray(rows).tolist())) != len(boxes):
            raise ValueError("at most one box per frame")
        height, width = y1 - y0, x1 - x0
        win_h, win_w = int(height.max()), int(width.max())
        # a window is moved inward rather than clamped, so no two window pixels are one frame pixel
        wy0, wx0 = np.minimum(y0, frame_h - win_h), np.minimum(x0, frame_w - win_w)

        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64)).to(device)

        return cls(
            rows=tensor(np.asarray(rows)),
            ys=tensor(wy0[:, None] + np.arange(win_h)[None]),
            xs=tensor(wx0[:, None] + np.arange(win_w)[None]),
            offset_y=tensor(y0 - wy0), offset_x=tensor(x0 - wx0), height=tensor(height), width=tensor(width),
        )

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def gather(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, Hw, Ww, C) float32: each box's window of ``frames``, in one indexing."""
        return frames[self.rows[:, None, None], self.ys[:, :, None], self.xs[:, None, :]].float()

    def crop(self, frames: torch.Tensor, size: int) -> torch.Tensor:
        """(N, size, size, C) float32 0..255: each box resized to ``size`` (see the module's contract)."""
        window = self.gather(frames)
        win_h, win_w = window.shape[1:3]
        area = (self.height > size) | (self.width > size)
        # an output pixel covers scale + 1 source pixels at most (area), 2 when it grows (linear)
        along_y = _Taps.band(_shrink_weights(self.offset_y, self.height, win_h, size, area), -(-win_h // size) + 2)
        along_x = _Taps.band(_shrink_weights(self.offset_x, self.width, win_w, size, area), -(-win_w // size) + 2)
        return along_x.columns(along_y.rows(window))

    def paste(self, frames: torch.Tensor, out: torch.Tensor, faces: torch.Tensor, mask: torch.Tensor) -> None:
        """Blend ``faces`` into their boxes through ``mask``, writing ``out`` (see the module's contract)."""
        window = self.gather(frames)
        count, win_h, win_w = window.shape[:3]
        size = faces.shape[1]
        along_y = _Taps.band(_grow_weights(self.offset_y, self.height, win_h, size), 2)  # linear: 2 taps
        along_x = _Taps.band(_grow_weights(self.offset_x, self.width, win_w, size), 2)
        # the small face is resized along its columns first, so the larger pass runs once
        face = along_y.rows(along_x.columns(faces.float())).round_()
        weight = along_y.rows(along_x.columns(mask.float().expand(count, size, size)[..., None]))
        # outside a box every weight is zero, so there this is the frame's own value exactly
        blended = window * (1.0 - weight) + face * weight
        pixels = blended.round_().clamp_(0, 255).to(torch.uint8)
        out[self.rows[:, None, None], self.ys[:, :, None], self.xs[:, None, :]] = pixels


@dataclass(frozen=True)
class _Taps:
    """A resampling along one axis as a few taps per output pixel: the band of its weight matrix.

    The matrices are built whole (small: output × window pixels per box) and only their
    band is applied, so the work grows with the taps, not with the window's width."""

    #: (N, out, taps) source pixel of each tap, and its weight
    index: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def band(cls, dense: torch.Tensor, taps: int) -> "_Taps":
        """The ``taps`` columns of each row of ``dense`` (N, out, in) from its first non-zero weight on."""
        taps = min(taps, dense.shape[2])
        first = (dense > 0).to(torch.float32).argmax(dim=2)  # the first of equal maxima
        # moved back where it would run off the end, never clamped: no source pixel is counted twice
        base = first.clamp(max=dense.shape[2] - taps)
        index = base[..., None] + torch.arange(taps, device=dense.device)
        return cls(index=index, weight=dense.gather(2, index))

    def rows(self, images: torch.Tensor) -> torch.Tensor:
        """(N, in, W, C) → (N, out, W, C)."""
        batch = torch.arange(images.shape[0], device=images.device)[:, None]
        total = images[batch, self.index[:, :, 0]] * self.weight[:, :, 0, None, None]
        for tap in range(1, self.index.shape[2]):
            total += images[batch, self.index[:, :, tap]] * self.weight[:, :, tap, None, None]
        return total

    def columns(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, in, C) → (N, H, out, C)."""
        return self.rows(images.transpose(1, 2)).transpose(1, 2)


def _shrink_weights(offset: torch.Tensor, length: torch.Tensor, window: int, size: int,
                    area: torch.Tensor) -> torch.Tensor:
    """(N, size, window): box ``length`` pixels at ``offset`` resampled to ``size``.

    Area weights (each output pixel the mean of the source it covers, OpenCV's INTER_AREA)
    where ``area`` and the side shrinks; linear weights otherwise."""
    length_f = length.to(torch.float32)[:, None, None]
    scale = length_f / size
    out = torch.arange(size, device=length.device, dtype=torch.float32)[None, :, None]
    source = (torch.arange(window, device=length.device)[None, None, :] - offset[:, None, None]).to(torch.float32)
    start, stop = out * scale, (out + 1.0) * scale
    covered = (torch.minimum(stop, source + 1.0) - torch.maximum(start, source)).clamp_(min=0.0) / scale
    linear = _hat(source, ((out + 0.5) * scale - 0.5).clamp(min=0.0).minimum(length_f - 1.0))
    inside = (source >= 0) & (source < length_f)
    use_area = (area[:, None, None] & (length_f > size))
    return torch.where(use_area, covered, linear) * inside


def _grow_weights(offset: torch.Tensor, length: torch.Tensor, window: int, size: int) -> torch.Tensor:
    """(N, window, size): a ``size`` image resampled linearly to ``length`` pixels at ``offset``."""
    length_f = length.to(torch.float32)[:, None, None]
    target = (torch.arange(window, device=length.device)[None, :, None] - offset[:, None, None]).to(torch.float32)
    source = ((target + 0.5) * (size / length_f) - 0.5).clamp(min=0.0, max=size - 1.0)
    inputs = torch.arange(size, device=length.device, dtype=torch.float32)[None, None, :]
    inside = (target >= 0) & (target < length_f)
    return _hat(inputs, source) * inside


def _hat(positions: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Linear interpolation weights: 1 at ``centre``, falling to 0 one pixel away."""
    return (1.0 - (positions - centre).abs()).clamp_(min=0.0)
