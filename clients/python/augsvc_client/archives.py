"""Zip answers of ``POST /v1/augment``, read back as a list of (C, H, W) arrays.

One safetensors tensor holds one shape, so samples that end at different sizes or
channel counts (a recipe without a crop or resize, grey and colour images under
``output.channels: auto``) come back as a zip of lossless PNGs instead, entry ``i`` the
``i``-th image of the request. Decoding needs Pillow (the ``images`` extra).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np


def read_png_zip(data: bytes) -> list[np.ndarray]:
    """The images of a zip of PNGs, in entry-name order, each (C, H, W) uint8 with C the
    PNG's own channel count (1 grey, 3 RGB, 4 RGBA)."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "output='list' decodes the server's PNGs, which needs Pillow: "
            "pip install 'augsvc_client[images]'"
        ) from exc
    images = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in sorted(archive.namelist()):
            with Image.open(io.BytesIO(archive.read(name))) as image:
                image.load()
                hwc = np.asarray(image)
            images.append(hwc[np.newaxis] if hwc.ndim == 2 else np.moveaxis(hwc, -1, 0).copy())
    return images
