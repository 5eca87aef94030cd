"""The registry of ops: the single source of the op catalogue.

Every op registers its class once (``@register``). Recipe validation, the catalogue
served at ``GET /v1/ops``, the recipe's JSON schema and the engine's plan are all
derived from what is registered here; nothing else lists the ops. The built-in ops
are the modules of :mod:`augsvc.ops`, found by walking the package, so adding an op
is adding one module. They are loaded on the first question asked of the registry.
Other modules can register ops too (``AUGSVC_OP_MODULES`` names them for the service).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TypeVar

from augsvc.ops.base import Op

OpClass = TypeVar("OpClass", bound=type[Op])

_ops: dict[str, type[Op]] = {}
_lock = threading.RLock()
_builtin_loaded = False
#: Bumped on every registration, so derived values (schemas) know when to rebuild.
_generation = 0


def register(cls: OpClass) -> OpClass:
    """Add an op class to the catalogue (a class decorator). Registering a second class
    under a name already taken is an error; the same class again is a no-op."""
    global _generation
    name = cls.name()
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs an `op: Literal[...] = '<name>'` field")
    with _lock:
        existing = _ops.get(name)
        if existing is cls:
            return cls
        if existing is not None:
            raise ValueError(f"op {name!r} is already registered by {existing.__module__}")
        _ops[name] = cls
        _generation += 1
    return cls


def _load_builtin() -> None:
    """Import every module of the ``augsvc.ops`` package once (each registers its op)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    with _lock:
        if _builtin_loaded:
            return
        package = importlib.import_module("augsvc.ops")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"augsvc.ops.{info.name}")
        _builtin_loaded = True


def op_class(name: str) -> type[Op] | None:
    _load_builtin()
    return _ops.get(name)


def op_names() -> list[str]:
    _load_builtin()
    return list(_ops)


def registered() -> list[type[Op]]:
    """Every op class, in catalogue order: geometric, colour, then the pixel ops, each
    group by name."""
    _load_builtin()
    rank = {"geometric": 0, "colour": 1}
    return sorted(_ops.values(), key=lambda cls: (rank.get(cls.kind, 2), cls.name()))


def generation() -> int:
    _load_builtin()
    return _generation


def import_op_modules(names: list[str]) -> None:
    """Import modules whose ops register themselves (custom ops named in settings);
    ValueError naming the module when one cannot be imported."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"op module {name!r} cannot be imported: {exc}") from exc
