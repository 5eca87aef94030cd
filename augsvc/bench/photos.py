"""Real photos for benchmarks: the RGB photos bundled in scikit-image's wheel.

Only files shipped inside the wheel are used (no pooch download), so the bench runs
offline. Each photo is centre-cropped to the target aspect ratio and resized with
Pillow's LANCZOS filter, then the set is cycled to the requested count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

INSTALL_HINT = "pip install 'augsvc[bench]'"

# RGB photographs shipped in skimage/data (synthetic images, greyscale and RGBA ones
# are left out; motorcycle_right is nearly a copy of motorcycle_left).
PHOTO_FILES = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",  # immunohistochemistry
    "motorcycle_left.png",
    "retina.jpg",
)


class BenchDependencyError(RuntimeError):
    """An optional benchmark dependency is missing."""


def skimage_data_dir() -> Path:
    try:
        import skimage.data
    except ImportError as exc:
        raise BenchDependencyError(
            f"the benchmark photos come from scikit-image, which is not installed: {INSTALL_HINT}"
        ) from exc
    return Path(skimage.data.__file__).parent


def bench_photos(n: int = 64, size: tuple[int, int] = (375, 500)) -> list[np.ndarray]:
    """``n`` real photos as (H, W, 3) uint8 RGB arrays of ``size`` = (H, W).

    The bundled photos are cycled to reach ``n``; cycled entries are copies, so no
    two list items share memory.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    height, width = size
    data_dir = skimage_data_dir()
    photos = []
    for name in PHOTO_FILES:
        path = data_dir / name
        if not path.is_file():
            continue
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        fitted = ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS)
        photos.append(np.asarray(fitted, dtype=np.uint8))
    if not photos:
        raise BenchDependencyError(
            f"no bundled photos found in {data_dir}; reinstall scikit-image: {INSTALL_HINT}"
        )
    return [photos[i % len(photos)].copy() for i in range(n)]
