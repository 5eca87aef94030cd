"""Python client SDK for the augsvc image-augmentation service.

The package depends only on httpx, numpy, safetensors and pyyaml; torch is an
optional extra (``pip install augsvc_client[torch]``). Nothing here imports torch
at import time: torch-based helpers live in submodules that are imported
explicitly, e.g. ``from augsvc_client.torch_data import AugsvcIterableDataset`` or
``from augsvc_client.regularization import WeightPenalty``.

    from augsvc_client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as client:
        client.put_recipe("train", "recipe.yaml")
        batch = client.augment(["a.jpg", "b.png"], recipe="train", seed=1)
"""

from . import errors
from .async_client import AsyncClient
from .batches import AugmentedBatch, StreamBatch
from .client import Client
from .errors import AugsvcError
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AugmentedBatch",
    "AugsvcError",
    "Client",
    "RetryPolicy",
    "StreamBatch",
    "__version__",
    "errors",
]
