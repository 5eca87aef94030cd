"""Output encoders: what a rendered batch becomes on the way out.

Every path runs the same batch pipeline (:mod:`augsvc.pipeline.batch`) and differs only
in its inputs and its encoder: ``/v1/augment`` answers safetensors or a zip of PNG/JPEG
files, a preview a PNG grid, a stream a frame, ``augsvc augment`` files on disk. Each
encoder says, before anything is decoded, what it refuses (:meth:`Encoder.check`) and
how many bytes it adds to the job (:meth:`Encoder.extra_bytes`), so the job's memory
is admitted whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch

from augsvc.codec import encode_jpeg, encode_png, frame, images_to_safetensors, make_zip
from augsvc.codec.media_types import SAFETENSORS, ZIP
from augsvc.codec.targets import encode_mask_png, mask_name, targets_json, targets_tensors
from augsvc.engine import AugmentResult, Plan
from augsvc.errors import FieldError, ValidationFailed
from augsvc.maths.transfer import to_host
from augsvc.pipeline.cost import FLOAT, SampleShape, output_bytes
from augsvc.pipeline.grid import tile
from augsvc.targets.types import MovedTargets

ImageFormat = Literal["png", "jpeg"]
#: Bytes per sample for keys, parameters and targets beside the pixels.
PER_SAMPLE_BYTES = 4096


@dataclass(frozen=True)
class Rendered:
    """A batch after the engine: its result, its moved targets (None: it had none)."""

    plan: Plan
    seed: int
    offset: int
    result: AugmentResult
    targets: list[MovedTargets | None] | None = None


class Encoder(Protocol):
    def check(self, plan: Plan) -> None:
        """Refuse, before any pixel is decoded, a plan whose output this cannot hold."""

    def check_shapes(self, shapes: Sequence[SampleShape]) -> None:
        """Refuse samples that will not fit the format, once their sizes are known."""

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        """Bytes the encoding holds beyond the batch's outputs."""

    def encode(self, rendered: Rendered) -> bytes: ...


def float_output_problem() -> ValidationFailed:
    return ValidationFailed(
        "this recipe produces float32 images, which PNG/JPEG cannot hold: "
        "ask for Accept: application/x-safetensors",
        errors=[FieldError(("recipe", "output", "dtype"), "float32 output")],
    )


def one_tensor_problem(
    channels: Sequence[int], sizes: Sequence[tuple[int, int]], alternative: str
) -> ValidationFailed:
    """Why samples of different shapes cannot be one tensor, and what to set."""
    reasons, fixes, errors = [], [], []
    if len(set(channels)) > 1:
        reasons.append(f"channel counts ({', '.join(map(str, sorted(set(channels))))})")
        fixes.append("set output.channels: 3 (or 1 or 4)")
        errors.append(FieldError(("recipe", "output", "channels"), "needed for one channel count"))
    distinct = sorted(set(sizes))
    if len(distinct) > 1:
        reasons.append(f"sizes ({', '.join(f'{h}x{w}' for h, w in distinct[:4])}...)")
        fixes.append("add output.size or a crop/resize to the recipe")
        errors.append(FieldError(("recipe", "output", "size"), "needed for one output size"))
    return ValidationFailed(
        f"the samples end with different {' and '.join(reasons)}, which one tensor cannot "
        f"hold: {', and '.join(fixes)}{alternative}",
        errors=errors,
    )


class _OneTensor:
    """Encoders whose images are one (N, C, H, W) tensor; ``alternative`` says what else
    a client could ask for."""

    alternative = ""

    def check(self, plan: Plan) -> None:
        pass

    def check_shapes(self, shapes: Sequence[SampleShape]) -> None:
        if len({s.out_hw for s in shapes}) > 1:
            raise one_tensor_problem(
                [s.out_channels for s in shapes], [s.out_hw for s in shapes], self.alternative
            )

    def one_tensor(self, result: AugmentResult) -> torch.Tensor:
        """The batch as one tensor: under ``channels: auto`` samples may differ in
        channels, known only once decoded."""
        images = result.images
        if isinstance(images, torch.Tensor):
            return images
        raise one_tensor_problem(
            [int(img.shape[0]) for img in images],
            [tuple(img.shape[1:]) for img in images],
            self.alternative,
        )


