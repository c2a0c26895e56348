"""Apply warp plans to a batch of frames with torch (GPU when present).

Only a crop around each lower face is touched.  Each crop's pixels are mapped
back into the source through the plan's piecewise-linear knots (one backward
map, sampled with ``grid_sample``), then the lip gap is painted with a mouth
interior where the mouth opens wider than it was filmed.  Pixels whose map is
the identity and which get no paint are copied from the input, so everything
outside the lower face (everything above the nose base in particular) is
byte-identical.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .builtin_geometry import WarpPlan

#: teeth colour before mixing with the lips (BGR), and how visible the teeth band is
_TEETH_BGR = (205.0, 215.0, 222.0)
_TEETH_ALPHA = 0.65
#: cavity brightness relative to the lips: edges, deepest point
_CAVITY_EDGE = 0.55
_CAVITY_DEEP = 0.28
#: the warp map is computed every _STRIDE pixels and upsampled
_STRIDE = 2
#: how much of the detail bilinear sampling takes from a pixel sampled between source pixels is given back
#: (1.0: all of it, to first order); measured: mouth-crop sharpness 0.64-0.84 of the filmed -> about 1.0
DETAIL_RESTORE = 1.0
#: most crop pixels rendered at once (bounds memory: ~150 bytes a pixel)
_MAX_PIXELS = 4_000_000


def warp_batch(frames: np.ndarray, plans: Sequence[tuple[int, WarpPlan]], device: torch.device, *,
               in_place: bool = False) -> np.ndarray:
    """Return a copy of ``frames`` (``in_place``: ``frames`` itself) with each planned face (frame
    index, plan) re-animated.  Each group's crops are cut before any is written back, and a frame
    belongs to one plan, so drawing into ``frames`` reads no pixel this call has written."""
    out = frames if in_place else frames.copy()
    jobs = [(b, plan) for b, plan in plans if min(_crop_size(plan)) > 1]
    for group in _groups(jobs):
        _warp_group(frames, out, group, device)
    return out


def _groups(jobs: list[tuple[int, WarpPlan]]) -> Iterator[list[tuple[int, WarpPlan]]]:
    """Split a batch so padded crops stay under _MAX_PIXELS (4K close-ups stay bounded)."""
    group: list[tuple[int, WarpPlan]] = []
    height = width = 0
    for job in jobs:
        h, w = _crop_size(job[1])
        if group and (len(group) + 1) * max(height, h) * max(width, w) > _MAX_PIXELS:
            yield group
            group, height, width = [], 0, 0
        group.append(job)
        height, width = max(height, h), max(width, w)
    if group:
        yield group


def _warp_group(frames: np.ndarray, out: np.ndarray, jobs: list[tuple[int, WarpPlan]], device: torch.device) -> None:
    height = max(_crop_size(plan)[0] for _, plan in jobs)
    width = max(_crop_size(plan)[1] for _, plan in jobs)
    crops = np.stack([_padded_crop(frames[b], plan, height, width) for b, plan in jobs])
    # torch's thread count is the daemon's, set once at start-up (runtime.py): one thread on the CPU
    with torch.inference_mode():
        result = _render(torch.from_numpy(crops).to(device), [p for _, p in jobs], device)
    result = result.cpu().numpy()
    for (b, plan), crop in zip(jobs, result):
        x0, y0, x1, y1 = plan.crop
        out[b, y0:y1, x0:x1] = crop[: y1 - y0, : x1 - x0]


def _crop_size(plan: WarpPlan) -> tuple[int, int]:
    x0, y0, x1, y1 = plan.crop
    return y1 - y0, x1 - x0


def _padded_crop(frame: np.ndarray, plan: WarpPlan, height: int, width: int) -> np.ndarray:
    x0, y0, x1, y1 = plan.crop
    crop = frame[y0:y1, x0:x1]
    return np.pad(crop, ((0, height - crop.shape[0]), (0, width - crop.shape[1]), (0, 0)), mode="edge")


def _tables(plans: Sequence[WarpPlan], device: torch.device) -> dict[str, torch.Tensor]:
    def stack(values) -> torch.Tensor:
        return torch.from_numpy(np.stack(values).astype(np.float32)).to(device)

    return {
        "crop_xy": stack([np.array(p.crop[:2], dtype=np.float32) for p in plans]),
        "origin": stack([p.origin for p in plans]),
        "axis_u": stack([p.axis_u for p in plans]),
        "axis_v": stack([p.axis_v for p in plans]),
        "u_range": stack([np.array(p.u_range) for p in plans]),
        "src": stack([p.src_knots for p in plans]),
        "out": stack([p.out_knots for p in plans]),
        "scale": stack([p.scale_u for p in plans]),
        "cavity": stack([p.cavity for p in plans]),
        "lip": stack([p.lip_bgr for p in plans]),
        "iod": stack([np.array(p.iod) for p in plans]),
        "half": stack([np.array(p.half_width) for p in plans]),
    }


def _render(crops: torch.Tensor, plans: Sequence[WarpPlan], device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 crops → re-animated crops, same shape."""
    t = _tables(plans, device)
    height, width = crops.shape[1:3]
    # The map and the paint are smooth, so they are computed on a grid of every
    # _STRIDE-th pixel and upsampled: a quarter of the arithmetic, same look.
    rows = (height - 1 + _STRIDE - 1) // _STRIDE + 1
    cols = (width - 1 + _STRIDE - 1) // _STRIDE + 1
    ys = torch.arange(rows, device=device, dtype=torch.float32) * _STRIDE
    xs = torch.arange(cols, device=device, dtype=torch.float32) * _STRIDE
    coarse = _coarse_fields(ys[None, :, None], xs[None, None, :], t)
    fine = F.interpolate(
        coarse, size=((rows - 1) * _STRIDE + 1, (cols - 1) * _STRIDE + 1), mode="bilinear", align_corners=True
    )[:, :, :height, :width]
    dx, dy, alpha, paint = fine[:, 0], fine[:, 1], fine[:, 2], fine[:, 3:]

    image = crops.permute(0, 3, 1, 2).float()
    gy = torch.arange(height, device=device, dtype=torch.float32)[None, :, None] + dy
    gx = torch.arange(width, device=device, dtype=torch.float32)[None, None, :] + dx
    grid = torch.stack([gx * (2.0 / max(width - 1, 1)) - 1.0, gy * (2.0 / max(height - 1, 1)) - 1.0], dim=-1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    warped = _restore_detail(warped, dx, dy)
    result = torch.lerp(warped, paint, alpha[:, None])
    moved = (dx.abs() > 1e-4) | (dy.abs() > 1e-4) | (alpha > 0)
    result = torch.where(moved[:, None], result, image)
    return result.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _restore_detail(warped: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Give back the fine detail bilinear sampling took from the moved pixels.

    A pixel sampled at fraction f between two source pixels is their weighted
    mean: a blur, strongest at f = 0.5 and none at whole-pixel offsets.  An
    opened mouth moves the lower face by fractions of a pixel, so without this
    the lips and chin came out visibly softer than the filmed face (mouth-crop
    sharpness 0.64-0.84 of the source's on the shared clips).  The lost
    detail is put back as an unsharp mask weighted by 4 f (1 - f), the
    bilinear filter's loss at the finest scale (grid_sample has no
    Lanczos; bicubic gave back less than half of it at 2.5x the cost)."""
    fx, fy = dx.frac().abs(), dy.frac().abs()
    loss = (fx * (1 - fx)).add_(fy * (1 - fy)).mul_(2.0 * DETAIL_RESTORE)[:, None]
    kernel = torch.tensor([1.0, 2.0, 1.0], device=warped.device)
    kernel = (kernel[:, None] * kernel[None, :]) / 16.0
    channels = warped.shape[1]
    padded = F.pad(warped, (1, 1, 1, 1), mode="replicate")
    if padded.device.type == "cpu":
        # torch's CPU depthwise convolution on NCHW took ~60 % of the builtin engine's render
        # (50 ms a 9-crop batch on one thread); on channels-last it runs the oneDNN kernel,
        # 10x faster with the same bytes out (tests/engines/test_builtin_warp.py)
        padded = padded.contiguous(memory_format=torch.channels_last)
    detail = F.conv2d(padded, kernel.expand(channels, 1, 3, 3), groups=channels)
    # in place: the batch's full-size temporaries bound the memory per pixel
    detail.neg_().add_(warped).mul_(loss)
    return warped.add_(detail)


def _coarse_fields(ys: torch.Tensor, xs: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N, 6, rows, cols): backward offsets dx, dy, interior alpha and BGR paint."""
    # Pixel positions in the face frame (u along the eyes, v down the face).
    rx = xs + (t["crop_xy"][:, 0] - t["origin"][:, 0])[:, None, None]
    ry = ys + (t["crop_xy"][:, 1] - t["origin"][:, 1])[:, None, None]
    au, av = t["axis_u"][:, :, None, None], t["axis_v"][:, :, None, None]
    u = rx * au[:, 0] + ry * au[:, 1]
    v = rx * av[:, 0] + ry * av[:, 1]
    column = _column_reader(u, t["u_range"], t["src"].shape[-1])
    src, out = column(t["src"]), column(t["out"])
    dv = _piecewise_offset(v, src, out)
    du = _horizontal_offset(u, v, column(t["scale"][:, None])[:, 0], out)
    dx = du * au[:, 0] + dv * av[:, 0]
    dy = du * au[:, 1] + dv * av[:, 1]
    alpha, paint = _mouth_interior(u, v, out, column(t["cavity"][:, None])[:, 0], t)
    return torch.cat([dx[:, None], dy[:, None], alpha[:, None], paint], dim=1)


def _column_reader(u: torch.Tensor, u_range: torch.Tensor, columns: int):
    """Linear interpolation of per-column tables (N, K, C) at every pixel's u → (N, K, H, W)."""
    lo, hi = u_range[:, 0, None, None], u_range[:, 1, None, None]
    pos = ((u - lo) / (hi - lo).clamp_min(1e-6) * (columns - 1)).clamp(0, columns - 1)
    left = pos.floor().long().clamp(max=columns - 2)
    frac = (pos - left.float())[:, None]
    n, height, width = u.shape

    def read(table: torch.Tensor) -> torch.Tensor:
        k = table.shape[1]
        idx = left.reshape(n, 1, -1).expand(n, k, -1)
        a = torch.gather(table, 2, idx).reshape(n, k, height, width)
        b = torch.gather(table, 2, idx + 1).reshape(n, k, height, width)
        return a + (b - a) * frac

    return read


def _piecewise_offset(v: torch.Tensor, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Backward vertical offset: output v → source v through the knots, identity outside them."""
    offset = torch.zeros_like(v)
    for k in range(src.shape[1] - 1):
        out_len = out[:, k + 1] - out[:, k]
        src_len = src[:, k + 1] - src[:, k]
        # A zero-length output segment is a step: content there is removed (the mouth closed).
        step = ((v - out[:, k]) / out_len.clamp_min(1e-3)).clamp(0.0, 1.0)
        offset = offset + step * (src_len - out_len)
    return offset


def _horizontal_offset(u: torch.Tensor, v: torch.Tensor, scale: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Widen or narrow the lips about the mouth centre, fading out above the lips and at the chin."""
    top = ((v - out[:, 0]) / (out[:, 1] - out[:, 0]).clamp_min(1e-3)).clamp(0, 1)
    bottom = ((out[:, 5] - v) / (out[:, 5] - out[:, 4]).clamp_min(1e-3)).clamp(0, 1)
    effective = 1.0 + (scale - 1.0) * top * bottom
    return u / effective - u


def _mouth_interior(
    u: torch.Tensor, v: torch.Tensor, out: torch.Tensor, amount: torch.Tensor, t: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha and colour of the synthesised mouth interior (dark cavity, soft upper-teeth band)."""
    top, bottom = out[:, 2], out[:, 3]
    gap = (bottom - top).clamp_min(0.0)
    iod = t["iod"][:, None, None]
    feather = (0.02 * iod).clamp_min(1.0)
    # A closed mouth still gets a thin, soft lip line: it hides where the map
    # jumps over the filmed gap (teeth squeezed to a line would show).
    half_band = torch.maximum(gap / 2, 0.008 * iod) + 0.5 * feather
    inside = ((half_band - (v - (top + bottom) / 2).abs()) / feather + 0.5).clamp(0, 1)
    alpha = inside * amount

    depth = ((v - top) / gap.clamp_min(1.0)).clamp(0, 1)
    shade = _CAVITY_EDGE - (_CAVITY_EDGE - _CAVITY_DEEP) * torch.sin(depth * torch.pi)
    lip = t["lip"][:, :, None, None]
    cavity = lip * shade[:, None]
    teeth_height = torch.minimum(0.3 * gap, 0.055 * iod).clamp_min(1.0)
    half = t["half"][:, None, None]
    across = (1.0 - ((u.abs() / half - 0.45) / 0.4).clamp(0, 1)) ** 2
    # opaque just under the upper lip, a crisp lower edge (a soft one reads as smear)
    down = (1.0 - ((v - top) / teeth_height).clamp(0, 1) ** 3).clamp(0, 1)
    # teeth show only once the lips are clearly apart (no white line on a narrow gap)
    visible = ((gap - 0.025 * iod) / (0.06 * iod)).clamp(0, 1)
    teeth_w = (_TEETH_ALPHA * across * down * visible)[:, None]
    # faint gaps between incisors (~0.1 eye distance wide), so the band reads as teeth
    gaps = (0.5 + 0.5 * torch.cos(2 * torch.pi * u / (0.1 * iod))) ** 6
    teeth = (0.85 * torch.tensor(_TEETH_BGR, device=u.device)[None, :, None, None] + 0.15 * lip) * (
        1.0 - 0.18 * gaps[:, None]
    )
    paint = cavity * (1 - teeth_w) + teeth * teeth_w
    return alpha, paint
