"""Pixel kernels: pure functions over image tensors (N,C,H,W), values in [0, 255].

They execute parameters that were already drawn and composed; nothing here draws
a random number. Kornia's functional API does the resampling and filtering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from kornia.geometry.conversions import normalize_homography
from kornia.geometry.transform import warp_affine, warp_perspective

from augsvc.maths import geometry, varlen_warp
from augsvc.maths.device import execution
from augsvc.maths.transfer import upload_params

SHRINK_LIMIT = 0.5  # warps that shrink more than 2x are pre-shrunk first


def shrink_factor(matrix: np.ndarray, height, width) -> np.ndarray:
    """Per-sample box-filter factor: the smallest power of two after which each warp
    shrinks by at most 2x, but never more than its least shrunk direction shrinks.
    ``height`` and ``width`` are one size for every sample, or one per sample.

    A bilinear tap pair reads every source pixel while its warp shrinks by 2x or less;
    beyond that it skips pixels and aliases, as a factor rounded down did (a 3x shrink
    left unfiltered, a 7x one filtered by 3 and warped 2.3x). Powers of two are what a
    JPEG decoder's DCT scaling does (1/2, 1/4, 1/8), so a planned decode does exactly
    part of the box filter, and no sample needs its whole-resolution pixels shrunk by
    3, 5 or 7. A factor beyond an axis's own shrink (a tall image squeezed only in
    height) would make the warp enlarge that axis and sample before its first pixel's
    centre, reading the padding into the output's edge."""
    n = len(matrix)
    h = np.broadcast_to(np.asarray(height, dtype=np.int64), (n,))
    w = np.broadcast_to(np.asarray(width, dtype=np.int64), (n,))
    scales = geometry.linear_scales(matrix, h.astype(np.float64), w.astype(np.float64))
    # A degenerate matrix (a centre at a perspective's horizon) has no finite scale:
    # it is not pre-shrunk.
    scales = np.where(np.isfinite(scales), scales, 1.0)
    need = np.maximum(SHRINK_LIMIT / np.maximum(scales[:, 0], 1e-9), 1.0)
    # The tolerances keep exact powers of two despite float error in the scales.
    k = np.exp2(np.ceil(np.log2(need) - 1e-9))
    least = np.maximum(1.0 / np.maximum(scales[:, 1], 1e-9), 1.0)  # least shrunk axis
    most = np.minimum(least, np.maximum(1, np.minimum(h, w) // 2))  # and the image's size
    return np.minimum(k, np.exp2(np.floor(np.log2(most) + 1e-9))).astype(np.int64)


def prescale(k: int) -> np.ndarray:
    """Maps pixel coordinates of a k-times box-filtered image back to the original."""
    return np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1]], dtype=np.float64)


