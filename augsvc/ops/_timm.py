"""timm's augmentation policy strings: the grammar, and timm's op tables written out.

``rand-m9-mstd0.5-inc1`` (RandAugment) and ``augmix-m5-w4-d2`` (AugMix) are parsed as
timm's ``rand_augment_transform`` and ``augment_and_mix_transform`` parse them, with
the hyper-parameters timm's ``create_transform`` passes (translate_pct 0.45 for
RandAugment, 0.3 for AugMix). A section timm would silently skip (no digits) or does
not know is refused, naming it. ``trivialaugment`` (which timm does not define) is
taken as torchvision's TrivialAugmentWide.

timm draws a level per op call: the magnitude, plus Gaussian noise of std ``mstd``
(uniform in [0, magnitude] when mstd is above 100, AugMix's default), clipped to
[0, mmax] (10 unless given), then turns it into the op's argument with its
``level_to_arg`` function; :class:`TimmEntry` writes each of those functions as
numbers so the canonical form pins them.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from augsvc.errors import field_errors
from augsvc.ops._composite import OP_DOCUMENT, parse_op
from augsvc.ops.base import Canvas, Op

LEVEL_DENOM = 10.0


class TimmEntry(BaseModel):
    """One timm op: its augsvc op, the draw slot its argument goes to, and timm's
    ``level_to_arg`` as ``v = level / 10 * scale`` (truncated when ``whole``, capped at
    ``cap``, negated when ``negate``) + ``offset``, times a random sign when ``signed``,
    + ``base``, at least ``lo``; then ``degrees(atan(v))`` for a shear factor, times
    the width or height for a fraction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    op: Annotated[SerializeAsAny[Op], WithJsonSchema(OP_DOCUMENT)]
    slot: int | None = None
    scale: float = 0.0
    whole: bool = False
    cap: float | None = None
    negate: bool = False
    offset: float = 0.0
    signed: bool = False
    base: float = 0.0
    lo: float | None = None
    atan: bool = False
    of: Literal["width", "height"] | None = None

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> Op:
        return parse_op(v)

    def values(self, level: np.ndarray, signs: np.ndarray, canvas: Canvas) -> np.ndarray:
        v = (level / LEVEL_DENOM) * self.scale
        if self.whole:
            v = np.trunc(v)
        if self.cap is not None:
            v = np.minimum(v, self.cap)
        if self.negate:
            v = -v
        v = v + self.offset
        if self.signed:
            v = v * signs
        v = v + self.base
        if self.lo is not None:
            v = np.maximum(v, self.lo)
        if self.atan:
            v = np.degrees(np.arctan(v))
        if self.of is not None:
            v = v * (canvas[1] if self.of == "width" else canvas[0])
        return v


def _op(doc: dict[str, Any], p: float) -> Op:
    return parse_op({**doc, "p": p})


def entry(name: str, p: float, translate_pct: float) -> TimmEntry:
    """timm's op ``name`` (a key of its NAME_TO_OP) applied with probability ``p``."""
    enhance = {"Color": "saturation", "Contrast": "contrast", "Brightness": "brightness",
               "Sharpness": "sharpness"}  # fmt: skip
    base_name = name.removesuffix("Increasing")
    if base_name in enhance:
        op = _op({"op": enhance[base_name], "factor": 1}, p)
        if name.endswith("Increasing"):  # max(0.1, 1 +- 0.9 * level / 10)
            return TimmEntry(name=name, op=op, slot=1, scale=0.9, signed=True, base=1.0, lo=0.1)
        return TimmEntry(name=name, op=op, slot=1, scale=1.8, offset=0.1)
    corner = [0, 0]
    table: dict[str, TimmEntry] = {
        "AutoContrast": TimmEntry(name=name, op=_op({"op": "autocontrast"}, p)),
        "Equalize": TimmEntry(name=name, op=_op({"op": "equalize"}, p)),
        "Invert": TimmEntry(name=name, op=_op({"op": "invert"}, p)),
        "Rotate": TimmEntry(name=name, op=_op({"op": "rotate", "degrees": 0}, p), slot=1,
                            scale=30.0, signed=True),
        "Posterize": TimmEntry(name=name, op=_op({"op": "posterize", "bits": 8}, p), slot=1,
                               scale=4.0, whole=True),
        "PosterizeIncreasing": TimmEntry(name=name, op=_op({"op": "posterize", "bits": 8}, p),
                                         slot=1, scale=4.0, whole=True, negate=True, offset=4),
        "Solarize": TimmEntry(name=name, op=_op({"op": "solarize", "threshold": 255}, p),
                              slot=1, scale=256.0, whole=True, cap=256),
        "SolarizeIncreasing": TimmEntry(name=name,
                                        op=_op({"op": "solarize", "threshold": 255}, p), slot=1,
                                        scale=256.0, whole=True, cap=256, negate=True,
                                        offset=256),
        "SolarizeAdd": TimmEntry(name=name, op=_op({"op": "solarize_add", "add": 0}, p), slot=1,
                                 scale=110.0, whole=True, cap=128),
        "ShearX": TimmEntry(name=name, op=_op({"op": "shear", "x": 0, "center": corner}, p),
                            slot=1, scale=0.3, signed=True, atan=True),
        "ShearY": TimmEntry(name=name, op=_op({"op": "shear", "y": 0, "center": corner}, p),
                            slot=2, scale=0.3, signed=True, atan=True),
        # PIL's (1, 0, t, ...) reads x + t: the image moves by -t, hence the negative scale.
        "TranslateXRel": TimmEntry(name=name, op=_op({"op": "translate"}, p), slot=1,
                                   scale=-translate_pct, signed=True, of="width"),
        "TranslateYRel": TimmEntry(name=name, op=_op({"op": "translate"}, p), slot=2,
                                   scale=-translate_pct, signed=True, of="height"),
    }  # fmt: skip
    return table[name]


