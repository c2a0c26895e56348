"""Speech analysis: audio → mouth parameters per instant (opening, width, rounding).

Without a transcript everything comes from the sound itself (loudness within
voiced segments, spectral shape), so any language animates; with a transcript
pocketsphinx's forced alignment adds English viseme shapes, and a configured
wav2vec2 phoneme model (``phonemes.py``, ``ipa.py``) adds them in any language.
"""

from .curve import MouthCurve
from .loudness import loudness_curve
from .mouth import mouth_curve

__all__ = ["MouthCurve", "loudness_curve", "mouth_curve"]
