"""What a job will hold in memory, in bytes, worked out before a pixel is decoded.

A job's peak is the sum of what it holds at once:

- **inputs**: the encoded files (read once more as they are probed), and every
  decoded image, its header's channel count (1, 3 or 4 uint8) a pixel at the scale it
  decodes at;
- **masks**: every mask as decoded (``uint8`` or ``int32`` from its header), the
  decode of the largest, the float copies the workers warp and every warped mask
  (:func:`mask_bytes`);
- **working**: the engine's float copies of the samples in flight. The CPU engine runs
  ``CHUNK_SAMPLES`` samples per worker thread, ``torch.get_num_threads()`` workers at
  once; a sample in flight holds a float32 copy of the pixels it reads and, per output
  pixel, the warp's sampling grid (two float32) plus ``working_copies`` float32 copies
  of its channels (the more of its input's and its output's), the most any op of the
  plan declares;
- **outputs**: every sample's output (uint8 or float32), counted twice: the engine
  assembles chunk outputs into the batch tensor;
- **encoded**: what the chosen encoder adds (:mod:`augsvc.pipeline.encoders`).

The factors were measured, not guessed: each op alone at a 2000x2000 output from a
64x64 image, peak RSS read from ``/proc/self/status`` (VmHWM after ``clear_refs``) over
the process's RSS before the call, divided by output pixels. The README's memory
section has the table; ``tests/test_pipeline_memory.py`` holds generated jobs' measured
peaks under these estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from augsvc.engine import Plan
from augsvc.ops import GeometricOp

#: Samples a CPU worker runs together (the engine's chunk).
CHUNK_SAMPLES = 4
#: The working copies' figures are the most seen over three seeds; the same job measured
#: again varies by up to a fifth (allocator reuse, which temporaries overlap), so they
#: are counted with this margin.
WORKING_MARGIN = 1.25
#: The warp's sampling grid: an (x, y) float32 pair per output pixel.
GRID_BYTES_PER_PIXEL = 8
FLOAT = 4
#: Copies of a mask its decode holds at its peak: Pillow's pixels, their conversion to
#: 32-bit labels and the array made of them.
MASK_DECODE_COPIES = 3


@dataclass(frozen=True)
class JobCost:
    """Bytes a job holds at its peak, by what holds them, and how errors name the job."""

    what: str  # "the request's 3 images", "the preview (n=16 of a 640x480 image)"
    lower: str  # what the client can lower: "the output size or the number of images"
    inputs: int = 0
    masks: int = 0
    working: int = 0
    outputs: int = 0
    encoded: int = 0

    @property
    def total(self) -> int:
        return self.inputs + self.masks + self.working + self.outputs + self.encoded

    def breakdown(self) -> str:
        parts = [
            ("decoded inputs", self.inputs),
            ("masks", self.masks),
            ("engine working copies", self.working),
            ("outputs", self.outputs),
            ("encoded response", self.encoded),
        ]
        return ", ".join(f"{name} {n / 2**20:.1f} MiB" for name, n in parts if n)


@dataclass(frozen=True)
class SampleShape:
    """One sample as the cost model sees it: the pixels the engine reads and their
    channels, whether this job decodes them (an uploaded tensor is in memory already),
    its output size and channels, and its mask (decoded bytes per pixel, 0: none)."""

    read_pixels: int
    channels: int
    out_hw: tuple[int, int]
    out_channels: int
    decoded: bool = True
    mask_bytes_per_pixel: int = 0
    mask_pixels: int = 0

    @property
    def out_pixels(self) -> int:
        return self.out_hw[0] * self.out_hw[1]


def working_copies(plan: Plan) -> int:
    """The most float copies of a sample any op of the plan holds at once, members of
    combinators and policies included (each op declares its own)."""
    # every plan warps at least once (its output size, or a plain copy)
    return max([GeometricOp.working_copies, *(op.peak_copies() for op in plan.recipe.ops)])


def sample_working_bytes(shape: SampleShape, copies: int) -> int:
    channels = max(shape.channels, shape.out_channels)
    per_out = GRID_BYTES_PER_PIXEL + copies * channels * FLOAT
    return shape.read_pixels * shape.channels * FLOAT + shape.out_pixels * per_out


def mask_bytes(shapes: Sequence[SampleShape], threads: int) -> int:
    """Masks as decoded, held until they are moved; the decode of the largest (Pillow's
    raw pixels, its conversion and the array, ``MASK_DECODE_COPIES`` of it at most);
    a float32 copy of each mask a worker warps at once; and each warped mask with its
    float result and sampling grid."""
    if not shapes:
        return 0
    held = sum(s.mask_pixels * s.mask_bytes_per_pixel for s in shapes)
    decoding = max(s.mask_pixels * s.mask_bytes_per_pixel for s in shapes) * MASK_DECODE_COPIES
    largest = sorted((s.mask_pixels for s in shapes), reverse=True)[:threads]
    warped = sum(s.out_pixels * (s.mask_bytes_per_pixel + FLOAT + GRID_BYTES_PER_PIXEL)
                 for s in shapes)  # fmt: skip
    return held + decoding + FLOAT * sum(largest) + warped


def output_bytes(plan: Plan, shapes: Sequence[SampleShape]) -> int:
    size = FLOAT if plan.out_dtype == "float32" else 1
    return sum(s.out_pixels * s.out_channels * size for s in shapes)


def estimate(
    plan: Plan,
    shapes: Sequence[SampleShape],
    *,
    encoded: int,
    what: str,
    uploaded: int = 0,
    lower: str,
    threads: int | None = None,
) -> JobCost:
    """The cost of running ``plan`` over ``shapes`` read from ``uploaded`` bytes of
    encoded files, with ``encoded`` bytes added by the encoder."""
    copies = working_copies(plan)
    threads_now = threads or torch.get_num_threads()
    in_flight = threads_now * CHUNK_SAMPLES
    per_sample = sorted((sample_working_bytes(s, copies) for s in shapes), reverse=True)
    masks = mask_bytes([s for s in shapes if s.mask_bytes_per_pixel], threads_now)
    return JobCost(
        what=what,
        lower=lower,
        inputs=uploaded + sum(s.read_pixels * s.channels for s in shapes if s.decoded),
        masks=masks,
        working=int(WORKING_MARGIN * sum(per_sample[:in_flight])),
        outputs=2 * output_bytes(plan, shapes),
        encoded=encoded,
    )
