"""The region-first warp: each sample's first warp stage reads only its source region.

The region (``engine.region``) is planned from the drawn matrix before any pixel is
touched, so inputs of any size meet after this warp: samples are grouped by what it
makes (the channels and the first warp's output size), never by input size, and cut
into the device's chunks. Each chunk's regions are cropped, uploaded (one packed copy
on a device), converted to the output channels and warped by ``kernels.warp``.
"""

from __future__ import annotations

import numpy as np
import torch

from augsvc.engine import region
from augsvc.engine.inputs import Box, Inputs
from augsvc.maths import kernels
from augsvc.maths.device import ExecutionPolicy
from augsvc.maths.transfer import upload_packed
from augsvc.recipes import OutputOptions


class FirstWarp:
    """The first warp of one batch: its regions and sampling maps, planned at once in
    numpy (the same 3x3 maths per sample as alone: each matrix of a stack is its own
    product, without a per-call cost), then :meth:`__call__` per chunk."""

    def __init__(
        self,
        first: dict[str, np.ndarray],
        inputs: Inputs,
        channels: list[int],
        opts: OutputOptions,
        policy: ExecutionPolicy,
    ) -> None:
        self._opts = opts
        self._policy = policy
        self._inputs = inputs
        self._channels = channels
        self.out_hw: np.ndarray = first["out_hw"]
        self.regions = region.plan_regions(
            first["matrix"],
            self.out_hw,
            inputs.frame_hw,
            mode=opts.interpolation,
            padding_mode=opts.padding_mode,
            antialias=opts.antialias,
        )
        check_decoded(self.regions.boxes, inputs.regions)
        boxes, factors = self.regions.boxes, self.regions.factors
        shrunk_hw = -(-(boxes[:, 2:] - boxes[:, :2]) // factors[:, None])
        self._planned = kernels.plan_warp(
            self.regions.matrices,
            factors,
            shrunk_hw,
            self.out_hw,
            padding_mode=opts.padding_mode,
            fill=opts.fill,
        )

    def chunks(self) -> list[list[int]]:
        """Rows grouped by (channels, output size), each group cut into chunks."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, hw in enumerate(self.out_hw.tolist()):
            groups.setdefault((self._channels[i], *hw), []).append(i)
        pixels = np.prod(self.out_hw, axis=1)
        return [
            chunk for rows in groups.values() for chunk in self._policy.split(rows, pixels[rows])
        ]

    def __call__(self, rows: list[int]) -> torch.Tensor:
        """The chunk's warped samples (float, in its order), all of one output size."""
        crops = upload_packed([self._crop(i) for i in rows], self._policy.device)
        srcs = [
            kernels.convert_channels(s, self._channels[i]) for i, s in zip(rows, crops, strict=True)
        ]
        opts = self._opts
        return kernels.warp(
            srcs,
            self.regions.matrices[rows],
            tuple(self.out_hw[rows[0]].tolist()),
            mode=opts.interpolation,
            padding_mode=opts.padding_mode,
            fill=opts.fill,
            planned=self._planned.take(rows),
        )

    def _crop(self, i: int) -> torch.Tensor:
        top, left, bottom, right = self.regions.boxes[i].tolist()
        held = self._inputs.sources[i].region
        y, x = (0, 0) if held is None else held[:2]
        return self._inputs.sources[i].pixels[None, :, top - y : bottom - y, left - x : right - x]


def check_decoded(boxes: np.ndarray, decoded: list[Box | None]) -> None:
    """A region decode holds only the box planned for its sample; a warp that reaches
    outside it would read pixels never decoded, so that is a planning bug, not a
    request to serve."""
    for i, held in enumerate(decoded):
        if held is None:
            continue
        top, left, bottom, right = boxes[i].tolist()
        if top < held[0] or left < held[1] or bottom > held[2] or right > held[3]:
            raise RuntimeError(
                f"sample {i} reads rows {top}:{bottom}, columns {left}:{right} of a region "
                f"decode that holds only {held}: the decode was planned for other draws"
            )
