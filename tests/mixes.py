"""Hypothesis strategies for batches that mix channel counts, sizes and file formats,
and for random recipes; plus the per-sample reference they are checked against.

The reference for every property is the same: a sample augmented *alone* by the
engine, with the key it had in the batch. A batch (in-process, multipart, safetensors
or a stream frame) must hold exactly those bytes, whatever its other images are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from augsvc.codec import decode_image, probe_image
from augsvc.engine import Plan, augment
from augsvc.pipeline.decode import plan_decode
from tests import imagegen

#: Sizes (height, width) that stress the engine: single pixels and one-pixel lines.
EDGE_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (1, 300), (300, 1), (2, 3))

#: (Pillow format, mode) -> channels after decoding; each format only with the modes
#: it can hold (JPEG, GIF and WebP have no alpha-with-grey, GIF no alpha at all here).
FILE_KINDS: dict[tuple[str, str], int] = {
    ("JPEG", "L"): 1,
    ("JPEG", "RGB"): 3,
    ("PNG", "L"): 1,
    ("PNG", "RGB"): 3,
    ("PNG", "RGBA"): 4,
    ("PNG", "LA"): 4,
    ("WEBP", "RGB"): 3,
    ("WEBP", "RGBA"): 4,
    ("GIF", "L"): 1,
    ("GIF", "P"): 3,
    ("TIFF", "L"): 1,
    ("TIFF", "RGB"): 3,
    ("TIFF", "RGBA"): 4,
}
SUFFIX = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tif"}
MAX_PIXELS = 10**7


@st.composite
def sizes(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> list[tuple[int, int]]:
    """A batch's sizes drawn from a pool of one to three sizes, so equal sizes (with
    different channel counts) are common, and edge sizes come up often."""
    size = st.one_of(st.sampled_from(EDGE_SIZES), st.tuples(st.integers(1, 40), st.integers(1, 40)))
    pool = draw(st.lists(size, min_size=1, max_size=3, unique=True))
    return draw(st.lists(st.sampled_from(pool), min_size=min_size, max_size=max_size))


def random_image(channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """uint8 (C, H, W): a smooth picture (so colour ops have structure to act on)."""
    rgba = imagegen.smooth_array(width, height, 4, seed)
    return torch.from_numpy(np.moveaxis(rgba[..., :channels], -1, 0).copy())


@st.composite
def tensor_batches(draw: st.DrawFn) -> list[torch.Tensor]:
    """In-process inputs: (C, H, W) tensors mixing C in {1, 3, 4} and sizes."""
    shapes = draw(sizes())
    channels = draw(
        st.lists(st.sampled_from([1, 3, 4]), min_size=len(shapes), max_size=len(shapes))
    )
    seed = draw(st.integers(0, 2**16))
    return [
        random_image(c, h, w, seed + i)
        for i, (c, (h, w)) in enumerate(zip(channels, shapes, strict=True))
    ]


@st.composite
def files(draw: st.DrawFn, min_size: int = 1, max_size: int = 6) -> list[tuple[str, bytes]]:
    """Real image files (name, bytes) written by Pillow, mixing formats, modes and sizes."""
    shapes = draw(sizes(min_size, max_size))
    kinds = draw(
        st.lists(st.sampled_from(sorted(FILE_KINDS)), min_size=len(shapes), max_size=len(shapes))
    )
    seed = draw(st.integers(0, 2**16))
    out = []
    for i, ((fmt, mode), (h, w)) in enumerate(zip(kinds, shapes, strict=True)):
        data = imagegen.image_bytes(fmt, w, h, mode, seed=seed + i)
        out.append((f"{i:03d}-{mode}.{SUFFIX[fmt]}", data))
    return out


def decode(name: str, data: bytes) -> torch.Tensor:
    return decode_image(data, max_pixels=MAX_PIXELS, name=name)


# --- recipes ------------------------------------------------------------------------------

small = st.integers(1, 24)
unit = st.floats(0.0, 1.0)


def _ops() -> st.SearchStrategy[dict[str, Any]]:
    geometric = [
        st.builds(lambda d: {"op": "rotate", "degrees": d}, st.floats(0, 180)),
        st.builds(
            lambda d, t, s, sh: {
                "op": "affine",
                "degrees": d,
                "translate": [t, t],
                "scale": sorted(s),
                "shear": sh,
            },
            st.floats(0, 45),
            st.floats(0, 0.3),
            st.lists(st.floats(0.5, 1.5), min_size=2, max_size=2),
            st.floats(0, 20),
        ),
        st.builds(lambda p: {"op": "hflip", "p": p}, unit),
        st.builds(lambda p: {"op": "vflip", "p": p}, unit),
        st.builds(
            lambda d, p: {"op": "perspective", "distortion_scale": d, "p": p},
            st.floats(0, 1),
            unit,
        ),
        st.builds(
            lambda h, w, pos: {"op": "crop", "size": [h, w], "position": pos},
            small,
            small,
            st.sampled_from(["center", "random"]),
        ),
        st.builds(
            lambda h, w: {"op": "random_resized_crop", "size": [h, w], "scale": [0.3, 1.0]},
            small,
            small,
        ),
        st.builds(lambda h, w: {"op": "resize", "size": [h, w]}, small, small),
        st.builds(lambda s: {"op": "resize", "size": s}, st.integers(1, 6)),
        st.builds(lambda n: {"op": "pad", "padding": n}, st.integers(0, 4)),
    ]
    colour = [
        st.builds(
            lambda b, c, s, h: {
                "op": "color_jitter",
                "brightness": b,
                "contrast": c,
                "saturation": s,
                "hue": h,
            },
            st.floats(0, 0.6),
            st.floats(0, 0.6),
            st.floats(0, 0.6),
            st.floats(0, 0.5),
        ),
        st.builds(lambda p: {"op": "grayscale", "p": p}, unit),
    ]
    other = [
        st.builds(
            lambda k, p: {"op": "gaussian_blur", "kernel_size": k, "p": p},
            st.sampled_from([1, 3, 5]),
            unit,
        ),
        st.builds(
            lambda v, p: {"op": "random_erasing", "value": v, "p": p},
            st.sampled_from([0, [255, 0, 0], [10, 20, 30, 40]]),
            unit,
        ),
    ]
    geometric += [
        st.builds(lambda x, y: {"op": "shear", "x": x, "y": y}, st.floats(0, 40), st.floats(0, 40)),
        st.builds(
            lambda x, u: {"op": "translate", "x": x, "units": u},
            st.floats(0, 1),
            st.sampled_from(["pixels", "fraction"]),
        ),
    ]
    tone = [
        st.builds(lambda b, p: {"op": "posterize", "bits": b, "p": p}, st.integers(0, 8), unit),
        st.builds(lambda t: {"op": "solarize", "threshold": t}, st.floats(0, 255)),
        st.builds(lambda a: {"op": "solarize_add", "add": a}, st.floats(0, 255)),
        st.sampled_from([{"op": "equalize"}, {"op": "autocontrast"}, {"op": "invert"}]),
        st.builds(
            lambda name, f: {"op": name, "factor": f},
            st.sampled_from(["sharpness", "saturation", "brightness", "contrast"]),
            st.floats(0, 2),
        ),
        st.builds(lambda h: {"op": "hue", "factor": h}, st.floats(-0.5, 0.5)),
    ]
    members = st.one_of(*geometric[-2:], *tone, *colour)
    policies = [
        st.builds(
            lambda ops: {"op": "one_of", "ops": ops}, st.lists(members, min_size=1, max_size=3)
        ),
        st.builds(
            lambda ops, order: {"op": "some_of", "n": 2, "ops": ops, "random_order": order},
            st.lists(members, min_size=2, max_size=4),
            st.booleans(),
        ),
        st.builds(
            lambda ops: {"op": "random_order", "ops": ops},
            st.lists(members, min_size=1, max_size=3),
        ),
        st.builds(
            lambda n, m: {"op": "rand_augment", "num_ops": n, "magnitude": m},
            st.integers(0, 3),
            st.integers(0, 30),
        ),
        st.just({"op": "trivial_augment_wide"}),
        st.builds(
            lambda p: {"op": "auto_augment", "policy": p},
            st.sampled_from(["imagenet", "cifar10", "svhn"]),
        ),
        st.builds(
            lambda s, w, d: {"op": "augmix", "severity": s, "mixture_width": w, "chain_depth": d},
            st.integers(1, 10),
            st.integers(1, 3),
            st.sampled_from([-1, 1, 2]),
        ),
        st.builds(
            lambda c: {"op": "timm_auto_augment", "config": c},
            st.sampled_from(
                [
                    "rand-m9-mstd0.5-inc1",
                    "rand-m15-n3-mstd101-mmax20",
                    "augmix-m5-w2-d2",
                    "trivialaugment",
                ]
            ),
        ),
    ]
    # one kind at a time, so colour ops come up as often as geometric ones
    return st.one_of(
        st.one_of(*geometric),
        st.one_of(*colour),
        st.one_of(*other),
        st.one_of(*tone),
        st.one_of(*policies),
    )


normalize_ops = st.one_of(
    st.builds(lambda m, s: {"op": "normalize", "mean": [m], "std": [s]},
              st.floats(0, 1), st.floats(0.05, 2)),
    st.builds(lambda m, s: {"op": "normalize", "mean": m, "std": s},
              st.lists(st.floats(0, 1), min_size=3, max_size=3),
              st.lists(st.floats(0.05, 2), min_size=3, max_size=3)),
)  # fmt: skip


@st.composite
def recipes(
    draw: st.DrawFn,
    *,
    channels: st.SearchStrategy[Any] = st.sampled_from(["auto", 1, 3, 4]),
    fixed_size: bool = False,
    uint8: bool = False,
) -> dict[str, Any]:
    """A random recipe: a few ops with random parameters (colour and geometric among
    them), optionally normalised, with random output options. ``fixed_size`` adds
    output.size so every sample ends at one size (what streams need)."""
    ops = draw(st.lists(_ops(), max_size=4))
    if not uint8 and draw(st.booleans()):
        ops.append(draw(normalize_ops))
    output: dict[str, Any] = {
        "channels": draw(channels),
        "interpolation": draw(st.sampled_from(["bilinear", "nearest", "bicubic"])),
        "padding_mode": draw(st.sampled_from(["constant", "border", "reflection"])),
        "fill": draw(st.sampled_from([0, 128, [255, 0, 0]])),
    }
    if not uint8:
        output["dtype"] = draw(st.sampled_from(["uint8", "float32"]))
    if fixed_size or draw(st.booleans()):
        output["size"] = [draw(small), draw(small)]
    return {"ops": ops, "output": output}


# --- the reference and the documented ranges ---------------------------------------------


def alone(plan: Plan, image: torch.Tensor, seed: int, key: int) -> torch.Tensor:
    """The sample augmented on its own with its key: what every batch must reproduce."""
    out = augment(plan, [image], seed=seed, keys=[key]).images
    return out[0]


def alone_file(plan: Plan, name: str, data: bytes, seed: int, key: int) -> torch.Tensor:
    """A file augmented on its own, decoded as every path decodes it for that sample
    (a JPEG at the scale its first warp can use): what every batch must reproduce."""
    header = probe_image(data, max_pixels=MAX_PIXELS, name=name)
    images = plan_decode(plan, [header], seed=seed, keys=[key]).decode()
    return augment(plan, images, seed=seed, keys=[key]).images[0]


def expected_channels(plan: Plan, image: torch.Tensor) -> int:
    wanted = plan.recipe.output.channels
    return image.shape[0] if wanted == "auto" else int(wanted)


def assert_in_documented_range(plan: Plan, out: torch.Tensor) -> None:
    """float32: [0, 1] without normalize; with it ((0 - mean)/std, (1 - mean)/std) per
    channel, evaluated in float32 exactly as the documented formula reads."""
    if out.dtype == torch.uint8:
        return
    assert out.dtype == torch.float32
    last = plan.recipe.ops[-1] if plan.recipe.ops else None
    if last is None or last.op != "normalize":
        assert out.min() >= 0 and out.max() <= 1, (out.min().item(), out.max().item())
        return
    c = out.shape[0]
    mean = last.mean if len(last.mean) == c else last.mean[:1] * c
    std = last.std if len(last.std) == c else last.std[:1] * c
    m = torch.tensor(mean, dtype=torch.float32).view(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(c, 1, 1)
    low = (torch.zeros(()) - m) / s
    high = (torch.ones(()) - m) / s
    assert (out >= low).all() and (out <= high).all(), (out.amin((1, 2)), low, high)
