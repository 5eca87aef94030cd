"""The op catalogue: one pydantic model per augmentation op.

Each model validates its parameters and normalises shorthand forms into one
canonical form (``degrees: 30`` becomes ``degrees: [-30.0, 30.0]``), so two recipes
that mean the same thing have the same canonical JSON and therefore the same digest.
Semantics follow torchvision's v2 transforms where one exists; where they differ
(hue, fused colour maths) the field description says so.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0, description="Chance the op is applied.")]
Pair = tuple[float, float]


_JSON_KINDS = {dict: "an object", list: "a list", tuple: "a list", str: "a string",
               bool: "a boolean", type(None): "null"}  # fmt: skip


def number(x: Any) -> float:
    """A finite JSON number. Booleans, numeric strings and NaN/Infinity (which Python's
    JSON and YAML parsers accept) are refused: one NaN would poison every matrix."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"expected a number, got {_JSON_KINDS.get(type(x), type(x).__name__)}")
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {x}")
    return float(x)


def _pair(v: Any) -> Any:
    """Accept [a, b] or (a, b) and return a tuple of finite floats; scalars are checked
    and left to the caller."""
    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise ValueError("expected a number or a [min, max] pair")
        return (number(v[0]), number(v[1]))
    if isinstance(v, int | float) and not isinstance(v, bool):
        number(v)
    return v