@dataclass(frozen=True)
class SafetensorsEncoder(_OneTensor):
    """``application/x-safetensors``: images, keys, per-sample params and targets."""

    return_params: bool = True
    alternative = ", or ask for Accept: application/zip"

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        return output_bytes(plan, shapes) + PER_SAMPLE_BYTES * len(shapes)

    def encode(self, rendered: Rendered) -> bytes:
        result = rendered.result
        tensors: dict[str, torch.Tensor] = {
            "images": self.one_tensor(result),
            "keys": torch.from_numpy(np.ascontiguousarray(result.keys, dtype=np.int64)),
        }
        if self.return_params:
            for name, values in sorted(result.params.items()):
                array = values.astype(np.uint8) if values.dtype == np.bool_ else values
                tensors[f"params.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
        if rendered.targets is not None:
            tensors.update(targets_tensors(rendered.targets))
        metadata = {
            "seed": str(rendered.seed),
            "offset": str(rendered.offset),
            "digest": rendered.plan.digest,
        }
        return images_to_safetensors(tensors, metadata)


def encoded_files(
    rendered: Rendered, image_format: ImageFormat, name: Callable[[int, int], str]
) -> list[tuple[str, bytes]]:
    """One encoded file per sample (``name(index, key)``), then the targets' files; the
    encoder's ``check`` refused float outputs before anything was decoded."""
    images = to_host(rendered.result.images)  # one device-to-host copy for the batch
    encode = encode_png if image_format == "png" else encode_jpeg
    keys = rendered.result.keys.tolist()
    files = [(name(i, keys[i]), encode(img)) for i, img in enumerate(images)]
    if rendered.targets is not None:
        files.append(("targets.json", targets_json(rendered.targets)))
        files += [
            (mask_name(i), encode_mask_png(t.mask))
            for i, t in enumerate(rendered.targets)
            if t is not None and t.mask is not None
        ]
    return files


class _ImageFiles:
    """Encoders that write one PNG or JPEG file per sample: uint8 outputs only, of any
    sizes and channel counts (:func:`encoded_files`)."""

    def check(self, plan: Plan) -> None:
        if plan.out_dtype != "uint8":
            raise float_output_problem()

    def check_shapes(self, shapes: Sequence[SampleShape]) -> None:
        pass


@dataclass(frozen=True)
class ZipEncoder(_ImageFiles):
    """``application/zip``: one PNG or JPEG per sample (``000000.png``...), and the
    targets' ``targets.json`` and mask PNGs. Samples may differ in size and channels."""

    image_format: ImageFormat = "png"

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        # the encoded files (at worst about the raw size), then the archive joining them
        masks = sum(s.out_pixels * s.mask_bytes_per_pixel for s in shapes)
        return 2 * (output_bytes(plan, shapes) + masks) + PER_SAMPLE_BYTES * len(shapes)

    def encode(self, rendered: Rendered) -> bytes:
        suffix = "png" if self.image_format == "png" else "jpg"
        return make_zip(
            encoded_files(rendered, self.image_format, lambda i, _key: f"{i:06d}.{suffix}")
        )


@dataclass
class FilesEncoder(_ImageFiles):
    """Files on disk (``augsvc augment``): one PNG per sample named by ``name(index,
    key)``; :meth:`encode` keeps them in :attr:`files` for the caller to write."""

    image_format: ImageFormat
    name: Callable[[int, int], str] = field(repr=False)
    files: list[tuple[str, bytes]] = field(default_factory=list)

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        return output_bytes(plan, shapes) + PER_SAMPLE_BYTES * len(shapes)

    def encode(self, rendered: Rendered) -> bytes:
        self.files = encoded_files(rendered, self.image_format, self.name)
        return b""


@dataclass(frozen=True)
class GridEncoder:
    """``image/png``: the samples tiled into one contact sheet (:mod:`.grid`)."""

    def check(self, plan: Plan) -> None:
        pass

    def check_shapes(self, shapes: Sequence[SampleShape]) -> None:
        pass

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        if not shapes:
            return 0
        cols = math.ceil(math.sqrt(len(shapes)))
        rows = math.ceil(len(shapes) / cols)
        cell_h = max(s.out_hw[0] for s in shapes)
        cell_w = max(s.out_hw[1] for s in shapes)
        canvas = 3 * (rows * cell_h + rows + 1) * (cols * cell_w + cols + 1)
        # each sample made displayable (uint8 RGB; a float output through four float
        # copies of its four channels at most), the canvas, and the PNG (about the canvas)
        largest = max(s.out_pixels for s in shapes)
        stretch = 4 * 4 * FLOAT * largest if plan.out_dtype == "float32" else 0
        return sum(3 * s.out_pixels for s in shapes) + stretch + 2 * canvas

    def encode(self, rendered: Rendered) -> bytes:
        return encode_png(tile(to_host(rendered.result.images)), compress_level=6)


def frame_bytes(plan: Plan, shapes: Sequence[SampleShape]) -> int:
    """The size of a stream frame of these samples, at most."""
    return output_bytes(plan, shapes) + PER_SAMPLE_BYTES * len(shapes)


@dataclass(frozen=True)
class FrameEncoder(_OneTensor):
    """``application/x-augsvc-stream``: one length-prefixed safetensors frame. The stream
    adds its own tensors (indices, labels, mixing) and metadata through ``compose``."""

    compose: Callable[[Rendered, torch.Tensor], dict[str, torch.Tensor]] = field(repr=False)
    metadata: dict[str, str] = field(default_factory=dict)

    def extra_bytes(self, plan: Plan, shapes: Sequence[SampleShape]) -> int:
        return 2 * frame_bytes(plan, shapes)  # the safetensors blob, then the framed copy

    def encode(self, rendered: Rendered) -> bytes:
        tensors = self.compose(rendered, self.one_tensor(rendered.result))
        return frame(images_to_safetensors(tensors, self.metadata))


@dataclass(frozen=True)
class ResponseOptions:
    """What a client may choose about an augment response beside its media type."""

    image_format: ImageFormat = "png"
    return_params: bool = True


#: The encoder for each response media type of ``/v1/augment``.
RESPONSE_ENCODERS: dict[str, Callable[[ResponseOptions], Encoder]] = {
    SAFETENSORS: lambda options: SafetensorsEncoder(options.return_params),
    ZIP: lambda options: ZipEncoder(options.image_format),
}