def box_shrink(x: torch.Tensor, k: int) -> torch.Tensor:
    """The mean of every k x k block as float, ceil(h / k) x ceil(w / k) of them.

    A partial block at the bottom or right edge is completed by repeating the last row
    or column, as a JPEG encoder pads its blocks, so a DCT-scaled decode holds the
    same values there. Dropping it (``avg_pool2d``'s floor) left a warp that reads to
    the edge sampling padding instead: a dark last row or column.

    Whole blocks are ``F.avg_pool2d(x.float(), k)``, to the bit (:func:`_block_means`);
    the edge strips, k rows or columns at most, are padded and pooled in float."""
    if k == 1:
        return x.float()
    h, w = x.shape[-2:]
    whole = x[..., : h // k * k, : w // k * k]
    if h % k == 0 and w % k == 0:
        return _block_means(whole, k)
    out = torch.empty((*x.shape[:-2], -(-h // k), -(-w // k)), device=x.device)
    if h >= k and w >= k:
        out[..., : h // k, : w // k] = _block_means(whole, k)

    def padded_means(strip: torch.Tensor) -> torch.Tensor:
        rows, cols = strip.shape[-2:]
        edges = (0, -cols % k, 0, -rows % k)
        return F.avg_pool2d(F.pad(strip.float(), edges, mode="replicate"), k)

    if h % k:
        out[..., -1:, :] = padded_means(x[..., h // k * k :, :])
    if w % k and h >= k:
        out[..., : h // k, -1:] = padded_means(x[..., : h // k * k, w // k * k :])
    return out


def _block_means(x: torch.Tensor, k: int) -> torch.Tensor:
    """``F.avg_pool2d(x.float(), k)`` to the bit, for an image a multiple of k in size.

    A uint8 image is summed in integers straight from its bytes (k row-strided adds,
    then k column-strided ones) and only the k*k times smaller result becomes float:
    the sums are exact, so dividing them gives avg_pool2d's values, without first
    writing a float copy of every source pixel (which cost most of a large image's time).
    """
    if x.dtype != torch.uint8:
        return F.avg_pool2d(x.float(), k)
    if execution(x.device).host_sums:
        return _numpy_block_means(x, k)
    return _torch_block_means(x, k)


def _numpy_block_means(x: torch.Tensor, k: int) -> torch.Tensor:
    """On the CPU numpy does the adds: its widening add reads uint8 and writes the
    wider type in one vectorised pass, where torch's mixed-type in-place add does not."""
    if x.shape[1] > 1 and x.stride(1) == 1:  # channels interleaved: a decoder's memory
        # Rows summed along the (N, H, W, C) memory, the k times smaller result made
        # planar once, its columns summed there: every add reads contiguous runs.
        rows = _kth_sums(x.permute(0, 2, 3, 1).numpy(), k, axis=1, dtype=_wide(k))
        sums = _kth_sums(np.ascontiguousarray(rows.transpose(0, 3, 1, 2)), k, axis=3)
    else:
        sums = _kth_sums(_kth_sums(x.numpy(), k, axis=-2, dtype=_wide(k)), k, axis=-1)
    return torch.from_numpy(sums).float().div_(k * k)


def _torch_block_means(x: torch.Tensor, k: int) -> torch.Tensor:
    """On a device, torch's strided adds into the narrowest signed type that holds
    the sums (torch has no unsigned 16-bit arithmetic on every device)."""
    wide = torch.int16 if k * k * 255 <= torch.iinfo(torch.int16).max else torch.int32
    h = x.shape[-2]
    rows = x[..., 0:h:k, :].to(wide)
    for i in range(1, k):
        rows += x[..., i:h:k, :]
    total = rows[..., 0::k].clone()
    for i in range(1, k):
        total += rows[..., i::k]
    return total.float().div_(k * k)


def _wide(k: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned type that holds the sum of k * k bytes."""
    return np.uint16 if k * k * 255 <= np.iinfo(np.uint16).max else np.uint32


def _kth_sums(x: np.ndarray, k: int, axis: int, dtype: type | None = None) -> np.ndarray:
    """Exact sums of every run of k along ``axis`` (a multiple of k long, k >= 2), in
    ``dtype`` (the input's when None)."""

    def every_kth(start: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, None, k)
        return x[tuple(index)]

    total = np.add(every_kth(0), every_kth(1), dtype=dtype)
    for i in range(2, k):
        np.add(total, every_kth(i), out=total)
    return total


def padding(padding_mode: str, fill: Sequence[int]) -> str:
    """What a recipe's padding means to a sampler: ``fill`` for constant padding with a
    colour (only Kornia's warps take one), ``zeros`` for constant padding with none,
    else ``border`` or ``reflection`` as they are."""
    if padding_mode == "constant":
        return "fill" if any(fill) else "zeros"
    return padding_mode


def warp(
    images: torch.Tensor | Sequence[torch.Tensor],
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    *,
    mode: str,
    padding_mode: str,
    fill: Sequence[int],
    antialias: bool = False,
    planned: Planned | None = None,
) -> torch.Tensor:
    """Resample every sample (uint8 or float) through its forward matrix straight to
    ``out_hw``: one resampling for a whole run of geometric ops. The one warp entry point.

    ``images`` is a batch (N,C,H,W) whose ``matrix`` (N,3,3) maps its pixels; with
    ``antialias``, samples whose matrix shrinks by more than 2x are first box filtered
    by a power of two (their matrix adjusted to match), so the single warp does not
    alias and fewer pixels are converted to float. Affine and perspective samples are
    warped apart: the two paths differ in their last bits, and a sample must take the
    same path whatever its batch-mates.

    With ``planned`` (:func:`plan_warp`) the pre-shrink was planned already
    (``engine.region``): ``images`` are N sources (1,C,h_i,w_i) of any sizes on one
    device, each box filtered by its factor, and ``matrix`` maps the shrunk pixels. On
    a device the affine samples are gathered in one pass (``varlen_warp``); the rest,
    and every sample on the CPU, warp one by one."""
    if planned is not None:
        return _warp_planned(list(images), planned, matrix, out_hw, mode, padding_mode, fill)
    assert isinstance(images, torch.Tensor)
    return _warp_batch(images, matrix, out_hw, mode, padding(padding_mode, fill), fill, antialias)


def _warp_batch(
    src: torch.Tensor,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    mode: str,
    pad: str,
    fill: Sequence[int],
    antialias: bool,
) -> torch.Tensor:
    n, c, h, w = src.shape
    factors = shrink_factor(matrix, h, w) if antialias else np.ones(n, dtype=np.int64)
    affine = geometry.affine_rows(matrix)
    out = None
    for k, flat in sorted(set(zip(factors.tolist(), affine.tolist(), strict=True))):
        rows = np.flatnonzero((factors == k) & (affine == flat))
        part = src if len(rows) == n else src[torch.as_tensor(rows, device=src.device)]
        part = box_shrink(part, int(k))
        m = matrix[rows]
        if k > 1:
            m = m @ prescale(int(k))
        warped = _resample(part, m, out_hw, mode, pad, fill)
        if len(rows) == n:
            return warped
        if out is None:
            out = warped.new_empty((n, c, *out_hw))
        out[torch.as_tensor(rows, device=src.device)] = warped
    assert out is not None
    return out


@dataclass(frozen=True)
class Planned:
    """A planned warp's per-sample answers: the pre-shrink ``factors`` (N,), the
    sampling maps ``thetas`` (N,2,3) float32 of the shrunk sizes, and ``one_pass``
    (N,): an affine matrix and no fill colour, so one ``grid_sample`` of its map. Each
    sample's answers are its own matrix's, so its path never depends on its batch-mates."""

    factors: np.ndarray
    thetas: np.ndarray
    one_pass: np.ndarray

    def take(self, rows: np.ndarray | list[int]) -> Planned:
        return Planned(self.factors[rows], self.thetas[rows], self.one_pass[rows])


def plan_warp(
    matrix: np.ndarray,
    factors: np.ndarray,
    shrunk_hw: np.ndarray,
    out_hw: tuple[int, int] | np.ndarray,
    *,
    padding_mode: str,
    fill: Sequence[int],
) -> Planned:
    """:class:`Planned` for a whole batch at once, in numpy: the sampling maps are
    :func:`sampling_thetas` (float64 until the final cast), microseconds per sample
    where Kornia's normalisation costs a fraction of a millisecond."""
    return Planned(
        factors=np.asarray(factors, dtype=np.int64).reshape(-1),
        thetas=sampling_thetas(matrix, shrunk_hw, out_hw),
        one_pass=geometry.affine_rows(matrix) & (padding(padding_mode, fill) != "fill"),
    )


def _warp_planned(
    sources: list[torch.Tensor],
    planned: Planned,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    mode: str,
    padding_mode: str,
    fill: Sequence[int],
) -> torch.Tensor:
    """Planned sources of any sizes: one gather pass for a device's affine samples,
    the rest one by one."""
    pad = padding(padding_mode, fill)
    factors, one_pass = planned.factors, planned.one_pass
    policy = execution(sources[0].device)
    gathered = one_pass & (policy.gathers_regions and varlen_warp.supported(mode, pad))
    joint, alone = np.flatnonzero(gathered), np.flatnonzero(~gathered)
    parts: list[torch.Tensor] = [torch.empty(0)] * len(sources)
    if len(joint):
        # A source with nothing to shrink stays uint8 until the pass's own conversion.
        shrunk = [
            sources[i] if factors[i] == 1 else box_shrink(sources[i], int(factors[i]))
            for i in joint.tolist()
        ]
        out = varlen_warp.warp_varlen(shrunk, matrix[joint], out_hw, mode=mode, padding_mode=pad)
        if len(joint) == len(sources):
            return out
        for m, i in enumerate(joint.tolist()):
            parts[i] = out[m : m + 1]
    uploaded = upload_params({"t": planned.thetas[alone]}, policy.device)["t"]
    for m, i in enumerate(alone.tolist()):
        x = box_shrink(sources[i], int(factors[i]))
        theta = uploaded[m : m + 1] if one_pass[i] else None
        parts[i] = _resample(x, matrix[i : i + 1], out_hw, mode, pad, fill, theta)
    return torch.cat(parts)


def warp_source(
    src: torch.Tensor,
    factor: int,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    *,
    mode: str,
    padding_mode: str,
    fill: Sequence[int],
) -> torch.Tensor:
    """:func:`warp` of one planned source (1,C,h,w): shrunk by ``factor``, then warped
    through ``matrix`` (shrunk-source pixel -> output pixel)."""
    shrunk_hw = -(-np.array([src.shape[-2:]], dtype=np.int64) // factor)
    planned = plan_warp(
        matrix, np.array([factor]), shrunk_hw, out_hw, padding_mode=padding_mode, fill=fill
    )
    return warp(
        [src], matrix, out_hw, mode=mode, padding_mode=padding_mode, fill=fill, planned=planned
    )


def _resample(
    x: torch.Tensor,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    mode: str,
    pad: str,
    fill: Sequence[int],
    theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """One resampling of samples that share a path: Kornia's warp for a fill colour or
    a perspective, else ``grid_sample`` over :func:`affine_grid` of the sampling map.
    A caller that passes ``theta`` has found the samples affine without a fill colour
    (so the per-call checks are skipped); else the map is Kornia's maths
    (:func:`sampling_theta`)."""
    if theta is None and (pad == "fill" or not geometry.is_affine(matrix)):
        m = torch.as_tensor(matrix, dtype=torch.float32, device=x.device)
        affine = geometry.is_affine(matrix)
        fn = warp_affine if affine else warp_perspective
        return fn(
            x,
            m[:, :2] if affine else m,
            out_hw,
            mode=mode,
            padding_mode=pad,
            align_corners=True,
            fill_value=channel_values(fill, x.shape[1], x) if pad == "fill" else None,
        )
    if theta is None:
        theta = sampling_theta(matrix, x.shape[-2:], out_hw)
    grid = affine_grid(theta.to(x.device, x.dtype), out_hw)
    return F.grid_sample(x, grid, mode=mode, padding_mode=pad, align_corners=True)


def _normalising(hw: np.ndarray) -> np.ndarray:
    """(N,3,3) pixel -> [-1, 1] maps as Kornia's ``normal_transform_pixel`` (align_corners):
    pixel centres 0 and size - 1 go to -1 and 1; a one-pixel axis maps its pixel to 0."""
    m = geometry.eye(len(hw))
    for axis, col in ((1, 0), (0, 1)):
        size = hw[:, axis].astype(np.float64)
        single = size == 1
        m[:, col, col] = np.where(single, 1.0, 2.0 / np.where(single, 2.0, size - 1.0))
        m[:, col, 2] = np.where(single, 0.0, -1.0)
    return m


def sampling_thetas(
    matrix: np.ndarray, src_hw: np.ndarray, out_hw: tuple[int, int] | np.ndarray
) -> np.ndarray:
    """(N,2,3) float32 output-to-source maps in normalised coordinates, per sample with
    its own source size ``src_hw`` (N,2) and output size (one, or (N,2)):
    :func:`sampling_theta`'s maths, in numpy."""
    n = len(matrix)
    out = np.broadcast_to(np.asarray(out_hw, dtype=np.int64), (n, 2))
    theta = (
        _normalising(np.asarray(src_hw)) @ np.linalg.inv(matrix) @ np.linalg.inv(_normalising(out))
    )
    return np.ascontiguousarray(theta[:, :2], dtype=np.float32)


@lru_cache(maxsize=64)
def _stream_axes(h: int, w: int, device: torch.device, dtype: torch.dtype, stream: int):
    return _axes(h, w, device, dtype)


def _axes(h: int, w: int, device: torch.device, dtype: torch.dtype):
    """Normalised output pixel centres, as Kornia's meshgrid: -1..1, and 0 for an axis
    of one pixel (where ``normalize_homography`` puts that pixel)."""
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype) if w > 1 else torch.zeros(1)
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype) if h > 1 else torch.zeros(1)
    return xs.to(device, dtype).view(1, 1, w), ys.to(device, dtype).view(1, h, 1)


def affine_grid(theta: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """``F.affine_grid(theta, ..., align_corners=True)`` built by broadcasting two
    rank-1 axes: identical values for a fraction of the CPU of its (HW,3)x(3,2) matmul,
    which has too small an inner dimension to run efficiently."""
    n = theta.shape[0]
    h, w = out_hw
    xs, ys = _stream_axes(h, w, theta.device, theta.dtype, execution(theta.device).stream_key())
    t = theta.reshape(n, 6, 1, 1)
    grid = torch.empty((n, h, w, 2), dtype=theta.dtype, device=theta.device)
    torch.add(t[:, 2] + t[:, 1] * ys, t[:, 0] * xs, out=grid[..., 0])
    torch.add(t[:, 5] + t[:, 4] * ys, t[:, 3] * xs, out=grid[..., 1])
    return grid


def sampling_theta(
    matrix: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """The (N,2,3) output-to-source map in normalised coordinates that grid_sample wants.

    Same maths as Kornia's ``warp_affine`` (``normalize_homography``, then the
    inverse), done in float64; :func:`affine_grid` then builds the grid from it.
    """
    m = torch.as_tensor(matrix, dtype=torch.float64)
    dst_from_src = normalize_homography(m, tuple(src_hw), tuple(out_hw))
    return torch.linalg.inv(dst_from_src)[:, :2].float()


def channel_values(values: tuple[int, ...], c: int, like: torch.Tensor) -> torch.Tensor:
    """Per-channel constants for ``c`` channels from 1, 3 or 4 given values: one value
    broadcasts, RGB gains an opaque alpha, colour becomes luma for grey images."""
    if len(values) == 1:
        v = values * c
    elif c == 1:
        v = (round(0.299 * values[0] + 0.587 * values[1] + 0.114 * values[2]),)
    else:
        v = (*values[:3], values[3] if len(values) == 4 else 255)[:c]
    return torch.tensor(v, dtype=like.dtype, device=like.device)


def blur(x: torch.Tensor, applied: np.ndarray, sigma: np.ndarray, kernel_size: tuple[int, int]):
    """Gaussian blur (reflected borders) of the applied samples, each with its own sigma.

    One Kornia call per sample: a batched call's grouped convolution rounds differently
    with the batch size, and a sample must not depend on its batch. Along an axis
    shorter than the kernel, the kernel is cut to 2 * size - 1 taps, the most that
    reflection can pad (so a one-pixel axis is not blurred).
    """
    rows = np.flatnonzero(applied)
    if len(rows) == 0:
        return x
    h, w = x.shape[-2:]
    kernel = (min(kernel_size[0], 2 * h - 1), min(kernel_size[1], 2 * w - 1))
    x = x.clone()
    if execution(x.device).packed_uploads:  # every sigma in one upload, sliced there
        both = np.repeat(np.asarray(sigma, dtype=np.float64)[rows, None], 2, axis=1)
        sigmas = upload_params({"sigma": both}, x.device)["sigma"].to(x.dtype)
        for m, i in enumerate(rows.tolist()):
            x[i : i + 1] = gaussian_blur2d(
                x[i : i + 1], kernel, sigmas[m : m + 1], border_type="reflect"
            )
        return x
    for i in rows.tolist():
        s = torch.tensor([[sigma[i], sigma[i]]], dtype=x.dtype, device=x.device)
        x[i : i + 1] = gaussian_blur2d(x[i : i + 1], kernel, s, border_type="reflect")
    return x


def erase(x: torch.Tensor, applied: np.ndarray, boxes: np.ndarray, value: tuple[int, ...]):
    """Fill each applied sample's box (top, left, height, width) with ``value``."""
    if not applied.any():
        return x
    n, c, h, w = x.shape
    b = torch.as_tensor(np.where(applied[:, None], boxes, 0), dtype=torch.int64, device=x.device)
    top, left, bh, bw = (b[:, i].view(n, 1, 1) for i in range(4))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    mask = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)
    fill = channel_values(value, c, x)
    return torch.where(mask[:, None], fill.view(1, c, 1, 1), x)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x / 255 - mean) / std, per channel (a single mean/std broadcasts).

    ``x`` is clamped to [0, 255] first (a warp's interpolation can overshoot), so the
    result lies within ((0 - mean) / std, (1 - mean) / std) exactly."""
    c = x.shape[1]
    m = torch.tensor(mean if len(mean) == c else mean[:1] * c, dtype=x.dtype, device=x.device)
    s = torch.tensor(std if len(std) == c else std[:1] * c, dtype=x.dtype, device=x.device)
    return (x.clamp(0, 255) / 255.0 - m.view(1, c, 1, 1)) / s.view(1, c, 1, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1]: clamped like uint8 output, since bilinear weights can sum to a
    hair over 1 and bicubic overshoots edges (255 / 255 is exactly 1)."""
    return x.float().clamp(0, 255) / 255.0


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N,C,H,W) to ``channels``: grey is replicated, alpha dropped or made
    opaque, colour reduced to ITU-R 601 luma."""
    c = x.shape[1]
    if c == channels:
        return x
    if channels == 1:
        rgb = x[:, :3].float()
        luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
        return luma.round_().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    rgb = x[:, :1].expand(-1, 3, -1, -1) if c in (1, 2) else x[:, :3]
    if channels == 3:
        return rgb.contiguous()
    alpha = x[:, -1:] if c == 4 else torch.full_like(x[:, :1], 255)
    return torch.cat([rgb, alpha], dim=1)
