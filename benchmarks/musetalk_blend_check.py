"""What the musetalk blend does to a real clip, measurable without the real weights.

    .venv/bin/python benchmarks/musetalk_blend_check.py [VIDEO] [--frames N]

1. Crop-box jitter: MuseTalk takes its box from each frame's landmarks alone; we take it
   from the smoothed track.  Both are measured on the same clip as the RMS frame-to-frame
   second difference of the box edges, in pixels (a still head would give 0).
2. The paste, with a stand-in for a generated face: the clip's own crop, softened (a VAE's
   256 px decode is softer than the frame) and given a colour cast (+12 red, -8 blue, +6
   brightness levels; lips paled towards grey by 40 %), as a generated face that drifted.
   Measured: the largest change above the nose base (must be 0), the seam (the mean step
   between neighbouring pixels of the output along the mask's edge, minus the same in the
   frame: 0 means no visible edge), and the colour error of the lower face (mean |Δ| per
   channel vs the frame) and of the lips' hue, with and without the colour match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heygem_daemon.engines.musetalk_blend import (  # noqa: E402
    NOSE_BASE, crop_box, crops, masks, match_colour, paste,
)
from heygem_daemon.faces.tracker import FaceTracker  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "media" / "talk_en_40s.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args(argv)
    frames = _read(args.video, args.frames)
    height, width = frames.shape[1:3]
    smooth = FaceTracker().track(list(frames))
    raw = FaceTracker(smooth_sigma=0).track(list(frames))
    faces = [smooth.face(i, width, height) for i in range(len(frames))]
    raw_faces = [raw.face(i, width, height) for i in range(len(frames))]
    rows = [i for i in range(len(frames)) if faces[i] is not None and raw_faces[i] is not None]
    ours = np.array([_edges(crop_box(faces[i], width, height)) for i in rows])  # type: ignore[arg-type]
    theirs = np.array([_edges(crop_box(raw_faces[i], width, height)) for i in rows])  # type: ignore[arg-type]
    print(f"{args.video.name}: {len(rows)} frames with a face, box height ~{np.median(ours[:, 3] - ours[:, 1]):.0f} px")
    print(f"crop-box jitter (RMS 2nd difference of the edges, px): per-frame landmarks (MuseTalk) "
          f"{_jitter(theirs):.2f}, smoothed track (ours) {_jitter(ours):.2f}")
    for matched in (False, True):
        figures = _paste_figures(frames[rows], [faces[i] for i in rows], matched)  # type: ignore[misc]
        print(f"paste {'with' if matched else 'without'} colour match: " + ", ".join(
            f"{k} {v:.2f}" for k, v in figures.items()))
    return 0


def _read(video: Path, count: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames)


def _edges(box) -> tuple[int, int, int, int]:
    return (box.x0, box.y0, box.x1, box.y1)


def _jitter(edges: np.ndarray) -> float:
    second = edges[2:] - 2 * edges[1:-1] + edges[:-2]
    return float(np.sqrt(np.mean(second.astype(np.float64) ** 2)))


def _paste_figures(frames: np.ndarray, faces: list, matched: bool) -> dict[str, float]:
    height, width = frames.shape[1:3]
    boxes = [crop_box(f, width, height) for f in faces]
    with torch.inference_mode():
        pixels = torch.from_numpy(frames.copy())
        source = crops(pixels, boxes)
        lower, lips = (torch.from_numpy(m)[:, None] for m in masks(faces, boxes))
        fake = _drifted(source, lips)
        face = match_colour(fake, source, lower, lips) if matched else fake
        paste(pixels, face, lower, boxes, [int(np.floor(f.landmarks[NOSE_BASE, 1])) for f in faces])
        out = pixels.numpy()
    above, seam, colour, lip_hue = [], [], [], []
    for b, (f, box) in enumerate(zip(faces, boxes)):
        nose = int(np.floor(f.landmarks[NOSE_BASE, 1]))
        diff = np.abs(out[b].astype(int) - frames[b].astype(int))
        above.append(diff[:nose].max())
        weight = cv2.resize(lower[b, 0].numpy(), (box.width, box.height))
        full = np.zeros((height, width), np.float32)
        full[box.y0:box.y1, box.x0:box.x1] = weight
        ring = (full > 0.02) & (full < 0.5)
        seam.append(_steps(out[b], ring) - _steps(frames[b], ring))
        inside = full > 0.5
        colour.append(np.abs(out[b][inside].mean(axis=0) - frames[b][inside].astype(float).mean(axis=0)).mean())
        lipmask = np.zeros((height, width), np.float32)
        lipmask[box.y0:box.y1, box.x0:box.x1] = cv2.resize(lips[b, 0].numpy(), (box.width, box.height))
        on_lips = lipmask > 0.5
        lip_hue.append(np.abs(_chroma(out[b][on_lips]) - _chroma(frames[b][on_lips])).mean())
    return {"max change above nose": float(np.max(above)), "seam step excess": float(np.mean(seam)),
            "lower-face colour error": float(np.mean(colour)), "lip hue error": float(np.mean(lip_hue))}


def _drifted(source: torch.Tensor, lips: torch.Tensor) -> torch.Tensor:
    soft = torch.nn.functional.avg_pool2d(source, 5, stride=1, padding=2, count_include_pad=False)
    cast = torch.tensor([12.0, 6.0, -8.0]).view(1, 3, 1, 1) / 255.0 + 6.0 / 255.0  # RGB
    grey = soft.mean(dim=1, keepdim=True)
    pale = soft + 0.4 * lips * (grey - soft)
    return (pale + cast).clamp(0, 1)


def _steps(image: np.ndarray, where: np.ndarray) -> float:
    grey = image.astype(np.float32).mean(axis=2)
    gx = np.abs(np.diff(grey, axis=1))[:, :-1][:-1]
    gy = np.abs(np.diff(grey, axis=0))[:-1, :-1][:, :]
    steps = np.maximum(gx[: gy.shape[0], : gy.shape[1]], gy[: gx.shape[0], : gx.shape[1]])
    return float(steps[where[: steps.shape[0], : steps.shape[1]]].mean())


def _chroma(pixels: np.ndarray) -> np.ndarray:
    values = pixels.astype(np.float64).mean(axis=0)
    return values - values.mean()


if __name__ == "__main__":
    raise SystemExit(main())
