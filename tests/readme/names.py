"""Names the README's Python examples use without defining them, as a reader's own
training code would: a model, a loss, a batch of it, a number of epochs. Data the
examples read (files, datasets, recipes) is never provided here: it is shipped in
``examples/`` or made by a block above.

Only the names an example reads and never binds are built (see pyclaims.free_names),
so an example that uses a name listed nowhere fails, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _model() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2)
    )


def _criterion() -> Any:
    import torch

    return torch.nn.CrossEntropyLoss()


def _x() -> Any:
    """A batch for _model: 3x8x8 images, so 4x6x6 = 144 features after the convolution."""
    import torch

    return torch.rand(2, 3, 8, 8)


def _y() -> Any:
    import torch

    return torch.tensor([0, 1])


PROVIDED: dict[str, Callable[[], Any]] = {
    "model": _model,
    "criterion": _criterion,
    "x": _x,
    "y": _y,
    "epochs": lambda: 2,
}


def provide(names: set[str]) -> dict[str, Any]:
    """A namespace with ``names``; LookupError naming those nobody provides."""
    unknown = sorted(names - PROVIDED.keys())
    if unknown:
        raise LookupError(
            f"the example uses {', '.join(unknown)} without defining it: define it in the "
            "example, or add it to tests/readme/names.py if a reader's code would provide it"
        )
    return {name: PROVIDED[name]() for name in sorted(names)}
