"""Python examples, made checkable: their dtype/shape comments become assertions, and
the names they use without defining are listed.

A comment that starts with a dtype and a shape is a claim about the value on its line::

    result.images  # uint8 (64, 3, 224, 224)
    images = batch.images  # uint8 (N, C, H, W) numpy
    print(batch.images.shape, batch.keys)  # uint8 (N, C, H, W)

The claim is about the expression, the assigned name, or what ``print`` shows first (the
array itself when that is ``<array>.shape``). Dimensions are integers or names; a name
matches any size, the same size wherever it repeats. A trailing ``numpy`` or ``torch``
also checks the array's type. A claim on any other statement is an error, so a claim
can never be silently ignored.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from typing import Any

DTYPES = "uint8|int8|int16|int32|int64|float16|bfloat16|float32|float64|bool"
CLAIM = re.compile(rf"^(?P<dtype>{DTYPES})\s*\((?P<dims>[^()]*)\)(?:\s+(?P<kind>numpy|torch)\b)?")
CHECK = "__readme_claim__"


class ClaimError(AssertionError):
    pass


def comments(source: str) -> dict[int, str]:
    """line -> the text of the comment on it."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string.lstrip("#").strip()
    return found


def check_claim(value: Any, claim: str, where: str) -> None:
    """Raise ClaimError unless ``value`` has the dtype, shape and type ``claim`` says."""
    match = CLAIM.match(claim)
    if match is None:
        raise ClaimError(f"{where}: not a claim: {claim!r}")
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    got = f"{str(dtype).removeprefix('torch.')} {tuple(shape) if shape is not None else '?'}"
    problem = f"{where}: the README says {claim!r}, the value is {type(value).__name__} {got}"
    if dtype is None or shape is None or str(dtype).removeprefix("torch.") != match["dtype"]:
        raise ClaimError(problem)
    dims = [d.strip() for d in match["dims"].split(",") if d.strip()]
    if len(dims) != len(shape):
        raise ClaimError(problem)
    bound: dict[str, int] = {}
    for dim, size in zip(dims, shape, strict=True):
        if dim.isdigit():
            if int(dim) != size:
                raise ClaimError(problem)
        elif bound.setdefault(dim, int(size)) != size:
            raise ClaimError(problem)
    kind = match["kind"]
    if kind == "numpy" and type(value).__module__ != "numpy":
        raise ClaimError(problem)
    if kind == "torch" and not type(value).__module__.startswith("torch"):
        raise ClaimError(problem)


def _subject(stmt: ast.stmt) -> ast.expr | None:
    """The expression a claim on ``stmt`` is about, or None when there is none."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return ast.Name(target.id, ast.Load())
        return None
    if not isinstance(stmt, ast.Expr):
        return None
    value = stmt.value
    printed = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.args
    if printed and value.func.id == "print":
        value = value.args[0]
        if isinstance(value, ast.Attribute) and value.attr == "shape":
            value = value.value
    return value


class _Instrument:
    def __init__(self, claims: dict[int, str], filename: str) -> None:
        self.claims = claims
        self.filename = filename
        self.used: set[int] = set()

    def body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    setattr(stmt, field, self.body(inner))
            for handler in getattr(stmt, "handlers", []):
                handler.body = self.body(handler.body)
            out.append(stmt)
            line = stmt.end_lineno or stmt.lineno
            if line not in self.claims:
                continue
            subject = _subject(stmt)
            if subject is None:
                continue
            self.used.add(line)
            where = f"{self.filename}:{line}"
            call = ast.Call(
                ast.Name(CHECK, ast.Load()),
                [subject, ast.Constant(self.claims[line]), ast.Constant(where)],
                [],
            )
            check = ast.copy_location(ast.Expr(call), stmt)
            if isinstance(stmt, ast.Expr) and subject is stmt.value:
                out[-1] = check  # evaluate the expression once, inside the check
            else:
                out.append(check)
        return out


def instrument(source: str, filename: str, first_line: int) -> ast.Module:
    """The example's AST with a check after every claim, line numbers as in the README
    (the example's first line is ``first_line``)."""
    tree = ast.parse(source, filename=filename)
    ast.increment_lineno(tree, first_line - 1)
    claims = {
        line + first_line - 1: text for line, text in comments(source).items() if CLAIM.match(text)
    }
    work = _Instrument(claims, filename)
    tree.body = work.body(tree.body)
    orphans = sorted(set(work.claims) - work.used)
    if orphans:
        lines = ", ".join(f"{filename}:{n}" for n in orphans)
        raise ClaimError(
            f"{lines}: a dtype/shape comment on a line that is not an expression, an "
            "assignment to a name or a print(): the harness cannot check it"
        )
    return ast.fix_missing_locations(tree)


def free_names(tree: ast.Module) -> set[str]:
    """Names the example reads but never binds and Python does not provide."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - set(dir(builtins)) - {CHECK}
