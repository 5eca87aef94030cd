"""What occluding ops covered, per sample, wherever they sit in the recipe.

An op declares that it occludes (:class:`~augsvc.ops.Occluder`); nothing here knows
which ops those are. Every op the plan runs is an entry of one of its stages, the
members of combinators and policies included (each under its own key,
``<op>.<position>.<candidate>``), and its draws come back in the batch's params as
``ops.<key>.<name>``, with its ``applied`` already limited to the samples that chose
it. So each occluder's rectangles are read from exactly the values its pixels were
filled from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from augsvc.engine import Plan
from augsvc.ops import Occluder, Op, Params


def plan_entries(plan: Plan) -> Iterator[tuple[int | str, Op]]:
    """(record key, op) of every op the plan runs, in stage order."""
    for stage in plan.stages:
        yield from stage.ops


def drawn(params: Mapping[str, np.ndarray], key: int | str) -> Params:
    """The params one entry's ``sample`` returned, by their own names."""
    prefix = f"ops.{key}."
    return {
        name[len(prefix) :]: value
        for name, value in params.items()
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    }


def occluded_rectangles(plan: Plan, params: Mapping[str, np.ndarray], n: int) -> list[np.ndarray]:
    """Per sample, the (R,4) xyxy rectangles every occluder that acted on it filled, in
    continuous pixels of the canvas each ran on (the recipe puts occluders after every
    op that moves pixels, so that is the output)."""
    found: list[list[np.ndarray]] = [[] for _ in range(n)]
    for key, op in plan_entries(plan):
        if isinstance(op, Occluder):
            for i, rects in enumerate(op.occluded_rectangles(drawn(params, key))):
                found[i].append(np.asarray(rects, dtype=np.float64).reshape(-1, 4))
    return [np.concatenate(rects) if rects else np.zeros((0, 4)) for rects in found]
