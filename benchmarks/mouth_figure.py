"""Picture of rendered mouths on open vowels: source, today's paint, exemplars, truth, at 2x zoom.

Reads the renders a ``truth_sync.py --texture --workdir W`` run kept, picks the
frames where the real speaker's mouth (the truth, measured with dlib) is
widest, and puts four crops side by side per frame, each centred on its own
dlib mouth, enlarged 2x with nearest-neighbour (every filmed pixel shows):

    python benchmarks/mouth_figure.py --workdir W --clip talk_de_20s.mp4 --pair 250-0 \\
        --out docs/img/mouth_exemplars_talk_de.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from lipsync import Landmarks68, read_frames  # noqa: E402
from truth_sync import MEDIA, landmarks, mouth_series  # noqa: E402

COLUMNS = ("source (driver)", "today's paint", "exemplars", "truth")


def mouth_box(frame: np.ndarray, marks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (w, h) crop centred on the dlib mouth (points 48-67), edge-padded at the frame border."""
    cx, cy = np.round(marks[48:68].mean(axis=0)).astype(int)
    w, h = size
    padded = cv2.copyMakeBorder(frame, h, h, w, w, cv2.BORDER_REPLICATE)
    return padded[cy + h - h // 2: cy + h - h // 2 + h, cx + w - w // 2: cx + w - w // 2 + w]


def pick_open(truth_open: np.ndarray, usable: np.ndarray, count: int, spacing: int = 6) -> list[int]:
    """The frames with the widest real openings, at least ``spacing`` frames apart."""
    chosen: list[int] = []
    for i in np.argsort(-np.nan_to_num(truth_open, nan=-1.0)):
        if usable[i] and all(abs(int(i) - c) >= spacing for c in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return sorted(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--pair", required=True, help="'A0-B0': first frame of the driver and of the audio")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--media", type=Path, default=MEDIA)
    args = parser.parse_args()
    tag = f"{Path(args.clip).stem}_{args.pair}"
    b0 = int(args.pair.split("-")[1])
    videos = {name: read_frames(args.workdir / f"{tag}_{name}.mp4")[0] for name in ("driver", "paint", "out")}
    n = min(len(v) for v in videos.values())
    truth = read_frames(args.media / args.clip)[0][b0:b0 + n]
    detector = Landmarks68()
    marks = {name: landmarks(frames[:n], detector) for name, frames in {**videos, "truth": truth}.items()}
    found = np.all([np.isfinite(m).all(axis=(1, 2)) for m in marks.values()], axis=0)
    chosen = pick_open(mouth_series(marks["truth"])[0], found, args.frames)
    iod = float(np.nanmedian(np.linalg.norm(marks["truth"][:, 45] - marks["truth"][:, 36], axis=1)))
    size = (int(iod * 1.1) // 2 * 2, int(iod * 0.7) // 2 * 2)
    rows = []
    for i in chosen:
        crops = [mouth_box(videos[k][i], marks[k][i], size) for k in ("driver", "paint", "out")]
        crops.append(mouth_box(truth[i], marks["truth"][i], size))
        rows.append(np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in crops]))
    grid = cv2.resize(np.vstack(rows), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, label in enumerate(COLUMNS):
        cv2.putText(header, label, (k * grid.shape[1] // 4 + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                    cv2.LINE_AA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack([header, grid]))
    print(f"{args.out}: frames {chosen} of {tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
