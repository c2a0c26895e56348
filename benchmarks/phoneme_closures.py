"""Mouth opening around m/b/p on a real English clip: loudness only vs. phone-shaped curves.

No real wav2vec2 phoneme model is available on the build machines, so the
ground truth is pocketsphinx's forced alignment of a transcript of
audio_1.wav.  Three curves are compared:

* loudness only (what the engine does with neither transcript nor model),
* transcript visemes (the English alignment path),
* the phoneme path: the aligned phones rewritten as IPA segments, as a
  wav2vec2 recogniser would emit them, fed through ``mouth_curve(phonemes=...)``
  (the IPA table, the shared viseme table and the coarticulation smoothing).

Prints the mean opening on bilabial frames and writes a PNG plot.

    .venv/bin/python benchmarks/phoneme_closures.py [--out docs/img/phonemes_closures.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import librosa
import numpy as np

from heygem_daemon.speech import loudness_curve, mouth_curve
from heygem_daemon.speech.align import align_phones
from heygem_daemon.speech.ctc import PhoneSegment

RATE = 16_000
MEDIA = Path(__file__).resolve().parents[1] / ".." / "shared" / "media"
#: what pocketsphinx's own recogniser hears in audio_1.wav (see tests/speech/test_align.py)
HEARD_1 = "armed to honestly be discontinued and need to be replaced by new benchmark rates"
#: ARPAbet → IPA, to pose the alignment as a phoneme recogniser's output
ARPABET_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d",
    "DH": "ð", "EH": "ɛ", "ER": "ɚ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i",
    "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p",
    "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w",
    "Y": "j", "Z": "z", "ZH": "ʒ",
}
BILABIALS = ("M", "B", "P")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/phonemes_closures.png"))
    args = parser.parse_args()
    samples = librosa.load(str(MEDIA / "audio_1.wav"), sr=RATE, mono=True)[0].astype(np.float32)
    phones = align_phones(samples, RATE, HEARD_1)
    ipa = [PhoneSegment(ARPABET_IPA[p.name], p.start_s, p.end_s) for p in phones if p.name in ARPABET_IPA]
    curves = {
        "loudness": loudness_curve(samples, RATE),
        "transcript": mouth_curve(samples, RATE, transcript=HEARD_1),
        "phonemes": mouth_curve(samples, RATE, phonemes=lambda _: ipa),
    }
    bilabial = [p for p in phones if p.name in BILABIALS]
    print(f"{'phone':6} {'t (s)':>6} " + " ".join(f"{name:>10}" for name in curves))
    for p in bilabial:
        i = int(round((p.start_s + p.end_s) / 2 * 100))
        print(f"{p.name:6} {i / 100:6.2f} " + " ".join(f"{c.open[i]:10.3f}" for c in curves.values()))
    centres = [int(round((p.start_s + p.end_s) / 2 * 100)) for p in bilabial]
    print("mean   " + " " * 6 + " ".join(f"{c.open[centres].mean():10.3f}" for c in curves.values()))
    print("sources:", {name: c.source for name, c in curves.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), plot(curves, phones))
    print("wrote", args.out)


def plot(curves: dict, phones: list, width: int = 1400, height: int = 420) -> np.ndarray:
    """Opening over time: bilabial phones shaded, one line per curve (drawn with OpenCV)."""
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, 20, 40, 60
    seconds = len(curves["loudness"].open) / 100.0
    x = lambda t: int(left + t / seconds * (width - left - right))  # noqa: E731
    y = lambda v: int(top + (1.0 - v) * (height - top - bottom))  # noqa: E731
    for p in phones:
        if p.name in BILABIALS:
            cv2.rectangle(image, (x(p.start_s), top), (x(p.end_s), y(0.0)), (200, 200, 255), -1)
            cv2.putText(image, p.name.lower(), (x(p.start_s), top - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 160), 1, cv2.LINE_AA)
    for v in (0.0, 0.5, 1.0):
        cv2.line(image, (left, y(v)), (width - right, y(v)), (220, 220, 220), 1)
        cv2.putText(image, f"{v:.1f}", (10, y(v) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for t in range(int(seconds) + 1):
        cv2.putText(image, f"{t}s", (x(t) - 8, height - bottom + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    styles = {"loudness": ((150, 150, 150), 3), "transcript": ((200, 120, 0), 2), "phonemes": ((0, 140, 0), 1)}
    for name, curve in curves.items():
        colour, thickness = styles[name]
        pts = np.array([[x(i / 100.0), y(float(v))] for i, v in enumerate(curve.open)], np.int32)
        cv2.polylines(image, [pts], False, colour, thickness, cv2.LINE_AA)
    legend = [("loudness only", "loudness"), ("transcript visemes (pocketsphinx)", "transcript"),
              ("phoneme path (IPA segments from the alignment)", "phonemes")]
    for k, (label, name) in enumerate(legend):
        lx = left + 10 + k * 420
        cv2.line(image, (lx, height - 18), (lx + 30, height - 18), styles[name][0], 3)
        cv2.putText(image, label, (lx + 38, height - 13), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "mouth opening, audio_1.wav (m/b/p shaded)", (left, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (0, 0, 0), 1, cv2.LINE_AA)
    return image


if __name__ == "__main__":
    main()
