"""Draw slots laid out in named blocks that are proven never to overlap.

An op's draw slots are part of its reproducibility contract, so a block's start is
given, never computed: the layout only checks what is given. Two quantities that read
the same slot would be correlated (or equal) for every sample, silently; a layout
raises instead, when it is built, so an op that builds its layout before drawing
cannot draw from overlapping blocks.
"""

from __future__ import annotations

#: Slots an op has: ``rng.uniform01`` refuses any slot from here on.
SLOTS_PER_OP = 1 << 12


class SlotLayout:
    """Blocks of slots (``range`` objects: indexing one past its end raises), each
    checked against every block taken before it."""

    def __init__(self, limit: int = SLOTS_PER_OP) -> None:
        self._limit = limit
        self._taken: list[tuple[str, range]] = []

    def take(self, name: str, start: int, size: int) -> range:
        """Slots ``start`` .. ``start + size - 1`` for ``name``."""
        block = range(start, start + size)
        if size < 1 or start < 0 or block.stop > self._limit:
            raise ValueError(f"slots {name} {_shown(block)} are not within 0..{self._limit - 1}")
        for other, held in self._taken:
            if block.start < held.stop and held.start < block.stop:
                raise ValueError(
                    f"slots {name} {_shown(block)} overlap slots {other} {_shown(held)}"
                )
        self._taken.append((name, block))
        return block

    def repeated(self, name: str, start: int, stride: int, count: int, size: int) -> list[range]:
        """``count`` blocks of ``size`` slots, the k-th at ``start + k * stride``."""
        return [self.take(f"{name}[{k}]", start + k * stride, size) for k in range(count)]


def _shown(block: range) -> str:
    return f"{block.start}..{block.stop - 1}"
