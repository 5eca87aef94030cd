"""The engine: pure torch + Kornia. recipe -> plan -> augmented batch.

No HTTP, no Redis: ``compile_plan(recipe)`` once per recipe version, then
``augment(plan, images, seed=, offset=)`` per batch. Everything other layers use is
named here; the modules behind it are the engine's own business.
"""

from augsvc.engine.plan import Plan, Sampled, compile_plan, fixed_output_size, sample_plan
from augsvc.engine.region import plan_regions
from augsvc.engine.run import (
    AugmentResult,
    augment,
    decode_scales,
    resolve_device,
    source_boxes,
    starts_with_warp,
)
from augsvc.maths.device import cpu_workers
from augsvc.maths.rng import MAX_SEED

__all__ = [
    "MAX_SEED",
    "AugmentResult",
    "Plan",
    "Sampled",
    "augment",
    "compile_plan",
    "cpu_workers",
    "decode_scales",
    "fixed_output_size",
    "plan_regions",
    "resolve_device",
    "sample_plan",
    "source_boxes",
    "starts_with_warp",
]
