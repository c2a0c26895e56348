"""Fit the acoustic mouth regressor that ships with the package (``heygem_daemon/assets/mouth_regressor.npz``).

Targets are real mouths: the dlib-measured opening (inner-lip gap / face width,
the same measure as ``truth_sync.py``) in every frame of the shared clips,
next to the clip's own sound.  Features: 13 mel-cepstral coefficients and the
level, standardised per clip, at 13 lags over ±240 ms (``speech/acoustic.py``).
Ridge regression, one z-scored target per clip.  The benchmark never scores a
clip with weights that saw it: ``truth_sync.py`` refits without the clip under
test (leave one clip out).

    python benchmarks/train_acoustic.py            # writes the asset
    python benchmarks/train_acoustic.py --check    # prints leave-one-clip-out r, writes nothing
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from truth_sync import DEFAULT_CLIPS, MEDIA, Clip, Landmarks68, load_clip, pearson  # noqa: E402

from heygem_daemon.speech.acoustic import ASSET, RIDGE, AcousticModel, fit, frame_features, lagged  # noqa: E402
from heygem_daemon.speech.mouth import LEAD_S  # noqa: E402

ASSET_PATH = REPO / "heygem_daemon" / "assets" / ASSET


def design(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Features for every frame with a measured mouth, and those openings."""
    times = np.arange(len(clip.open)) / clip.fps
    # the regressor gives the mouth that belongs to the sound at t; the speech
    # stage advances its whole curve by LEAD_S afterwards
    x = lagged(frame_features(clip.audio, 16_000), times + LEAD_S)
    keep = np.isfinite(clip.open)
    return x[keep], clip.open[keep]


def fit_clips(clips: list[Clip], note: str = "") -> AcousticModel:
    pairs = [design(c) for c in clips]
    frames = sum(len(y) for _, y in pairs)
    provenance = (f"ridge {RIDGE:g}, fitted {date.today().isoformat()} by benchmarks/train_acoustic.py on "
                  f"dlib-measured openings of {', '.join(c.path.name for c in clips)} ({frames} frames){note}")
    return fit([x for x, _ in pairs], [y for _, y in pairs], provenance=provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=MEDIA)
    parser.add_argument("--check", action="store_true", help="leave-one-clip-out figures only")
    args = parser.parse_args(argv)
    detector = Landmarks68()
    clips = [load_clip(args.media / name, detector) for name in DEFAULT_CLIPS]
    for held in clips:
        model = fit_clips([c for c in clips if c is not held])
        x, y = design(held)
        print(f"{held.path.name}: r of the regressor alone, fitted without it = {pearson(x @ model.weights[:-1], y):.2f}")
    if not args.check:
        fit_clips(clips).save(ASSET_PATH)
        print(f"wrote {ASSET_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
