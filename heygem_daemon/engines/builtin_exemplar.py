"""Exemplar mouths: paste the person's own filmed lips and teeth into the warped frame.

After the warp has moved the lips to the target opening, the lips and the
mouth interior are replaced by entries of the avatar's mouth library
(``builtin_library``) whose opening matches:

* **choice without flicker**: once per output a chain of exemplars is chosen
  (:func:`exemplar_chain`), one per opening level from the library's
  narrowest to its widest mouth, by a dynamic-programming path that keeps
  neighbouring levels alike (same light, same head turn, teeth alike).  A
  frame's target opening falls between two levels and blends those two, with
  a short cross-fade in the middle of each interval.  The choice is a pure
  function of the target opening, which is smooth in time, so the mouth's
  texture changes only where the opening does;
* **alignment**: every column of the exemplar's lips is mapped
  piecewise-linearly onto the output's lip contours (the knots the warp moved
  them to): upper outer, upper inner, lower inner, lower outer edge.  Opening,
  the upper lip stays where the frame's is and the lower lip lands where the
  warp put it; closing, the warp has already put all four contours where the
  exemplars have them (:meth:`ExemplarChain.placement`), so a smile's raised
  upper lip comes down to where this person's closed lips meet.  The corners
  land where the (widened or rounded) mouth has them;
* **colour**: a per-channel gain from the feathered ring around the lips (skin
  in both images) matches the exemplar to the current frame's light;
* **blend**: a mask feathered over 0.05 eye distances around the outer lips;
  it ends below the warp's top knot (under the nose), so everything above
  stays byte-identical.

Where the library has no opening close to the target (a presenter who never
opens wide, asked for an open vowel), the frame keeps the warp and the
painted interior.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .builtin_geometry import COLUMNS, WarpPlan, falloff
from .builtin_library import MouthLibrary, column_positions

#: opening levels in a chain (at most), candidates tried per level
LEVELS = 12
CANDIDATES = 8
#: openings changed by less than this (eye distances) keep the filmed mouth; the exemplar fades in over FADE_IN
KEEP_FILMED = 0.004
FADE_IN = 0.012
#: cost of a blurred exemplar (speech blurs fast mouths), against a thumbnail's typical difference of 1
BLUR_WEIGHT = 3.0
#: a target this far (eye distances) beyond the library's openings has no close shape
COVER_TOLERANCE = 0.01
#: entries turned further than this from the library's typical head turn are not used
YAW_TOLERANCE = 0.04
#: mask: full up to this far outside the outer lips, zero FEATHER further (eye distances)
MARGIN_IOD = 0.025
FEATHER_IOD = 0.05
#: horizontally: full to this many half mouth-widths, zero FEATHER_HALF further
SIDE_FULL, SIDE_FEATHER = 1.1, 0.3
#: opening change (eye distances) over which one exemplar cross-fades into the next; levels are
#: at least this far apart, so a slowly opening mouth never jumps between two exemplars
CROSSFADE_IOD = 0.006
#: colour gains are kept within these bounds
GAIN_RANGE = (0.75, 1.33)
#: maps and masks are computed every _STRIDE pixels and upsampled (they are smooth)
_STRIDE = 2


@dataclass(frozen=True)
class ExemplarChain:
    """One library entry per opening level, widest last, for one output."""

    library: MouthLibrary
    #: (L,) library indices and their openings (increasing)
    entries: np.ndarray
    gaps: np.ndarray

    def covers(self, gap: float) -> bool:
        return bool(self.gaps[0] - COVER_TOLERANCE <= gap <= self.gaps[-1] + COVER_TOLERANCE)

    def strength(self, gap: float, filmed: float) -> float:
        """How much of the exemplars a frame with target opening ``gap`` gets (0: it keeps its filmed
        mouth, or the library has no close shape): the paste and the lip placement both use it."""
        return _strength(abs(gap - filmed)) if self.covers(gap) else 0.0

    def pick(self, gap: float) -> list[tuple[int, float]]:
        """(library index, weight) of the one or two exemplars for a target opening."""
        if len(self.gaps) == 1 or gap <= self.gaps[0]:
            return [(int(self.entries[0]), 1.0)]
        if gap >= self.gaps[-1]:
            return [(int(self.entries[-1]), 1.0)]
        k = int(np.searchsorted(self.gaps, gap)) - 1
        lo, hi = float(self.gaps[k]), float(self.gaps[k + 1])
        # cross-fade over CROSSFADE_IOD around the midpoint (levels are at least that far apart)
        t = float(np.clip((gap - (lo + hi) / 2) / min(CROSSFADE_IOD, hi - lo) + 0.5, 0.0, 1.0))
        t = t * t * (3 - 2 * t)
        picks = [(int(self.entries[k]), 1.0 - t), (int(self.entries[k + 1]), t)]
        return [(e, w) for e, w in picks if w > 1e-3]

    def placement(self, gap: float, filmed: float) -> tuple[np.ndarray, float] | None:
        """Where this person's lips lie at opening ``gap`` (``builtin_geometry.LipPlacement``), used
        as fully as the exemplar will be pasted.

        The contours of the two levels around ``gap`` are interpolated linearly (not cross-faded
        like the texture) and the lower lip is then moved by what remains to the exact target gap,
        so the rendered opening follows the target continuously, not in the levels' steps.
        """
        weight = self.strength(gap, filmed)
        if weight <= 0.0:
            return None
        if len(self.gaps) == 1:
            contours = self.library.knots[self.entries[0]].astype(np.float64)
        else:
            k = int(np.clip(np.searchsorted(self.gaps, gap) - 1, 0, len(self.gaps) - 2))
            lo, hi = self.library.knots[self.entries[k:k + 2]].astype(np.float64)
            t = float(np.clip((gap - self.gaps[k]) / max(self.gaps[k + 1] - self.gaps[k], 1e-9), 0.0, 1.0))
            contours = (1.0 - t) * lo + t * hi
        columns = column_positions()
        middle = float(np.interp(0.0, columns, contours[2]) - np.interp(0.0, columns, contours[1]))
        # the lower lip moves, fully across the middle of the mouth, not at the corners (half widths)
        contours[2:] += (gap - middle) * falloff(columns, 0.45, 1.0)[None]
        return contours, weight


def exemplar_chain(library: MouthLibrary) -> ExemplarChain | None:
    """The smoothest chain of exemplars over the library's openings (None: nothing usable)."""
    if len(library) == 0:
        return None
    yaw = np.median(library.yaw)
    usable = np.flatnonzero(np.abs(library.yaw - yaw) <= YAW_TOLERANCE)
    if len(usable) < 2:
        usable = np.arange(len(library))
    gaps = library.gap[usable]
    lo, hi = float(np.percentile(gaps, 2)), float(gaps.max())
    levels = int(np.clip(round((hi - lo) / 0.012), 1, LEVELS))
    targets = np.linspace(lo, hi, levels) if levels > 1 else np.array([lo])
    spacing = max((hi - lo) / max(levels - 1, 1), 0.005)
    thumbs = _thumbnails(library.crops[usable])
    options = [np.argsort(np.abs(gaps - t))[:CANDIDATES] for t in targets]
    path = _viterbi(options, gaps, targets, spacing, thumbs, library.yaw[usable] - yaw,
                    _blur(library.crops[usable]))
    chosen = usable[path]
    chosen = chosen[np.argsort(library.gap[chosen], kind="stable")]
    kept = [int(chosen[0])]
    for entry in chosen[1:]:
        if library.gap[entry] - library.gap[kept[-1]] >= CROSSFADE_IOD:
            kept.append(int(entry))
    entries = np.array(kept)
    return ExemplarChain(library, entries, library.gap[entries].astype(np.float64))


