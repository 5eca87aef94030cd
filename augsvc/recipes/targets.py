"""The recipe's ``targets`` options: how boxes, keypoints and masks follow the image.

They live in the recipe (not in each request) because they decide which boxes a sample
keeps, which is part of what the sample is: two replicas, or a stream resumed elsewhere,
must drop the same boxes. The block is optional and only enters the canonical form when
given, so every recipe written before it keeps its digest and its samples.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from augsvc.ops.fields import MAX_SIDE, Number

MAX_FLIP_PAIRS = 256
#: Largest keypoint index a flip pair may name: an image carries at most 100,000
#: keypoints (the request's limit), and the index reaches numpy, which overflows on
#: an integer past 64 bits.
MAX_KEYPOINT_INDEX = 99_999
KeypointIndex = Annotated[int, Field(ge=0, le=MAX_KEYPOINT_INDEX)]


class TargetOptions(BaseModel):
    """Filtering and moving rules for the targets sent with images."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_visibility: Number = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Drop a box when less than this fraction of its moved area lies in "
        "the output (boxes wholly outside are always dropped).",
    )
    min_area: Number = Field(
        default=0.0,
        ge=0.0,
        le=float(MAX_SIDE * MAX_SIDE),
        description="Drop a box whose visible area, in output pixels, is below this.",
    )
    clip: bool = Field(default=True, description="Clip surviving boxes to the output canvas.")
    box_method: Literal["corners", "ellipse"] = Field(
        default="corners",
        description="corners: the box enclosing the four moved corners (exact for flips, "
        "crops, resizes, 90-degree turns); ellipse: the box enclosing the moved inscribed "
        "ellipse (grows less under rotation).",
    )
    flip_pairs: tuple[tuple[KeypointIndex, KeypointIndex], ...] = Field(
        default=(),
        max_length=MAX_FLIP_PAIRS,
        description="Keypoint index pairs [left, right] that swap when a sample is mirrored.",
    )
    ignore_index: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="The mask label written where the warp reads outside the source.",
    )

    erasing_counts_occlusion: bool = Field(
        default=False,
        description="random_erasing leaves boxes where they are; with this, the erased "
        "part of a box no longer counts as visible for min_visibility and min_area "
        "(random_erasing must then come after every geometric op).",
    )

    @field_validator("flip_pairs", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> Any:
        if not isinstance(v, list | tuple):
            return v
        seen: set[int] = set()
        for pair in v:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                a, b = pair
                if isinstance(a, int) and isinstance(b, int):
                    if a < 0 or b < 0 or a == b:
                        raise ValueError(f"pair {list(pair)}: two different indices >= 0")
                    if a in seen or b in seen:
                        raise ValueError(f"pair {list(pair)}: an index appears in two pairs")
                    seen.update((a, b))
        return v
