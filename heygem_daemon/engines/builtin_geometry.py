"""Where to move what: one face's landmarks + target mouth shape → a warp plan.

The lower face is described in a face-aligned frame: ``u`` along the eye line
(pixels, 0 at the mouth centre), ``v`` down the face.  For every column ``u``
seven knots lie along ``v``: nose base, upper-lip outer and inner edges,
lower-lip inner and outer edges, chin, and a point below the chin.  Each knot
gets a vertical displacement (the lower lip and jaw follow the target opening,
the upper lip barely moves, the nose base and below-chin knots stay put; a
closing mouth with a mouth library gets the four lip contours of the person's
own filmed mouths at that opening, and the chin follows the lower lip), and
the renderer maps every pixel piecewise-linearly between the knots.  A
piecewise map can close a mouth exactly (two knots meet), which a smooth
thin-plate spline cannot.

Indices are MediaPipe face-mesh landmarks (478 points with refinement, faces/facemesh.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

EYE_OUTER = (33, 263)
NOSE_BASE = 2
MOUTH_CORNERS = (61, 291)
INNER_CENTRE = (13, 14)
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
JAW = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
#: points between outer and inner lip contours, to sample the lip colour
LIP_BODY = ((0, 13), (37, 82), (267, 312), (17, 14), (84, 87), (314, 317))

#: widest target opening (inner-lip gap) as a fraction of the outer eye-corner distance
MAX_GAP_IOD = 0.18
#: how much of the lower lip's displacement reaches the upper lip (inner/outer edge) and the chin
UPPER_INNER_SHARE = -0.12
UPPER_OUTER_SHARE = -0.05
CHIN_SHARE = 0.8
#: the warp starts this far (fraction of the eye distance) below the nose base
NOSE_MARGIN_IOD = 0.04
#: below-chin knot, as a fraction of the eye distance under the chin
BELOW_CHIN_IOD = 0.35
#: the narrowest lip gap a closing leaves (painted as the seam between the lips)
CLOSED_SEAM_IOD = 0.015
#: lip-corner distance change at width = +-1 and at full rounding
WIDTH_GAIN = 0.10
ROUND_GAIN = 0.12
#: the warped region reaches this many half mouth-widths to each side
SIDE_REACH = 2.3
#: columns sampled across the lower face for the knot tables
COLUMNS = 64
KNOTS = 7
#: the lips' move is full up to this many half mouth-widths from the centre, none beyond LIP_END
LIP_FULL, LIP_END = 0.45, 1.6
#: a placed lip contour is used fully up to this many half mouth-widths from the centre, not beyond this
PLACE_FULL, PLACE_END = 0.9, 1.6


class LipPlacement(Protocol):
    """Where this person's own lips lie at an opening, learned from their filmed mouths."""

    def __call__(self, target_gap: float, filmed_gap: float) -> tuple[np.ndarray, float] | None:
        """For a target and the filmed inner-lip gap (eye distances): the (4, COLUMNS) upper outer,
        upper inner, lower inner and lower outer lip v (eye distances from the mouth centre, at the
        knot columns), and how much of it to use (0..1); None: nothing known for that opening."""


@dataclass(frozen=True)
class WarpPlan:
    """Everything the renderer needs for one frame, in that frame's pixels."""

    #: crop x0, y0, x1, y1 (ints, x1/y1 exclusive)
    crop: tuple[int, int, int, int]
    #: mouth centre (x, y) and unit vectors of u (along the eyes) and v (down the face)
    origin: np.ndarray
    axis_u: np.ndarray
    axis_v: np.ndarray
    #: u of the first and last table column
    u_range: tuple[float, float]
    #: half the lip-corner distance in pixels
    half_width: float
    #: (KNOTS, COLUMNS) knot positions along v in the source and in the output
    src_knots: np.ndarray
    out_knots: np.ndarray
    #: (COLUMNS,) horizontal scale of the output about u = 0 (1 = unchanged)
    scale_u: np.ndarray
    #: (COLUMNS,) 0..1 how much of the output lip gap is synthesised mouth interior
    cavity: np.ndarray
    #: BGR 0..255 colour of the lips (cavity and teeth are derived from it)
    lip_bgr: np.ndarray
    #: outer eye-corner distance in pixels (sizes soft edges)
    iod: float


def source_gap(landmarks: np.ndarray) -> float:
    """Inner-lip gap normalised by the eye distance: the source's own mouth opening."""
    axis_u, axis_v, iod = _axes(landmarks)
    top, bottom = landmarks[INNER_CENTRE[0]], landmarks[INNER_CENTRE[1]]
    return float(max(0.0, np.dot(bottom - top, axis_v)) / iod)