def _thumbnails(crops: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), (32, 20), interpolation=cv2.INTER_AREA)
                     for c in crops]).astype(np.float32) / 255.0


def _blur(crops: np.ndarray) -> np.ndarray:
    """How much blurrier than the library's sharpest quarter each crop is (0 = sharp; speech blurs)."""
    detail = np.array([cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var() for c in crops])
    return np.clip(1.0 - detail / max(float(np.percentile(detail, 75)), 1e-6), 0.0, 1.0)


def _viterbi(options, gaps, targets, spacing, thumbs, yaw, blur) -> list[int]:
    """One candidate per level: close to the level's opening, typical of it, sharp, alike to its neighbours.

    "Typical": near the mean look of the library's mouths at that opening (teeth as often
    shown as this person shows them), the choice closest on average to whatever the
    person's real mouth would show there.
    """
    def unary(cands, target):
        near = np.exp(-0.5 * ((gaps - target) / spacing) ** 2)
        typical = (near[:, None, None] * thumbs).sum(axis=0) / max(float(near.sum()), 1e-9)
        atypical = np.abs(thumbs[cands] - typical).mean(axis=(1, 2)) / 0.02
        return ((gaps[cands] - target) / spacing) ** 2 + (yaw[cands] / YAW_TOLERANCE) ** 2 + atypical \
            + BLUR_WEIGHT * blur[cands]

    cost = unary(options[0], targets[0])
    back: list[np.ndarray] = []
    for level in range(1, len(options)):
        prev, cands = options[level - 1], options[level]
        # appearance change between neighbouring levels, in units of a typical thumbnail difference
        pair = np.abs(thumbs[prev][:, None] - thumbs[cands][None]).mean(axis=(2, 3)) / 0.02
        total = cost[:, None] + pair
        back.append(np.argmin(total, axis=0))
        cost = total.min(axis=0) + unary(cands, targets[level])
    pick = int(np.argmin(cost))
    path = [int(options[-1][pick])]
    for level in range(len(options) - 1, 0, -1):
        pick = int(back[level - 1][pick])
        path.append(int(options[level - 1][pick]))
    return path[::-1]


