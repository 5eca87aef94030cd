"""Ops made of ops: combinators and policies choose, per sample, which member ops act.

A composite op is laid out as *positions* (the steps a sample takes, in order), each
with the same list of *candidates* (the ops it may take there). Every (position,
candidate) pair is a member: an ordinary op, sampled with its own draws and gated to
the samples that chose it there. ``select`` draws the choice for a batch from the
composite's own counter-based draws, so a sample's choice, like everything else, is a
function of (recipe, seed, key) alone. The plan fuses members like any op: geometric
members join the sample's one warp, colour members one colour map per position, and a
pixel member runs on the samples that drew it.

:func:`acting` is the one walk over a composite's members by what they are (not where
the plan puts them): what a recipe may hold is checked on it, whatever nests where.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator, Field, SerializeAsAny, ValidationError, WithJsonSchema

from augsvc.errors import field_errors, format_loc
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, Op, OpKind, Params
from augsvc.ops.registry import op_class, op_names


@dataclass
class Selection:
    """A batch's choices: ``chosen`` (N, positions) holds each sample's candidate at
    each position (-1: none), ``fixed`` the values a policy hands a member for some of
    its draw slots (its magnitude), ``record`` what is returned per sample as
    ``ops.<i>.<name>``."""

    chosen: np.ndarray
    fixed: dict[tuple[int, int], dict[int, np.ndarray]] = field(default_factory=dict)
    record: Params = field(default_factory=dict)


#: Float copies a composite adds to its members' (the samples gathered for a candidate,
#: and scattered back).
SELECTION_COPIES = 2


class CompositeOp(Op):
    """An op that expands into member ops chosen per sample."""

    kind: ClassVar[OpKind] = "combinator"
    #: The field that lists the candidates in the op's document (a combinator's
    #: ``ops``), so an error can name one; None where they are not listed one to one.
    candidates_field: ClassVar[str | None] = None

    def candidates(self) -> tuple[Op | None, ...]:
        """The ops a position may take (None: a position that does nothing)."""
        raise NotImplementedError

    @property
    def positions(self) -> int:
        raise NotImplementedError

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        raise NotImplementedError

    def peak_copies(self) -> int:
        """Any member's, and the copies selecting each candidate's samples takes."""
        members = [op.peak_copies() for op in self.candidates() if op is not None]
        return max([self.working_copies, *members]) + SELECTION_COPIES

    def members(self) -> list[tuple[int, int, Op]]:
        """(position, candidate, op) of every member, in the order they act."""
        return [
            (pos, cand, op)
            for pos in range(self.positions)
            for cand, op in enumerate(self.candidates())
            if op is not None
        ]


Loc = tuple[str | int, ...]


def acting(op: Op) -> list[tuple[Loc, Op]]:
    """(field path inside ``op``'s document, op) of every op that may act in ``op``'s
    place: each candidate of a combinator or policy, ``op`` itself otherwise. A
    shorthand is walked as what it stands for; its members have no path of their own
    in the document, so they are named by the shorthand's."""
    expanded = op.expand()
    if expanded is not op:
        return [((), member) for _, member in acting(expanded)]
    if not isinstance(op, CompositeOp):
        return [((), op)]
    field = op.candidates_field
    return [
        ((field, j) if field else (), member)
        for j, member in enumerate(op.candidates())
        if member is not None
    ]


def parse_members(v: Any) -> tuple[Op, ...]:
    """A list of op documents, each validated by its registered class. A member may
    not be a combinator or policy, change the image size or have to end the recipe:
    members are skipped per sample, which none of those can be."""
    if not isinstance(v, list | tuple):
        raise ValueError("expected a list of ops")
    out = []
    for j, item in enumerate(v):
        try:
            op = parse_op(item)
        except ValidationError as exc:
            err = field_errors(exc, (j,))[0]
            raise ValueError(f"{format_loc(err.loc)}: {err.msg}") from None
        except ValueError as exc:
            raise ValueError(f"[{j}]: {exc}") from None
        if isinstance(op, CompositeOp) or op.changes_size or op.terminal:
            raise ValueError(
                f"[{j}]: {op.name()} cannot be chosen per sample (combinators do not nest; "
                "ops that change the size or end the recipe cannot be skipped per sample)"
            )
        out.append(op)
    return tuple(out)


def parse_op(item: Any) -> Op:
    """One op, given as an op or as its document, validated by the class registered for
    its ``op`` name: the one place an op document becomes an op (recipes, combinators'
    members, policy tables). A ValidationError's locations are relative to the op; a
    document that is not an object, or names no known op, is a ValueError (an op name
    close to a known one is answered with it: a typo is the usual cause)."""
    if isinstance(item, Op):
        return item
    if not isinstance(item, dict):
        raise ValueError("expected an object with an 'op' field")
    name = item.get("op")
    cls = op_class(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(unknown_op_message(name))
    return cls.model_validate(item)


def unknown_op_message(name: Any) -> str:
    """What a document whose ``op`` names no registered op is told: the closest known
    name when one is close, else every known name."""
    if name is None:
        return f"no 'op' field: expected one of {', '.join(repr(n) for n in op_names())}"
    shown = f"unknown op {str(name)[:64]!r}"
    close = difflib.get_close_matches(str(name)[:64].lower(), op_names(), n=1, cutoff=0.75)
    if close:
        return f"{shown}: did you mean {close[0]!r}?"
    return f"{shown}: expected one of {', '.join(repr(n) for n in op_names())}"


#: Any op document; each is validated by its own class (the recipe schema lists them).
OP_DOCUMENT = {
    "type": "object",
    "required": ["op"],
    "properties": {"op": {"type": "string", "description": "An op name of GET /v1/ops."}},
}

#: The ``ops`` field of a combinator: a non-empty list of op documents.
Members = Annotated[
    tuple[SerializeAsAny[Op], ...],
    BeforeValidator(lambda v: parse_members(v)),
    Field(min_length=1, max_length=64),
    WithJsonSchema({"type": "array", "items": OP_DOCUMENT, "minItems": 1, "maxItems": 64}),
]


def categorical(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Index drawn from ``weights`` (normalised here) by uniforms ``u`` in [0, 1)."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)


def permutations(draws: Draws, first_slot: int, k: int) -> np.ndarray:
    """A uniformly random ordering of k items per sample (N, k): argsort of k uniforms."""
    u = np.stack([draws.uniform(first_slot + j) for j in range(k)], axis=1)
    return np.argsort(u, axis=1, kind="stable")