def plan_warp(
    landmarks: np.ndarray,
    frame: np.ndarray,
    target_open: float,
    width: float,
    rounding: float,
    gap_range: tuple[float, float] | None = None,
    lips: LipPlacement | None = None,
) -> WarpPlan:
    """The warp that gives this face the target opening (0..1), width (-1..1), rounding (0..1).

    ``gap_range`` is the person's own (rest, open) inner-lip gap over eye distance
    from the avatar calibration; opening 0 maps to rest, 1 to open.  Without it
    the generic range (0, ``MAX_GAP_IOD``) is used.  Opening, the lower lip and
    jaw move and the upper lip a little; closing, ``lips`` (the avatar's own
    mouths, when given) puts all four lip contours where this person's lips lie
    at the target opening.
    """
    axis_u, axis_v, iod = _axes(landmarks)
    origin = (landmarks[MOUTH_CORNERS[0]] + landmarks[MOUTH_CORNERS[1]]) / 2.0
    to_face = lambda idx: _to_face(landmarks[list(idx)], origin, axis_u, axis_v)  # noqa: E731
    corners = to_face(MOUTH_CORNERS)
    half = max(2.0, float(abs(corners[1, 0] - corners[0, 0]) / 2.0))
    u_lo, u_hi = -SIDE_REACH * half, SIDE_REACH * half
    columns = np.linspace(u_lo, u_hi, COLUMNS)

    src = _source_knots(columns, to_face, iod)
    gap_now = max(float(np.dot(landmarks[INNER_CENTRE[1]] - landmarks[INNER_CENTRE[0]], axis_v)), 0.0)
    rest, opened = gap_range if gap_range is not None else (0.0, MAX_GAP_IOD)
    target_gap = rest + float(np.clip(target_open, 0.0, 1.0)) * (opened - rest)
    delta = target_gap * iod - gap_now
    # Only a closing mouth is placed: closed lips meet where this person's meet (a smile's raised
    # upper lip comes down), while placing opened lips too made the opening harder to read
    # (r with the real speaker 0.31 -> 0.27, docs/mouth-library.md)
    placed = lips(target_gap, gap_now / iod) if lips is not None and delta < 0 else None
    out = _output_knots(src, columns, half, delta, iod, placed)
    scale = _horizontal_scale(columns, half, width, rounding)
    cavity = _cavity_amount(src, out, columns, half)
    crop = _crop_box(origin, axis_u, axis_v, (u_lo, u_hi), src, out, frame.shape)
    return WarpPlan(
        crop=crop,
        origin=origin.astype(np.float32),
        axis_u=axis_u.astype(np.float32),
        axis_v=axis_v.astype(np.float32),
        u_range=(float(u_lo), float(u_hi)),
        half_width=half,
        src_knots=src.astype(np.float32),
        out_knots=out.astype(np.float32),
        scale_u=scale.astype(np.float32),
        cavity=cavity.astype(np.float32),
        lip_bgr=_lip_colour(landmarks, frame),
        iod=float(iod),
    )


def _axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    eye_vec = landmarks[EYE_OUTER[1]] - landmarks[EYE_OUTER[0]]
    iod = float(np.linalg.norm(eye_vec))
    iod = max(iod, 1.0)
    axis_u = eye_vec / iod
    axis_v = np.array([-axis_u[1], axis_u[0]])
    return axis_u, axis_v, iod


def _to_face(points: np.ndarray, origin: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray) -> np.ndarray:
    rel = points.astype(np.float64) - origin
    return np.stack([rel @ axis_u, rel @ axis_v], axis=1)


def _contour(columns: np.ndarray, points: np.ndarray) -> np.ndarray:
    """v of a landmark polyline at each column (clamped beyond its ends)."""
    order = np.argsort(points[:, 0])
    return np.interp(columns, points[order, 0], points[order, 1])


def _source_knots(columns: np.ndarray, to_face, iod: float) -> np.ndarray:
    """(KNOTS, COLUMNS) knot v's in the source, made strictly increasing down each column."""
    nose = float(to_face((NOSE_BASE,))[0, 1])
    upper_outer = _contour(columns, to_face(UPPER_OUTER))
    knots = np.stack(
        [
            # a little below the nose base: the upsampled map may reach a few pixels above its knot
            np.full_like(columns, min(nose + max(NOSE_MARGIN_IOD * iod, 3.0), float(upper_outer.min()) - 2.0)),
            upper_outer,
            _contour(columns, to_face(UPPER_INNER)),
            _contour(columns, to_face(LOWER_INNER)),
            _contour(columns, to_face(LOWER_OUTER)),
            _contour(columns, to_face(JAW)),
            np.zeros_like(columns),
        ]
    )
    knots[5] = np.maximum(knots[5], knots[4] + 0.08 * iod)
    knots[6] = knots[5].max() + BELOW_CHIN_IOD * iod
    return _increasing(knots, 0.25)


