"""Face tracker agreement and speed: one checkout's tracker against another's.

    # in each checkout's venv: raw (unsmoothed) landmarks of every sample clip, with timings
    .venv/bin/python benchmarks/tracking_compare.py dump OUT.npz [--media DIR] [--height 720] [--repo DIR]
    # an independent measurement: dlib's 68-point model (the bench extra), once
    .venv/bin/python benchmarks/tracking_compare.py truth DLIB.npz
    # then compare a reference dump (e.g. the mediapipe 0.10.21 tracker) with a new one
    .venv/bin/python benchmarks/tracking_compare.py compare REF.npz NEW.npz [--truth DLIB.npz]

Metrics per clip, over frames where both trackers found the face:
- mean point error of all 478 landmarks, and of the 80 lip points, as a
  fraction of the reference's outer-eye-corner distance (33-263);
- correlation of the inner-lip gap (13-14, same normalisation) over time,
  the signal the builtin engine reads mouth opening from;
- frames with a face in each, and tracking speed (frames/s, one thread).

With ``--truth``, each tracker is also measured against dlib's 68-point model,
a detector independent of both: correlation of its mouth opening (three inner-
lip pairs over the eye-corner distance) with dlib's, and the distance of its
mouth corners from dlib's (same normalisation).  The agreement between the two
trackers says how alike they are; these two say which one is closer to an
independent reading of the same frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = REPO / ".." / "shared" / "media"
CLIPS = ["face_1", "face_2", "face_3", "face_4", "face_5", "talk_de_20s", "talk_en_40s"]
LIP_POINTS = [
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
]  # fmt: skip


def read_frames(path: Path, height: int | None = None) -> list[np.ndarray]:
    """The clip's frames; ``height``: each scaled to it and centred in a 16:9 frame (720: 1280x720,
    as throughput.py's clips; the size a tracker shrinks by whole 2x2 blocks)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame if height is None else _in_frame(frame, height))
    capture.release()
    return frames


