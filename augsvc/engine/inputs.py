"""What :func:`~augsvc.engine.augment` is given, in the one form the engine works on.

A caller hands over a uniform batch (one (N,C,H,W) uint8 tensor), a list of (C,H,W)
tensors of any sizes, or scaled decodes (:class:`~augsvc.engine.region.ScaledSource`,
possibly of a region only), mixed freely in a list. Each becomes a :class:`Source`:
its pixels, the size of the image its parameters are drawn for, and where its pixels
lie in that image, so nothing after this module asks which kind it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.engine.region import ScaledSource
from augsvc.errors import ValidationFailed

Images = torch.Tensor | Sequence[torch.Tensor | ScaledSource]
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Source:
    """One sample's input: ``pixels`` (C,H,W) uint8; ``full_hw``, the size of the image
    its parameters are drawn for; ``to_pixels``, for a scaled decode the map from that
    image's pixel coordinates to the decoded frame's (None: the pixels are the full
    image); ``region``, for a region decode where the pixels lie in that frame (top,
    left, bottom, right), and ``frame_hw``, the frame's size (else the pixels' own)."""

    pixels: torch.Tensor
    full_hw: tuple[int, int]
    to_pixels: np.ndarray | None = None
    region: Box | None = None
    frame_hw: tuple[int, int] = (0, 0)

    @classmethod
    def of(cls, item: torch.Tensor | ScaledSource, i: int) -> Source:
        img = item if isinstance(item, torch.Tensor) else getattr(item, "pixels", None)
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 3:
            raise ValidationFailed(f"image {i}: expected a uint8 tensor (C,H,W)")
        if img.shape[0] not in (1, 3, 4) or img.shape[1] < 1 or img.shape[2] < 1:
            raise ValidationFailed(f"image {i}: shape {tuple(img.shape)} is not (1|3|4, H, W)")
        own = (int(img.shape[1]), int(img.shape[2]))
        if isinstance(item, torch.Tensor):
            return cls(img, own, frame_hw=own)
        region = getattr(item, "region", None)
        frame = own
        if region is not None:
            top, left, bottom, right = region
            if (bottom - top, right - left) != own:
                raise ValidationFailed(f"image {i}: its pixels are not the size of its region")
            frame = _hw(item.frame_hw)  # type: ignore[attr-defined]
        if item.to_pixels is None and region is None:
            return cls(img, own, frame_hw=frame)
        to_pixels = None if item.to_pixels is None else np.asarray(item.to_pixels, float)
        return cls(img, _hw(item.full_hw), to_pixels, region, frame)


def _hw(hw: Sequence[int]) -> tuple[int, int]:
    return int(hw[0]), int(hw[1])


@dataclass(frozen=True)
class Inputs:
    """A batch's sources, and the uniform tensor they came from (if they did)."""

    sources: tuple[Source, ...]
    batch: torch.Tensor | None = None

    @classmethod
    def of(cls, images: Images) -> Inputs:
        batch = images if isinstance(images, torch.Tensor) else None
        items = list(images.unbind(0)) if batch is not None else list(images)
        if not items:
            raise ValidationFailed("no images to augment")
        return cls(tuple(Source.of(item, i) for i, item in enumerate(items)), batch)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def pixels(self) -> list[torch.Tensor]:
        return [s.pixels for s in self.sources]

    @property
    def full_hw(self) -> np.ndarray:
        """(N,2): the sizes the parameters are drawn for."""
        return np.array([s.full_hw for s in self.sources], dtype=np.int64).reshape(-1, 2)

    @property
    def frame_hw(self) -> np.ndarray:
        """(N,2): the sizes of the frames the pixels lie in."""
        return np.array([s.frame_hw for s in self.sources], dtype=np.int64).reshape(-1, 2)

    @property
    def to_pixels(self) -> list[np.ndarray | None]:
        return [s.to_pixels for s in self.sources]

    @property
    def regions(self) -> list[Box | None]:
        return [s.region for s in self.sources]

    @property
    def scaled(self) -> bool:
        """Whether some sample's pixels are not its full image at full scale."""
        return any(s.to_pixels is not None for s in self.sources)

    @property
    def partial(self) -> bool:
        """Whether some sample's pixels are a region of its frame."""
        return any(s.region is not None for s in self.sources)