def symmetric_range(v: Any, *, name: str = "value") -> Pair:
    """A number x means [-x, x]; a pair is taken as [min, max]."""
    v = _pair(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        if v < 0:
            raise ValueError(f"{name} must be >= 0 when given as one number")
        return (-float(v), float(v))
    if not isinstance(v, tuple):
        raise ValueError("expected a number or a [min, max] pair")
    return v


def factor_range(v: Any) -> Pair:
    """A number x means [max(0, 1 - x), 1 + x], as torchvision's ColorJitter."""
    v = _pair(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        if v < 0:
            raise ValueError("must be >= 0 when given as one number")
        return (max(0.0, 1.0 - float(v)), 1.0 + float(v))
    if not isinstance(v, tuple):
        raise ValueError("expected a number or a [min, max] pair")
    return v


def ordered(v: Pair, *, lo: float | None = None, hi: float | None = None) -> Pair:
    a, b = v
    if a > b:
        raise ValueError(f"min {a} is greater than max {b}")
    if lo is not None and a < lo:
        raise ValueError(f"min {a} is below {lo}")
    if hi is not None and b > hi:
        raise ValueError(f"max {b} is above {hi}")
    return v


def positive_range(v: Any, name: str, *, hi: float | None = None) -> Pair:
    """A [min, max] pair with 0 < min <= max (<= hi when given)."""
    v = _pair(v)
    if not isinstance(v, tuple):
        raise ValueError(f"{name} must be a [min, max] pair")
    ordered(v, hi=hi)
    if v[0] <= 0:
        raise ValueError(f"{name} must be > 0")
    return v


def size_hw(v: Any) -> tuple[int, int]:
    """An int n means (n, n); a pair is (height, width). Both must be positive."""
    if isinstance(v, bool):
        raise ValueError("size must be a positive integer or [height, width]")
    if isinstance(v, int):
        v = (v, v)
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError("size must be a positive integer or [height, width]")
    h, w = v
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (h, w)):
        raise ValueError("size must hold integers")
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got [{h}, {w}]")
    if h > 16384 or w > 16384:
        raise ValueError(f"size [{h}, {w}] exceeds 16384")
    return (h, w)


class Op(BaseModel):
    """Base of every op: a name tag and a probability."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: ClassVar[Literal["geometric", "colour", "filter", "erase", "normalize"]]
    #: Ops that change the canvas size cannot be skipped per sample (the batch
    #: would no longer share one output size), so their p must be 1.
    changes_size: ClassVar[bool] = False
    p: Probability = 1.0

    @model_validator(mode="after")
    def _size_changers_always_apply(self) -> Op:
        if self.changes_size and self.p != 1.0:
            raise ValueError(
                "p must be 1 for ops that change the image size (a skipped sample would "
                "not match the batch's output size)"
            )
        return self


class Rotate(Op):
    """Rotate about the image centre by an angle drawn uniformly from ``degrees``.

    Positive angles turn counter-clockwise as displayed (torchvision and Kornia agree).
    """

    kind = "geometric"
    op: Literal["rotate"] = "rotate"
    degrees: Pair = Field(description="Number d for [-d, d], or [min, max] in degrees.")

    @field_validator("degrees", mode="before")
    @classmethod
    def _degrees(cls, v: Any) -> Pair:
        return ordered(symmetric_range(v, name="degrees"), lo=-360, hi=360)


class Affine(Op):
    """Random affine as torchvision's RandomAffine: rotation, translation, scale, shear.

    The matrix is built with Kornia's ``get_affine_matrix2d`` convention (shear first,
    then rotation and scale about the centre, then translation).
    """

    kind = "geometric"
    op: Literal["affine"] = "affine"
    degrees: Pair = Field(default=(0.0, 0.0), description="Rotation range in degrees.")
    translate: Pair = Field(
        default=(0.0, 0.0),
        description="Max |shift| as fractions of width and height: [tx, ty], each in [0, 1].",
    )
    scale: Pair = Field(default=(1.0, 1.0), description="Scale factor range [min, max] > 0.")
    shear: tuple[float, float, float, float] = Field(
        default=(0.0, 0.0, 0.0, 0.0),
        description="Shear in degrees: s for x in [-s, s]; [a, b] for x; [xa, xb, ya, yb].",
    )

    @field_validator("degrees", mode="before")
    @classmethod
    def _degrees(cls, v: Any) -> Pair:
        return ordered(symmetric_range(v, name="degrees"), lo=-360, hi=360)

    @field_validator("translate", mode="before")
    @classmethod
    def _translate(cls, v: Any) -> Pair:
        v = _pair(v)
        if not isinstance(v, tuple) or not all(0.0 <= t <= 1.0 for t in v):
            raise ValueError("translate must be [tx, ty] with each in [0, 1]")
        return v

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Pair:
        return positive_range(v, "scale")

    @field_validator("shear", mode="before")
    @classmethod
    def _shear(cls, v: Any) -> tuple[float, float, float, float]:
        if isinstance(v, list | tuple) and len(v) == 4:
            xa, xb, ya, yb = (number(x) for x in v)
            ordered((xa, xb), lo=-89, hi=89)
            ordered((ya, yb), lo=-89, hi=89)
            return (xa, xb, ya, yb)
        xa, xb = ordered(symmetric_range(v, name="shear"), lo=-89, hi=89)
        return (xa, xb, 0.0, 0.0)


class RandomResizedCrop(Op):
    """Crop a random area and aspect ratio, then resize to ``size`` (torchvision semantics:
    ten tries at a box that fits, else a centre crop clamped to ``ratio``)."""

    kind = "geometric"
    changes_size = True
    op: Literal["random_resized_crop"] = "random_resized_crop"
    size: tuple[int, int] = Field(description="Output size: n or [height, width].")
    scale: Pair = Field(default=(0.08, 1.0), description="Area fraction range, in (0, 1].")
    ratio: Pair = Field(default=(3 / 4, 4 / 3), description="Aspect ratio (w/h) range, > 0.")

    _size = field_validator("size", mode="before")(lambda cls, v: size_hw(v))

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Pair:
        return positive_range(v, "scale", hi=1.0)

    @field_validator("ratio", mode="before")
    @classmethod
    def _ratio(cls, v: Any) -> Pair:
        return positive_range(v, "ratio")


class Crop(Op):
    """Crop to ``size`` at the centre or at a uniformly random position; a canvas smaller
    than the crop is padded (with the output's padding mode)."""

    kind = "geometric"
    changes_size = True
    op: Literal["crop"] = "crop"
    size: tuple[int, int] = Field(description="Crop size: n or [height, width].")
    position: Literal["center", "random"] = "center"

    _size = field_validator("size", mode="before")(lambda cls, v: size_hw(v))


class Resize(Op):
    """Resize to ``size``: [h, w] exactly, or an int for the shorter side (aspect kept)."""

    kind = "geometric"
    changes_size = True
    op: Literal["resize"] = "resize"
    size: tuple[int, int] | int = Field(description="[height, width], or shorter side length.")

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int] | int:
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 < v <= 16384:
                raise ValueError(f"size must be in 1..16384, got {v}")
            return v
        return size_hw(v)


class Pad(Op):
    """Pad the borders: n on every side, [horizontal, vertical], or [left, top, right, bottom]."""

    kind = "geometric"
    changes_size = True
    op: Literal["pad"] = "pad"
    padding: tuple[int, int, int, int]

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, v: Any) -> tuple[int, int, int, int]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v] * 4
        if isinstance(v, list | tuple) and len(v) == 2:
            v = [v[0], v[1], v[0], v[1]]
        if not isinstance(v, list | tuple) or len(v) != 4:
            raise ValueError("padding must be n, [h, v] or [left, top, right, bottom]")
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 4096 for x in v):
            raise ValueError("padding values must be integers in 0..4096")
        return tuple(v)


class HFlip(Op):
    """Mirror left-right."""

    kind = "geometric"
    op: Literal["hflip"] = "hflip"
    p: Probability = 0.5


class VFlip(Op):
    """Mirror top-bottom."""

    kind = "geometric"
    op: Literal["vflip"] = "vflip"
    p: Probability = 0.5


class Perspective(Op):
    """Random perspective as torchvision's RandomPerspective: each corner moves inwards
    by up to ``distortion_scale`` times half the width/height."""

    kind = "geometric"
    op: Literal["perspective"] = "perspective"
    distortion_scale: float = Field(default=0.5, ge=0.0, le=1.0)
    p: Probability = 0.5