def _in_frame(frame: np.ndarray, height: int) -> np.ndarray:
    width = height * 16 // 9
    scaled_w = min(width, round(frame.shape[1] * height / frame.shape[0]) // 2 * 2)
    scaled = cv2.resize(frame, (scaled_w, height), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    x = (width - scaled_w) // 2
    canvas[:, x : x + scaled_w] = scaled
    return canvas


def dump(out: Path, media: Path, height: int | None = None, repo: Path | None = None) -> None:
    if repo is not None:  # another checkout's tracker, on this script's frames
        sys.path.insert(0, str(repo.resolve()))
        for name in [m for m in sys.modules if m == "heygem_daemon" or m.startswith("heygem_daemon.")]:
            del sys.modules[name]
    from heygem_daemon.faces.tracker import FaceTracker

    tracker = FaceTracker(smooth_sigma=0)
    arrays = {"tracker": np.array(tracker.name)}
    for clip in CLIPS:
        frames = read_frames(media / f"{clip}.mp4", height)
        tracker.track(frames[:5])  # warm-up: model load is not per-frame cost
        started = time.perf_counter()
        track = tracker.track(iter(frames))
        seconds = time.perf_counter() - started
        height, width = frames[0].shape[:2]
        arrays[f"{clip}/marks"] = track.landmarks * np.float32([width, height])
        arrays[f"{clip}/fps"] = np.array(len(frames) / seconds)
        print(f"{clip:>12}: {len(frames)} frames, {track.frames_with_face} with a face, {len(frames) / seconds:.1f} fps")
    np.savez_compressed(out, **arrays)


#: (dlib 68, mediapipe 478) inner-lip pairs, mouth corners, outer eye corners
DLIB_GAP, MESH_GAP = ((61, 67), (62, 66), (63, 65)), ((82, 87), (13, 14), (312, 317))
DLIB_CORNERS, MESH_CORNERS = (48, 54), (61, 291)
DLIB_EYES, MESH_EYES = (36, 45), (33, 263)


def truth(out: Path, media: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from lipsync import Landmarks68

    detector = Landmarks68()
    arrays = {}
    for clip in CLIPS:
        marks = [detector(frame) for frame in read_frames(media / f"{clip}.mp4")]
        arrays[clip] = np.stack([np.full((68, 2), np.nan) if m is None else m for m in marks])
        print(f"{clip:>12}: {sum(m is not None for m in marks)}/{len(marks)} frames with a dlib face")
    np.savez_compressed(out, **arrays)


def _mouth(marks: np.ndarray, gap_pairs, corners, eyes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(opening over eye distance, mouth corners, eye distance) per frame."""
    eye = np.linalg.norm(marks[:, eyes[0]] - marks[:, eyes[1]], axis=1)
    gap = np.mean([np.linalg.norm(marks[:, a] - marks[:, b], axis=1) for a, b in gap_pairs], axis=0)
    return gap / eye, marks[:, list(corners)], eye


def against_truth(ref, new, dlib) -> None:
    print(f"against dlib 68-point: {'clip':>12} {'frames':>6} {'ref r':>6} {'new r':>6} {'ref corners':>11} "
          f"{'new corners':>11}")
    totals = []
    for clip in CLIPS:
        d = dlib[clip]
        row = []
        both = ~np.isnan(d[:, 0, 0]) & ~np.isnan(ref[f"{clip}/marks"][:, 0, 0]) & ~np.isnan(new[f"{clip}/marks"][:, 0, 0])
        d_open, d_corners, d_eye = _mouth(d[both], DLIB_GAP, DLIB_CORNERS, DLIB_EYES)
        for dump in (ref, new):
            m_open, m_corners, _ = _mouth(dump[f"{clip}/marks"][both], MESH_GAP, MESH_CORNERS, MESH_EYES)
            corner_error = np.linalg.norm(m_corners - d_corners, axis=2).mean(axis=1) / d_eye
            row += [float(np.corrcoef(d_open, m_open)[0, 1]), float(corner_error.mean())]
        totals.append(row)
        print(f"{'':>21} {clip:>12} {int(both.sum()):>6} {row[0]:>6.3f} {row[2]:>6.3f} {row[1]:>11.4f} {row[3]:>11.4f}")
    mean = np.mean(totals, axis=0)
    print(f"{'':>21} {'mean':>12} {'':>6} {mean[0]:>6.3f} {mean[2]:>6.3f} {mean[1]:>11.4f} {mean[3]:>11.4f}")


def compare(ref_path: Path, new_path: Path, truth_path: Path | None = None) -> None:
    ref, new = np.load(ref_path), np.load(new_path)
    print(f"reference {ref['tracker']}; new {new['tracker']}")
    print(f"{'clip':>12} {'frames':>6} {'ref':>5} {'new':>5} {'all pts':>8} {'lips':>7} {'gap r':>6} "
          f"{'ref fps':>8} {'new fps':>8}")
    totals = []
    for clip in CLIPS:
        a, b = ref[f"{clip}/marks"], new[f"{clip}/marks"]
        both = ~np.isnan(a[:, 0, 0]) & ~np.isnan(b[:, 0, 0])
        eyes = np.linalg.norm(a[both, 33] - a[both, 263], axis=1)
        error = np.linalg.norm(a[both] - b[both], axis=2) / eyes[:, None]
        gaps = [np.linalg.norm(m[both, 13] - m[both, 14], axis=1) / eyes for m in (a, b)]
        corr = float(np.corrcoef(*gaps)[0, 1])
        totals.append((error.mean(), error[:, LIP_POINTS].mean(), corr))
        print(f"{clip:>12} {len(a):>6} {(~np.isnan(a[:, 0, 0])).sum():>5} {(~np.isnan(b[:, 0, 0])).sum():>5} "
              f"{error.mean():>8.4f} {error[:, LIP_POINTS].mean():>7.4f} {corr:>6.3f} "
              f"{float(ref[f'{clip}/fps']):>8.1f} {float(new[f'{clip}/fps']):>8.1f}")
    mean = np.mean(totals, axis=0)
    print(f"{'mean':>12} {'':>6} {'':>5} {'':>5} {mean[0]:>8.4f} {mean[1]:>7.4f} {mean[2]:>6.3f}")
    if truth_path is not None:
        against_truth(ref, new, np.load(truth_path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--media", type=Path, default=MEDIA)
    d.add_argument("--height", type=int, help="each clip scaled and centred in a 16:9 frame this high")
    d.add_argument("--repo", type=Path, help="track with this checkout's code (e.g. an old worktree)")
    c = sub.add_parser("compare")
    c.add_argument("ref", type=Path)
    c.add_argument("new", type=Path)
    c.add_argument("--truth", type=Path)
    t = sub.add_parser("truth")
    t.add_argument("out", type=Path)
    t.add_argument("--media", type=Path, default=MEDIA)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.media, args.height, args.repo)
    elif args.command == "truth":
        truth(args.out, args.media)
    else:
        compare(args.ref, args.new, args.truth)


if __name__ == "__main__":
    main()