RAND_TRANSFORMS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize",
                   "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness", "ShearX",
                   "ShearY", "TranslateXRel", "TranslateYRel")  # fmt: skip
RAND_INCREASING = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                   "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                   "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
                   "TranslateXRel", "TranslateYRel")  # fmt: skip
#: timm's experimental weights (``-tweights``): chosen by weight, without replacement.
RAND_WEIGHTS = {"Rotate": 3, "ShearX": 2, "ShearY": 2, "TranslateXRel": 1, "TranslateYRel": 1,
                "ColorIncreasing": 0.25, "SharpnessIncreasing": 0.25, "AutoContrast": 0.25,
                "SolarizeIncreasing": 0.05, "SolarizeAdd": 0.05, "ContrastIncreasing": 0.05,
                "BrightnessIncreasing": 0.05, "Equalize": 0.05, "PosterizeIncreasing": 0.05,
                "Invert": 0.05}  # fmt: skip
AUGMIX_TRANSFORMS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing",
                     "BrightnessIncreasing", "SharpnessIncreasing", "Equalize", "Rotate",
                     "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY",
                     "TranslateXRel", "TranslateYRel")  # fmt: skip


class TimmPolicy(BaseModel):
    """A timm policy string, parsed: the settings timm would build its transform with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rand", "augmix", "trivialaugment"]
    magnitude: float = Field(default=LEVEL_DENOM, ge=0, le=100)
    magnitude_noise: Literal["none", "gauss", "uniform"] = "none"
    magnitude_std: float = Field(default=0.0, ge=0, le=100)
    magnitude_max: float = Field(default=LEVEL_DENOM, ge=0, le=100)
    num_layers: int = Field(default=2, ge=0, le=16)
    prob: float = Field(default=0.5, ge=0, le=1)
    increasing: bool = False
    weighted: bool = False
    width: int = Field(default=3, ge=1, le=16)
    depth: int = Field(default=-1, ge=-1, le=10)
    alpha: float = Field(default=1.0, gt=0, le=100)
    blended: bool = False


_SECTION = re.compile(r"(\D+)(\d.*)")


def _number(token: str, value: str, kind: type) -> Any:
    try:
        v = kind(value)
    except ValueError:
        raise ValueError(f"section {token!r}: {value!r} is not a number") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"section {token!r}: {value!r} is not a finite number")
    return v


def parse(config: str) -> TimmPolicy:
    """A timm config string -> its settings; ValueError naming a bad section."""
    if not isinstance(config, str) or not config:
        raise ValueError("expected a timm policy string such as 'rand-m9-mstd0.5-inc1'")
    head, *sections = config.split("-")
    if head == "trivialaugment" and not sections:
        return TimmPolicy(kind="trivialaugment")
    if head not in ("rand", "augmix"):
        raise ValueError(
            f"unknown policy {head!r}: expected 'rand-...', 'augmix-...' or 'trivialaugment'"
            " (timm's AutoAugment names are served by auto_augment)"
        )
    settings: dict[str, Any] = {"kind": head}
    if head == "augmix":
        settings |= {"magnitude": 3.0, "prob": 1.0, "magnitude_noise": "uniform"}
    for token in sections:
        if head == "rand" and token.startswith("t"):
            if token != "tweights":
                raise ValueError(
                    f"unknown section {token!r}: the transform sets supported are 'tweights'"
                )
            settings["weighted"] = True
            continue
        match = _SECTION.fullmatch(token)
        if match is None:
            raise ValueError(f"unknown section {token!r}")
        key, value = match.groups()
        if key == "mstd":
            std = _number(token, value, float)
            if std > 100:
                settings |= {"magnitude_noise": "uniform", "magnitude_std": 0.0}
            else:
                settings |= {
                    "magnitude_noise": "gauss" if std > 0 else "none",
                    "magnitude_std": std,
                }
        elif key == "m":
            settings["magnitude"] = float(_number(token, value, int))
        elif head == "rand" and key == "mmax":
            settings["magnitude_max"] = float(_number(token, value, int))
        elif head == "rand" and key == "inc":
            settings["increasing"] = bool(_number(token, value, int))
        elif head == "rand" and key == "n":
            settings["num_layers"] = _number(token, value, int)
        elif head == "rand" and key == "p":
            settings["prob"] = _number(token, value, float)
        elif head == "augmix" and key == "w":
            settings["width"] = _number(token, value, int)
        elif head == "augmix" and key == "d":
            settings["depth"] = _number(token, value, int)
        elif head == "augmix" and key == "a":
            settings["alpha"] = _number(token, value, float)
        elif head == "augmix" and key == "b":
            settings["blended"] = bool(_number(token, value, int))
        else:
            raise ValueError(f"unknown section {token!r}")
    if settings.get("depth") == 0:
        raise ValueError("section 'd0': depth must be -1 (1 to 3, drawn) or 1..10")
    try:
        return TimmPolicy(**settings)
    except ValidationError as exc:
        err = field_errors(exc)[0]
        raise ValueError(f"{err.loc[0]}: {err.msg}") from None


def table(policy: TimmPolicy) -> tuple[TimmEntry, ...]:
    if policy.kind == "augmix":
        return tuple(entry(n, 1.0, 0.3) for n in AUGMIX_TRANSFORMS)
    if policy.weighted:
        return tuple(entry(n, policy.prob, 0.45) for n in RAND_WEIGHTS)
    names = RAND_INCREASING if policy.increasing else RAND_TRANSFORMS
    return tuple(entry(n, policy.prob, 0.45) for n in names)
