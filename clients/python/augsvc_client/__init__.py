"""Python client SDK for the augsvc image-augmentation service.

The package depends only on httpx, numpy, safetensors and pyyaml; torch is an
optional extra (``pip install augsvc_client[torch]``). Nothing here imports torch
at import time: torch-based helpers live in submodules that are imported
explicitly, e.g. ``from augsvc_client.regularization import WeightPenalty``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