def _increasing(knots: np.ndarray, step: float) -> np.ndarray:
    """Each knot at least ``step`` px below the previous one (keeps segments invertible)."""
    out = knots.copy()
    for k in range(1, len(out)):
        out[k] = np.maximum(out[k], out[k - 1] + step)
    return out


def falloff(columns: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """1 inside ``inner``, cosine down to 0 at ``outer`` (|u| in pixels)."""
    t = np.clip((np.abs(columns) - inner) / max(outer - inner, 1e-6), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def _output_knots(src: np.ndarray, columns: np.ndarray, half: float, delta: float, iod: float,
                  placed: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """Displace the knots: the lips by ``delta`` (lower lip) or to where ``placed`` puts them, the chin
    most of the lower lip's move, the nose base and below-chin knots not at all."""
    lips = falloff(columns, LIP_FULL * half, LIP_END * half)
    lip_shift = np.stack([UPPER_OUTER_SHARE * delta * lips, UPPER_INNER_SHARE * delta * lips,
                          delta * lips, delta * lips])
    if placed is not None:
        # moving the lower lip alone up to a smile's raised upper lip closed the mouth too high
        contours, weight = placed
        to_place = (contours * iod - src[1:5]) * falloff(columns, PLACE_FULL * half, PLACE_END * half)
        lip_shift = (1.0 - weight) * lip_shift + weight * to_place
    lower = float(np.interp(0.0, columns, lip_shift[3]))
    zero = np.zeros_like(columns)
    out = src + np.vstack([zero, lip_shift, CHIN_SHARE * lower * falloff(columns, 1.0 * half, 2.2 * half), zero])
    # Closing stops where the lips meet, leaving a seam of CLOSED_SEAM_IOD (or the
    # filmed gap, if narrower): the map then stays continuous and the seam is
    # painted, so filmed teeth never show as a squeezed line.
    seam = np.minimum(CLOSED_SEAM_IOD * iod, src[3] - src[2])
    out[3] = np.maximum(out[3], out[2] + seam)
    return _increasing(out, 0.0)


def _horizontal_scale(columns: np.ndarray, half: float, width: float, rounding: float) -> np.ndarray:
    gain = WIDTH_GAIN * float(np.clip(width, -1, 1)) - ROUND_GAIN * float(np.clip(rounding, 0, 1))
    return 1.0 + gain * falloff(columns, 1.0 * half, 2.0 * half)


def _cavity_amount(src: np.ndarray, out: np.ndarray, columns: np.ndarray, half: float) -> np.ndarray:
    """Share of the output lip gap painted as mouth interior: where the filmed gap was
    stretched (it would smear) or squeezed (filmed teeth would become a white line)."""
    gap_src = src[3] - src[2]
    gap_out = out[3] - out[2]
    change = np.abs(gap_out - gap_src) / np.maximum(np.maximum(gap_out, gap_src), 1.0)
    amount = np.clip(change * 2.0, 0.0, 1.0)
    return amount * falloff(columns, 0.85 * half, 1.15 * half)


def _crop_box(origin, axis_u, axis_v, u_range, src, out, shape) -> tuple[int, int, int, int]:
    """Axis-aligned pixel box holding the whole warped region, clipped to the frame."""
    v_lo = float(min(src[0].min(), out[0].min()))
    v_hi = float(max(src[-1].max(), out[-1].max()))
    corners = np.array([[u, v] for u in u_range for v in (v_lo, v_hi)])
    pts = origin + corners[:, :1] * axis_u + corners[:, 1:] * axis_v
    height, width = shape[:2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 3
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def _lip_colour(landmarks: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Median BGR of a few points inside the lips' red."""
    height, width = frame.shape[:2]
    pts = np.array([(landmarks[a] + landmarks[b]) / 2.0 for a, b in LIP_BODY])
    xs = np.clip(np.round(pts[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.round(pts[:, 1]).astype(int), 0, height - 1)
    return np.median(frame[ys, xs].astype(np.float32), axis=0)
