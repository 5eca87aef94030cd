"""What the SDK hands back arrays as: numpy, or torch when asked for.

Its own module because both the wire formats (batches, stream frames) and the targets
read back with them convert arrays, and the wire decodes a frame's targets: with the
conversion here, each of them imports it from below instead of from the other.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Output = Literal["numpy", "torch"]


def convert(value: Any, output: Output) -> Any:
    """A numpy array as the requested output type (torch is imported only when asked)."""
    if output == "numpy" or value is None:
        return value
    if output == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
