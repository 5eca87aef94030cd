"""The recipe document: an ordered list of ops plus output options.

``parse_recipe`` is the one entry point from untrusted JSON; it turns pydantic's
errors into :class:`~augsvc.errors.InvalidRecipe` whose field errors name the op
index and field (``ops[2].degrees``), which is what a person fixing a recipe needs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from augsvc.errors import FieldError, InvalidRecipe
from augsvc.recipes.ops import AnyOp, Normalize, size_hw

MAX_OPS = 64


class OutputOptions(BaseModel):
    """How the batch leaves the engine."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    size: tuple[int, int] | None = Field(
        default=None,
        description="[height, width]: a final resize so every sample has this size.",
    )
    dtype: Literal["uint8", "float32"] = Field(
        default="uint8",
        description="uint8 (0-255) or float32: [0, 1], or after normalize "
        "((0 - mean)/std, (1 - mean)/std) per channel.",
    )
    channels: Literal["auto", 1, 3, 4] = Field(
        default="auto",
        description="auto: each sample keeps its own channel count (1, 3 or 4), whatever "
        "its batch-mates; a safetensors response or stream frame then needs one count "
        "across the batch (422 naming output.channels otherwise). 1, 3 or 4: every "
        "sample is converted (grey replicated, alpha dropped or made opaque, colour to "
        "ITU-R 601 luma).",
    )
    interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    padding_mode: Literal["constant", "border", "reflection"] = Field(
        default="constant", description="What the warp samples outside the source image."
    )
    fill: tuple[int, ...] = Field(
        default=(0,), description="Constant padding value(s), 0-255 (1, 3 or 4 values)."
    )
    antialias: bool = Field(
        default=True,
        description="Pre-shrink a sample's source when its warp shrinks by more than 2x.",
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int] | None:
        return None if v is None else size_hw(v)

    @field_validator("fill", mode="before")
    @classmethod
    def _fill(cls, v: Any) -> tuple[int, ...]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, list | tuple) or len(v) not in (1, 3, 4):
            raise ValueError("fill must be an int or a list of 1, 3 or 4 ints")
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in v):
            raise ValueError("fill entries must be integers in 0..255")
        return tuple(v)


class Recipe(BaseModel):
    """An augmentation recipe: ``{"ops": [...], "output": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ops: tuple[AnyOp, ...] = Field(max_length=MAX_OPS)
    output: OutputOptions = OutputOptions()

    @model_validator(mode="after")
    def _normalize_is_last(self) -> Recipe:
        for i, op in enumerate(self.ops[:-1]):
            if isinstance(op, Normalize):
                raise ValueError(f"normalize must be the last op (found at ops[{i}])")
        return self

    @property
    def out_dtype(self) -> str:
        """float32 when asked for or when the recipe normalises."""
        if self.ops and isinstance(self.ops[-1], Normalize):
            return "float32"
        return self.output.dtype


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        loc = list(err["loc"])
        # A discriminated union adds the tag ("rotate") after the op index; drop it so
        # the path reads ops[2].degrees, as the user wrote it.
        if (
            len(loc) >= 3
            and loc[0] == "ops"
            and isinstance(loc[1], int)
            and isinstance(loc[2], str)
        ):
            loc.pop(2)
        msg = err["msg"].removeprefix("Value error, ")
        errors.append(FieldError(tuple(loc), msg))
    return errors


def format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"


def parse_recipe(document: Any) -> Recipe:
    """Validate an untrusted recipe document, raising InvalidRecipe naming every bad field."""
    if not isinstance(document, dict):
        raise InvalidRecipe("a recipe must be a JSON object with an 'ops' list")
    try:
        return Recipe.model_validate(document)
    except ValidationError as exc:
        errors = _field_errors(exc)
        detail = "; ".join(f"{format_loc(e.loc)}: {e.msg}" for e in errors[:5])
        raise InvalidRecipe(detail, errors=errors) from None
