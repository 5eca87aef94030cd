"""User documents (JSON, YAML) parsed under a nesting limit, without recursing into it.

Python's JSON decoder and PyYAML's composer recurse once per level of nesting, so a
few kilobytes of ``[[[[...`` raise RecursionError deep inside them (a 500, or worse).
Every document a user sends (recipe bodies, the inline ``recipe`` part, dataset
registrations, recipe files given to the CLI, safetensors headers) goes through
:func:`parse_document`, which measures the nesting first and refuses anything deeper
than :data:`MAX_NESTING` levels before a recursive parser sees it:

- JSON: brackets are counted outside strings, in one iterative pass over the text;
- YAML: the composer counts the collections it opens and stops at the limit, so its
  recursion is bounded by the limit rather than by the document. Anchors and aliases
  are refused outright: an alias is a pointer, and a few lines of nested aliases
  ("billion laughs") expand to gigabytes once anything walks the result.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import numpy as np
import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from augsvc.errors import AugsvcError, FieldError, ValidationFailed

#: Deepest nesting of lists and objects accepted in a user document. A recipe needs
#: four (``{"ops": [{"degrees": [...]}]}``); 64 leaves room for anything reasonable while
#: keeping every parser's recursion far from Python's limit.
MAX_NESTING = 64

Syntax = Literal["json", "yaml"]

# A JSON string, escapes included; an unterminated one runs to the end of the text, so
# brackets inside it are never counted as structure.
_JSON_STRING = re.compile(r'"(?:[^"\\]+|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class TooDeep(ValueError):
    """The document nests deeper than the limit."""

    def __init__(self, limit: int, where: str = "") -> None:
        super().__init__(f"nests deeper than {limit} levels{where}")
        self.limit = limit


class AnchorsRefused(ValueError):
    """A YAML anchor (``&name``) or alias (``*name``)."""


def check_json_nesting(text: str, limit: int = MAX_NESTING) -> None:
    """TooDeep when ``text`` opens more than ``limit`` nested arrays/objects.

    Exact for valid JSON; for invalid JSON it measures the prefix the decoder would
    have parsed before failing. Iterative and linear in the text.
    """
    if text.count("[") + text.count("{") <= limit:  # an upper bound, in C: most documents
        return
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    # +1 per opener, -1 per closer, summed: the depth after each bracket, in C (an
    # annotations file has tens of millions of brackets).
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    depth = np.cumsum(np.where((codes == ord("[")) | (codes == ord("{")), 1, -1))
    unmatched = np.flatnonzero(depth < 0)
    if len(unmatched):  # an unmatched closer: the decoder stops there with a syntax error
        depth = depth[: unmatched[0]]
    if len(depth) and depth.max() > limit:
        raise TooDeep(limit)


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _EventSource(CParser):
        """libyaml's parser (C): the same events as PyYAML's Python one, for a fraction
        of the CPU, which matters because recipe bodies are parsed on the event loop."""

else:  # pragma: no cover - PyYAML built without libyaml

    class _EventSource(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class _BoundedSafeLoader(Composer, _EventSource, SafeConstructor, Resolver):
    """PyYAML's safe loader with a nesting limit and without anchors or aliases.

    Both parsers (libyaml's and PyYAML's) are iterative; only the composer (PyYAML's,
    in Python) recurses, once per collection, and here it refuses to open collection
    ``limit + 1``. The constructor is PyYAML's SafeConstructor, as in ``safe_load``."""

    def __init__(self, stream: str, limit: int) -> None:
        _EventSource.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._limit = limit
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise AnchorsRefused(
                f"YAML anchors and aliases are not accepted (line {mark.line + 1}, "
                f"column {mark.column + 1}): write the values out"
            )
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self._limit:
                mark = event.start_mark
                raise TooDeep(self._limit, f" (line {mark.line + 1}, column {mark.column + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, limit: int = MAX_NESTING) -> Any:
    """``yaml.safe_load`` with the nesting limit, anchors and aliases refused."""
    loader = _BoundedSafeLoader(text, limit)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        # libyaml has a nesting limit of its own (1000 levels), which it can reach while
        # scanning ahead, before the composer has counted to ours.
        if "maximum nesting depth" in str(exc) and limit < 1000:
            raise TooDeep(limit) from None
        raise
    finally:
        loader.dispose()


def parse_document(
    data: bytes | bytearray | str,
    syntax: Syntax,
    *,
    source: str = "the body",
    error: type[AugsvcError] = ValidationFailed,
    loc: tuple[str | int, ...] = ("body",),
    limit: int = MAX_NESTING,
) -> Any:
    """Parse ``data`` as ``syntax``; ``error`` (a 4xx of the caller's choosing, with a
    field error at ``loc``) naming ``source`` when it is not UTF-8, not valid, nests
    deeper than ``limit`` or uses YAML anchors."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        if syntax == "json":
            check_json_nesting(text, limit)
            return json.loads(text)
        return load_yaml(text, limit)
    except TooDeep as exc:
        raise error(
            f"{source} {exc}, the limit for documents (MAX_NESTING = {limit})",
            errors=[FieldError(loc, f"nested deeper than {limit} levels")],
        ) from None
    except AnchorsRefused as exc:
        raise error(f"{source}: {exc}", errors=[FieldError(loc, "YAML anchor or alias")]) from None
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise error(
            f"{source} is not valid {syntax.upper()}: {reason}",
            errors=[FieldError(loc, reason)],
        ) from None
