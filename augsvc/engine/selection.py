"""Per-sample op choice: how combinators and policies lay out in a plan and draw.

``layout`` turns a composite op (``augsvc.ops._composite``) into stage entries: all
its geometric members first, to join the warp before it, then for each position its
colour members (one colour map: a sample takes one of them there) and its pixel
members (each acts on the samples that chose it). Moving the geometric members ahead
changes the order against running the ops one by one only where a sample drew a
non-geometric op before a geometric one; the README's design notes measure it.

``Chooser`` draws each composite's :class:`Selection` once per batch, when the plan
first samples one of its members, on the canvas the composite sees (members do not
change the size), and gives each member draws gated to the samples that chose it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augsvc.maths.rng import Draws
from augsvc.ops import Canvas, ColourOp, CompositeOp, GeometricOp, Op, Selection

Entries = tuple[tuple[int | str, Op], ...]


@dataclass(frozen=True)
class Member:
    composite: int  # the composite's index in the recipe
    position: int
    candidate: int
    draw_index: int  # its own counter-based draws


def is_composite(op: Op) -> bool:
    return isinstance(op, CompositeOp)


def _draw_index(composite: int, number: int) -> int:
    """Recipe ops draw as indices 0..63 (and -1); members get their own range."""
    return (composite + 1) * 65536 + number


def layout(index: int, op: CompositeOp, members: dict[str, Member]) -> list[tuple[str, Entries]]:
    """(stage kind, entries) for a composite at recipe position ``index``; registers
    each member in ``members`` under its key ``<index>.<position>.<candidate>``."""
    geometric: list[tuple[int | str, Op]] = []
    per_position: dict[int, list[tuple[str, Entries]]] = {}
    for number, (pos, cand, member) in enumerate(op.members()):
        key = f"{index}.{pos}.{cand}"
        members[key] = Member(index, pos, cand, _draw_index(index, number))
        if isinstance(member, GeometricOp):
            geometric.append((key, member))
            continue
        steps = per_position.setdefault(pos, [])
        if isinstance(member, ColourOp):
            if steps and steps[0][0] == "colour":
                steps[0] = ("colour", (*steps[0][1], (key, member)))
            else:
                steps.insert(0, ("colour", ((key, member),)))
        else:
            steps.append(("pixel", ((key, member),)))
    out: list[tuple[str, Entries]] = [("warp", tuple(geometric))] if geometric else []
    for pos in sorted(per_position):
        out.extend(per_position[pos])
    return out


class Chooser:
    """Draws each composite's choice once per batch and hands out member draws."""

    def __init__(
        self,
        ops: tuple[Op, ...],
        members: dict[str, Member],
        states: np.ndarray,
        record: dict[str, np.ndarray],
    ) -> None:
        self._ops = ops
        self._members = members
        self._states = states
        self._record = record
        self._selections: dict[int, Selection] = {}

    def draws(self, key: str, canvas: Canvas) -> Draws:
        m = self._members[key]
        sel = self._selections.get(m.composite)
        if sel is None:
            op = self._ops[m.composite]
            assert isinstance(op, CompositeOp)
            sel = op.select(Draws(self._states, m.composite), canvas)
            self._selections[m.composite] = sel
            for name, value in sel.record.items():
                self._record[f"ops.{m.composite}.{name}"] = value
        gate = sel.chosen[:, m.position] == m.candidate
        return Draws(
            self._states, m.draw_index, gate=gate, fixed=sel.fixed.get((m.position, m.candidate))
        )
