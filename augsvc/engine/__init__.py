"""The engine: pure torch + Kornia. recipe -> plan -> augmented batch.

No HTTP, no Redis: ``compile_plan(recipe)`` once per recipe version, then
``augment(plan, images, seed=, offset=)`` per batch.
"""

from augsvc.engine.plan import Plan, Sampled, compile_plan, sample_plan
from augsvc.engine.run import AugmentResult, augment, resolve_device

__all__ = [
    "AugmentResult",
    "Plan",
    "Sampled",
    "augment",
    "compile_plan",
    "resolve_device",
    "sample_plan",
]
