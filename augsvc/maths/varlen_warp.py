"""Many sources of different sizes warped to one output size in one pass, for a device.

A batch's first warp reads each sample's own source region, whose size is the sample's:
warped one at a time they cost a few kernel launches each, hundreds per batch. Here the
regions lie one after another in one flat buffer with an (offset, height, width) table,
and bilinear or nearest sampling gathers every output pixel of every sample from it at
once, in each sample's own pixel coordinates. No padded canvas: a canvas sized by the
largest batch-mate would put every sample's coordinates through a normalisation that
depends on its batch, and its last bits with it. Every output pixel is computed from
its own sample's values alone, so a sample's result never depends on its batch.

It is ``grid_sample(align_corners=True)``'s sampling, with zeros or border padding,
written as gathers; the values agree with the per-sample path to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from augsvc.maths.transfer import upload_array, upload_params

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border")


def supported(mode: str, padding: str) -> bool:
    """Whether :func:`warp_varlen` does what the per-sample warp would do for an affine
    matrix, ``padding`` as ``kernels.padding`` derives it."""
    return mode in MODES and padding in PADDINGS


def warp_varlen(
    sources: Sequence[torch.Tensor],
    matrices: np.ndarray,
    out_hw: tuple[int, int],
    *,
    mode: str,
    padding_mode: str,
) -> torch.Tensor:
    """Through ``kernels.warp``, which decides when this pass applies: warp each
    (1, C, h_i, w_i) source (uint8 or float, one device, one C) through its
    affine forward matrix (source pixel -> output pixel, (N, 3, 3)) to float32
    (N, C, oh, ow)."""
    device = sources[0].device
    n, c = len(sources), sources[0].shape[1]
    oh, ow = out_hw
    hw = np.array([s.shape[-2:] for s in sources], dtype=np.int64)
    sizes = c * hw[:, 0] * hw[:, 1]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = torch.cat([s.reshape(-1) for s in sources]).float()
    table = upload_array(np.stack([offsets, hw[:, 0], hw[:, 1]], axis=1), device)
    inverse = np.linalg.inv(matrices)[:, :2].reshape(n, 6)  # output pixel -> source pixel
    coeffs = upload_params({"inverse": inverse}, device)["inverse"]
    offset, height, width = (table[:, i].view(n, 1, 1) for i in range(3))
    k = coeffs.view(n, 6, 1, 1)
    xs = torch.arange(ow, device=device, dtype=torch.float32).view(1, 1, ow)
    ys = torch.arange(oh, device=device, dtype=torch.float32).view(1, oh, 1)
    sx = k[:, 0] * xs + k[:, 1] * ys + k[:, 2]  # (N, oh, ow)
    sy = k[:, 3] * xs + k[:, 4] * ys + k[:, 5]
    if padding_mode == "border":
        sx = torch.minimum(sx.clamp(min=0), (width - 1).float())
        sy = torch.minimum(sy.clamp(min=0), (height - 1).float())
    plane = (height * width).view(n, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1) * plane

    def read(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Values at integer positions (N, oh, ow), zero outside each source."""
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        index = offset + y.clamp(min=0) * width + x.clamp(min=0)
        index = torch.where(inside, index, offset)  # any in-bounds element, then zeroed
        values = flat[(index.unsqueeze(1) + channel).clamp(max=flat.numel() - 1)]
        return values * inside.unsqueeze(1)

    if mode == "nearest":
        return read(torch.round(sx).long(), torch.round(sy).long())
    x0, y0 = torch.floor(sx), torch.floor(sy)
    wx, wy = (sx - x0).unsqueeze(1), (sy - y0).unsqueeze(1)
    x0, y0 = x0.long(), y0.long()
    top = read(x0, y0) * (1 - wx) + read(x0 + 1, y0) * wx
    bottom = read(x0, y0 + 1) * (1 - wx) + read(x0 + 1, y0 + 1) * wx
    return top * (1 - wy) + bottom * wy