class ColorJitter(Op):
    """Brightness, contrast, saturation and hue, applied in that order as one fused
    per-sample colour matrix (clamping once at the end, as DALI's color_twist).

    brightness/contrast/saturation: x means a factor in [max(0, 1-x), 1+x], or [min, max].
    hue: h in [0, 0.5] means a shift in [-h, h] turns of the colour wheel, or [min, max];
    it rotates chroma in YIQ space (as DALI's hue), a linear stand-in for HSV hue.
    """

    kind = "colour"
    op: Literal["color_jitter"] = "color_jitter"
    brightness: Pair = (1.0, 1.0)
    contrast: Pair = (1.0, 1.0)
    saturation: Pair = (1.0, 1.0)
    hue: Pair = (0.0, 0.0)

    @field_validator("brightness", "contrast", "saturation", mode="before")
    @classmethod
    def _factor(cls, v: Any) -> Pair:
        v = ordered(factor_range(v))
        if v[0] < 0:
            raise ValueError("factors must be >= 0")
        return v

    @field_validator("hue", mode="before")
    @classmethod
    def _hue(cls, v: Any) -> Pair:
        return ordered(symmetric_range(v, name="hue"), lo=-0.5, hi=0.5)


class Grayscale(Op):
    """Replace colour by luma (ITU-R 601), keeping the channel count."""

    kind = "colour"
    op: Literal["grayscale"] = "grayscale"
    p: Probability = 0.1


class GaussianBlur(Op):
    """Gaussian blur with a per-sample sigma drawn uniformly from ``sigma``."""

    kind = "filter"
    op: Literal["gaussian_blur"] = "gaussian_blur"
    kernel_size: tuple[int, int] = Field(description="Odd size: n or [height, width].")
    sigma: Pair = (0.1, 2.0)
    p: Probability = 0.5

    @field_validator("kernel_size", mode="before")
    @classmethod
    def _kernel(cls, v: Any) -> tuple[int, int]:
        h, w = size_hw(v)
        if h % 2 == 0 or w % 2 == 0 or h > 101 or w > 101:
            raise ValueError("kernel_size must be odd and at most 101")
        return (h, w)

    @field_validator("sigma", mode="before")
    @classmethod
    def _sigma(cls, v: Any) -> Pair:
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = (number(v), number(v))
        return positive_range(v, "sigma")


class RandomErasing(Op):
    """Erase a random rectangle (torchvision's RandomErasing): area fraction from
    ``scale``, aspect ratio from ``ratio``, filled with ``value`` (0-255 per channel)."""

    kind = "erase"
    op: Literal["random_erasing"] = "random_erasing"
    scale: Pair = (0.02, 0.33)
    ratio: Pair = (0.3, 3.3)
    value: tuple[int, ...] = (0,)
    p: Probability = 0.5

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Pair:
        return positive_range(v, "scale", hi=1.0)

    @field_validator("ratio", mode="before")
    @classmethod
    def _ratio(cls, v: Any) -> Pair:
        return positive_range(v, "ratio")

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> tuple[int, ...]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, list | tuple) or len(v) not in (1, 3, 4):
            raise ValueError("value must be an int or a list of 1, 3 or 4 ints")
        if not all(isinstance(x, int) and 0 <= x <= 255 for x in v):
            raise ValueError("value entries must be integers in 0..255")
        return tuple(v)


class Normalize(Op):
    """(x/255 - mean) / std per channel; must be the last op; output becomes float32."""

    kind = "normalize"
    op: Literal["normalize"] = "normalize"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    @model_validator(mode="after")
    def _check(self) -> Normalize:
        if self.p != 1.0:
            raise ValueError("normalize cannot be random: p must be 1")
        if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3, 4):
            raise ValueError("mean and std must have the same length (1, 3 or 4)")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self


OP_MODELS: tuple[type[Op], ...] = (
    Rotate,
    Affine,
    RandomResizedCrop,
    Crop,
    Resize,
    Pad,
    HFlip,
    VFlip,
    Perspective,
    ColorJitter,
    Grayscale,
    GaussianBlur,
    RandomErasing,
    Normalize,
)

AnyOp = Annotated[
    Rotate
    | Affine
    | RandomResizedCrop
    | Crop
    | Resize
    | Pad
    | HFlip
    | VFlip
    | Perspective
    | ColorJitter
    | Grayscale
    | GaussianBlur
    | RandomErasing
    | Normalize,
    Field(discriminator="op"),
]


def op_name(model: type[Op]) -> str:
    return model.model_fields["op"].default


def catalogue() -> list[dict[str, Any]]:
    """Every op with its description, kind and JSON schema (served at GET /v1/ops)."""
    return [
        {
            "op": op_name(m),
            "kind": m.kind,
            "changes_size": m.changes_size,
            "description": " ".join((m.__doc__ or "").split()),
            "schema": m.model_json_schema(),
        }
        for m in OP_MODELS
    ]
