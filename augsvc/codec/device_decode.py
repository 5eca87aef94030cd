"""Plain JPEGs decoded on a CUDA device, a whole batch in one nvJPEG call.

Only what the header shows to be a baseline 8-bit grey or RGB JPEG goes to the device
(progressive, CMYK, transparency and scaled decodes stay with libjpeg on the CPU), the
header sniff and the pixel budget having run on the CPU already. The EXIF orientation is
applied on the device as the CPU path applies it. Anything nvJPEG refuses or returns in
an unexpected shape falls back to the CPU decoder, whose errors name the file.

nvJPEG's inverse DCT and chroma upsampling are not libjpeg-turbo's: the pixels differ
from a CPU decode by a few grey levels, so this is a setting (``AUGSVC_DEVICE_DECODE``),
off unless asked for, and a replica's bytes follow its device and that setting.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augsvc.codec.decode import _ORIENTATIONS, ImageHeader, fast_channels


def device_decodable(header: ImageHeader) -> bool:
    """A baseline 8-bit grey or RGB JPEG without transparency."""
    info = header._image.info
    return (
        fast_channels(header._image, header.format) is not None
        and not info.get("progressive")
        and not info.get("progression")
    )


def decode_on_device(
    headers: Sequence[ImageHeader], device: torch.device
) -> list[torch.Tensor | None]:
    """Each decodable header's pixels, uint8 (C, H, W) on ``device`` in the displayed
    frame, from one batched call; None where the CPU must decode it."""
    out: list[torch.Tensor | None] = [None] * len(headers)
    rows = [i for i, h in enumerate(headers) if device_decodable(h)]
    if device.type != "cuda" or not rows:
        return out
    try:  # deprecated with the rest of torchvision.io in 0.29, still shipped; imported
        # here because importing torchvision costs a third of the service's start
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # pragma: no cover - depends on the installed torchvision
        return out
    data = [torch.frombuffer(bytearray(headers[i]._data), dtype=torch.uint8) for i in rows]
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.UNCHANGED, device=device)
    except RuntimeError:  # one bad file fails the batch: the CPU decodes (and names) it
        return out
    for i, pixels in zip(rows, decoded, strict=True):
        header = headers[i]
        channels = fast_channels(header._image, header.format)
        if tuple(pixels.shape) != (channels, header.height, header.width):
            continue
        transform = _ORIENTATIONS.get(header.orientation)
        out[i] = (transform(pixels) if transform else pixels).contiguous()
        header._image.close()
    return out
