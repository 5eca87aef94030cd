"""What the SDK hands back arrays as: numpy, or torch when asked for.

Its own module because both the wire formats (batches, stream frames) and the targets
read back with them convert arrays, and the wire decodes a frame's targets: with the
conversion here, each of them imports it from below instead of from the other.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Output = Literal["numpy", "torch"]


#: What a training machine without torch installs to get ``output="torch"``.
TORCH_EXTRA = "pip install 'augsvc-client[torch]'"
TORCH_EXTRA_FROM_CHECKOUT = "pip install './clients/python[torch]'"


def torch_module() -> Any:
    """torch, imported on demand: the SDK installs without it (torch is an extra), and
    someone who asked for torch tensors needs the command that adds it, not a bare
    ``No module named 'torch'``."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "output='torch' needs PyTorch, which this installation of augsvc_client "
            f"lacks: install the torch extra, {TORCH_EXTRA} (from a checkout: "
            f"{TORCH_EXTRA_FROM_CHECKOUT}), or torch itself for your CUDA; or ask for "
            "output='numpy'"
        ) from exc
    return torch


def check_output(output: str) -> None:
    """Refuse an output this installation cannot give before any request is sent, so a
    missing torch costs no upload and no augmentation on the server."""
    if output == "torch":
        torch_module()


def convert(value: Any, output: Output) -> Any:
    """A numpy array as the requested output type (torch is imported only when asked)."""
    if output == "numpy" or value is None:
        return value
    if output == "torch":
        return torch_module().from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
