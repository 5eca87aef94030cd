"""Documents built to break parsers: nesting far past any recursion limit, and a YAML
alias bomb. Shared by the parser tests, the API corpus and the CLI tests."""

from __future__ import annotations


def deep_json(levels: int) -> bytes:
    """A recipe whose ``degrees`` is ``levels`` nested arrays."""
    return b'{"ops": [{"op": "rotate", "degrees": ' + b"[" * levels + b"]" * levels + b"}]}"


def deep_yaml_flow(levels: int) -> bytes:
    return b"ops: [{op: rotate, degrees: " + b"[" * levels + b"]" * levels + b"}]\n"


def deep_yaml_block(levels: int) -> bytes:
    """Block style: ``- - - ... - 1`` (a sequence per dash) on one line."""
    return b"ops:\n  - op: rotate\n    degrees:\n      " + b"- " * levels + b"1\n"


def deep_yaml_mappings(levels: int) -> bytes:
    """Block mappings, one more indentation step per level."""
    lines = [b" " * i + b"k%d:" % i for i in range(levels)]
    return b"\n".join(lines) + b" 1\n"


def yaml_alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """ "Billion laughs": ``width ** levels`` strings once the aliases are expanded, in a
    few hundred bytes."""
    lines = [b'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = b", ".join([b"*l%d" % (i - 1)] * width)
        lines.append(b"l%d: &l%d [%s]" % (i, i, refs))
    lines.append(b"ops: [{op: rotate, degrees: *l%d}]" % (levels - 1))
    return b"\n".join(lines) + b"\n"


#: name -> (syntax, document): every shape of attack, each at least 1000 levels deep.
NASTY: dict[str, tuple[str, bytes]] = {
    "json-1000": ("json", deep_json(1000)),
    "json-100000": ("json", deep_json(100_000)),
    "yaml-flow-1000": ("yaml", deep_yaml_flow(1000)),
    "yaml-flow-100000": ("yaml", deep_yaml_flow(100_000)),
    "yaml-block-1000": ("yaml", deep_yaml_block(1000)),
    "yaml-block-100000": ("yaml", deep_yaml_block(100_000)),
    "yaml-mappings-1000": ("yaml", deep_yaml_mappings(1000)),
    "yaml-alias-bomb": ("yaml", yaml_alias_bomb()),
}