def target_gap(plan: WarpPlan) -> tuple[float, float]:
    """(output, filmed) inner-lip gap at the mouth centre / eye distance, as the warp plans it."""
    mid = COLUMNS // 2
    out = float(plan.out_knots[3, mid - 1:mid + 1].mean() - plan.out_knots[2, mid - 1:mid + 1].mean())
    src = float(plan.src_knots[3, mid - 1:mid + 1].mean() - plan.src_knots[2, mid - 1:mid + 1].mean())
    return out / plan.iod, src / plan.iod


def paste_exemplars(frame: np.ndarray, plan: WarpPlan, chain: ExemplarChain) -> bool:
    """Replace the lips and mouth interior of a warped ``frame`` (in place); False: no close shape,
    or the filmed mouth already has the target opening (it is kept: it is the real one)."""
    gap, filmed = target_gap(plan)
    strength = chain.strength(gap, filmed)
    if strength <= 0.0:
        return False
    region = _Region.of(plan, frame.shape)
    if region is None:
        return False
    library = chain.library
    sample = np.zeros(region.shape + (3,), np.float32)
    for entry, weight in chain.pick(gap):
        map_x, map_y = region.exemplar_map(library, entry)
        sample += weight * cv2.remap(library.crops[entry], map_x, map_y, cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    x0, y0, x1, y1 = region.box
    here = frame[y0:y1, x0:x1]
    mask = region.mask * strength
    ring = (region.mask > 0.05) & (region.mask < 0.95)
    if ring.sum() >= 8:
        gain = here[ring].astype(np.float32).mean(axis=0) / np.maximum(sample[ring].mean(axis=0), 1.0)
        sample *= np.clip(gain, *GAIN_RANGE)
    blended = here.astype(np.float32) + mask[..., None] * (sample - here)
    frame[y0:y1, x0:x1] = np.where(mask[..., None] > 0, np.clip(blended + 0.5, 0, 255), here).astype(np.uint8)
    return True


def _strength(change: float) -> float:
    """How much of the exemplar a frame gets, from the change of opening the warp made."""
    t = float(np.clip((change - KEEP_FILMED) / FADE_IN, 0.0, 1.0))
    return t * t * (3 - 2 * t)


@dataclass
class _Region:
    """The output pixels around the lips, in the warped frame's face-aligned coordinates."""

    box: tuple[int, int, int, int]
    plan: WarpPlan
    #: (h, w) eye-distance coordinates of each pixel: across in half mouth-widths, down in eye distances
    across: np.ndarray
    down: np.ndarray
    #: (4, h, w) the output's lip contours at each pixel's column / eye distance
    lips: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.across.shape  # type: ignore[return-value]

    @classmethod
    def of(cls, plan: WarpPlan, shape: tuple[int, ...]) -> "_Region | None":
        iod, half = plan.iod, plan.half_width * float(plan.scale_u[COLUMNS // 2])
        out = plan.out_knots.astype(np.float64)
        reach = (SIDE_FULL + SIDE_FEATHER) * half
        # from just above the mask's top (never above the warp's top knot, under the nose)
        v_lo = max(float(out[0].min()), float(out[1].min()) - (MARGIN_IOD + FEATHER_IOD) * iod - 2.0)
        v_hi = float(out[4].max()) + (MARGIN_IOD + FEATHER_IOD) * iod
        corners = np.array([[u, v] for u in (-reach, reach) for v in (v_lo, v_hi)])
        pts = plan.origin + corners[:, :1] * plan.axis_u + corners[:, 1:] * plan.axis_v
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        # coarse grid, upsampled: maps and masks are smooth
        ys = np.arange(y0, y1 + _STRIDE, _STRIDE, dtype=np.float64)
        xs = np.arange(x0, x1 + _STRIDE, _STRIDE, dtype=np.float64)
        rx, ry = xs[None, :] - plan.origin[0], ys[:, None] - plan.origin[1]
        u = rx * plan.axis_u[0] + ry * plan.axis_u[1]
        v = rx * plan.axis_v[0] + ry * plan.axis_v[1]
        columns = np.linspace(*plan.u_range, COLUMNS)
        lips = np.stack([np.interp(u.ravel(), columns, out[k]).reshape(u.shape) for k in range(5)]) / iod
        across, down = u / half, v / iod
        mask = _mask(across, down, lips)
        size = (x1 - x0, y1 - y0)
        up = lambda a: cv2.resize(a.astype(np.float32), ((len(xs) - 1) * _STRIDE + 1, (len(ys) - 1) * _STRIDE + 1),  # noqa: E731
                                  interpolation=cv2.INTER_LINEAR)[: size[1], : size[0]]
        fine_mask = up(mask)
        fine_mask[fine_mask < 1e-3] = 0.0
        return cls((x0, y0, x1, y1), plan, up(across), up(down), np.stack([up(lips[k]) for k in range(1, 5)]),
                   fine_mask)

    def exemplar_map(self, library: MouthLibrary, entry: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each region pixel lies in library crop ``entry`` (float32 maps for cv2.remap)."""
        positions = column_positions()
        knots = library.knots[entry]
        flat = self.across.ravel()
        theirs = np.stack([np.interp(flat, positions, knots[k]).reshape(self.across.shape) for k in range(4)])
        down = _piecewise(self.down, self.lips, theirs)
        px = library.px_per_iod
        cx, cy = library.centre
        half = float(library.width[entry]) / 2.0
        return (cx + self.across * half * px).astype(np.float32), (cy + down * px).astype(np.float32)


def _mask(across: np.ndarray, down: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """1 on the lips and a margin around them, feathered to 0; never above the warp's top knot."""
    def ramp(distance: np.ndarray, full: float, width: float) -> np.ndarray:
        t = np.clip((distance - full) / width, 0.0, 1.0)
        return 1.0 - t * t * (3 - 2 * t)

    side = ramp(np.abs(across), SIDE_FULL, SIDE_FEATHER)
    above = ramp(lips[1] - down, MARGIN_IOD, FEATHER_IOD)
    below = ramp(down - lips[4], MARGIN_IOD, FEATHER_IOD)
    return side * above * below * (down > lips[0])


def _piecewise(v: np.ndarray, ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Map ``v`` through our four lip contours onto theirs; a plain shift beyond the outer ones."""
    out = np.where(v < ours[0], theirs[0] + (v - ours[0]), theirs[3] + (v - ours[3]))
    for k in range(3):
        span = ours[k + 1] - ours[k]
        t = (v - ours[k]) / np.maximum(span, 1e-6)
        inside = (v >= ours[k]) & (v < ours[k + 1])
        out = np.where(inside, theirs[k] + t * (theirs[k + 1] - theirs[k]), out)
    return out
