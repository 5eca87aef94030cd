"""Augmentation ops: one module per op, each registered once.

An op module declares everything about its op in one class: the parameter schema
(pydantic fields with their shorthands), the per-sample parameter sampler, and either
its matrix (geometric ops, which fuse into one warp), its colour map (colour ops, which
fuse into one matrix) or its pixel kernel. Shared maths stays in :mod:`augsvc.maths`
(``geometry``, ``colour``, ``kernels``). The recipe schema, the catalogue and the plan
are derived from the registry, so adding an op is adding a module here and its tests.
"""

from augsvc.ops._composite import CompositeOp, Loc, Selection, acting, parse_op
from augsvc.ops.base import Canvas, ColourOp, GeometricOp, Occluder, Op, Params, PixelOp, gated
from augsvc.ops.registry import (
    generation,
    import_op_modules,
    op_class,
    op_names,
    register,
    registered,
)

__all__ = [
    "Canvas",
    "ColourOp",
    "CompositeOp",
    "GeometricOp",
    "Loc",
    "Occluder",
    "Op",
    "Params",
    "PixelOp",
    "Selection",
    "acting",
    "gated",
    "generation",
    "import_op_modules",
    "op_class",
    "op_names",
    "parse_op",
    "register",
    "registered",
]
