"""The recipe document: an ordered list of ops plus output options.

``parse_recipe`` is the one entry point from untrusted JSON. Each op is validated by
the class the registry holds for its ``op`` name, and pydantic's errors become
:class:`~augsvc.errors.InvalidRecipe` whose field errors name the op index and field
(``ops[2].degrees``), which is what a person fixing a recipe needs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from augsvc.errors import FieldError, InvalidRecipe, field_errors, format_loc
from augsvc.ops import GeometricOp, Loc, Occluder, Op, acting, parse_op
from augsvc.ops.fields import PixelInput, SizeInput, pixel_values, size_hw
from augsvc.recipes.targets import TargetOptions

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
        default=3,
        description="3 (the default): every sample leaves as RGB (grey replicated, alpha "
        "dropped), so a folder that mixes grey, colour and RGBA files streams as one "
        "tensor, as torchvision's ImageFolder loader hands it over. 1 or 4: every sample "
        "converted to that count (colour to ITU-R 601 luma, alpha made opaque). auto: "
        "each sample keeps its own channel count (1, 3 or 4), whatever its batch-mates; "
        "a safetensors response or stream frame then needs one count across the batch "
        "(422 naming output.channels otherwise). Records stored while auto was the "
        "default name auto in their canonical form and keep it.",
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

    @field_validator("size", mode="before", json_schema_input_type=SizeInput | None)
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int] | None:
        return None if v is None else size_hw(v)

    @field_validator("fill", mode="before", json_schema_input_type=PixelInput)
    @classmethod
    def _fill(cls, v: Any) -> tuple[int, ...]:
        return pixel_values(v, "fill")


class Recipe(BaseModel):
    """An augmentation recipe: ``{"ops": [...], "output": {...}}``. Build one with
    :func:`parse_recipe`, which validates each op by its registered class."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ops: tuple[SerializeAsAny[Op], ...] = Field(max_length=MAX_OPS)
    output: OutputOptions = OutputOptions()
    targets: TargetOptions | None = Field(
        default=None,
        description="How boxes, keypoints and masks sent with the images follow them "
        "(defaults apply when absent).",
    )

    @model_validator(mode="after")
    def _occlusion_after_geometry(self) -> Recipe:
        if self.targets is not None and self.targets.erasing_counts_occlusion:
            refused = occlusion_out_of_order(self.ops)
            if refused is not None:
                raise _field_error(*refused)
        return self

    @property
    def target_options(self) -> TargetOptions:
        return self.targets or TargetOptions()

    @model_validator(mode="after")
    def _terminal_op_is_last(self) -> Recipe:
        for i, op in enumerate(self.ops[:-1]):
            if op.terminal:
                raise ValueError(f"{op.name()} must be the last op (found at ops[{i}])")
        return self

    @property
    def out_dtype(self) -> str:
        """float32 when asked for or when the recipe normalises."""
        if self.ops and self.ops[-1].terminal:
            return "float32"
        return self.output.dtype


def occlusion_out_of_order(ops: tuple[Op, ...]) -> tuple[Loc, str] | None:
    """Where an occluding op would not be the last thing that moves pixels, as (field
    path of the occluder, why), or None.

    An occluder's rectangles count against boxes in output pixels, which they are only
    when no op that moves pixels comes after it. A combinator or policy is taken at
    its position in the recipe, as moving pixels if a member does and occluding if a
    member does; one holding both is refused, since in its listed (or drawn) order the
    occluder may act before the warp (the plan hoisting a composite's geometric members
    ahead is its own choice, not the recipe's)."""
    first: Loc | None = None
    for i, op in enumerate(ops):
        parts = [(("ops", i, *loc), part) for loc, part in acting(op)]
        occluders = [loc for loc, part in parts if isinstance(part, Occluder)]
        movers = [loc for loc, part in parts if isinstance(part, GeometricOp)]
        if occluders and movers:
            return occluders[0], (
                f"targets.erasing_counts_occlusion: {format_loc(occluders[0])} occludes and "
                f"is chosen per sample with {format_loc(movers[0])}, which moves pixels "
                "(an occluding op must follow every op that moves pixels)"
            )
        if movers and first is not None:
            return first, (
                "targets.erasing_counts_occlusion needs every occluding op after every op "
                f"that moves pixels ({format_loc(first)} comes before {format_loc(movers[0])})"
            )
        if occluders and first is None:
            first = occluders[0]
    return None


def _field_error(loc: Loc, msg: str) -> ValidationError:
    """A validation error at ``loc`` (a model validator's own errors have none), so the
    422 names the op at fault, a combinator's member included."""
    error = PydanticCustomError("value_error", "{msg}", {"msg": msg})
    return ValidationError.from_exception_data(
        "Recipe", [InitErrorDetails(type=error, loc=loc, input=None)]
    )


def _parse_ops(raw: Any, errors: list[FieldError]) -> Any:
    """Op instances for a list of op documents (errors collected); anything else is
    returned as it is, for the recipe model to refuse."""
    if not isinstance(raw, list | tuple):
        return raw
    if len(raw) > MAX_OPS:
        errors.append(FieldError(("ops",), f"at most {MAX_OPS} ops, got {len(raw)}"))
        return ()
    ops = []
    for index, item in enumerate(raw):
        try:
            ops.append(parse_op(item))
        except ValidationError as exc:
            errors.extend(field_errors(exc, ("ops", index)))
        except ValueError as exc:
            errors.append(FieldError(("ops", index), str(exc)))
    return tuple(ops)


def parse_recipe(document: Any) -> Recipe:
    """Validate an untrusted recipe document, raising InvalidRecipe naming every bad field."""
    if not isinstance(document, dict):
        raise InvalidRecipe("a recipe must be a JSON object with an 'ops' list")
    errors: list[FieldError] = []
    if "ops" in document:
        document = {**document, "ops": _parse_ops(document["ops"], errors)}
    recipe = None
    try:
        recipe = Recipe.model_validate(document)
    except ValidationError as exc:
        errors.extend(field_errors(exc))
    if errors or recipe is None:
        detail = "; ".join(f"{e.path}: {e.msg}" for e in errors[:5])
        raise InvalidRecipe(detail, errors=errors)
    return recipe
