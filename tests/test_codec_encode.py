"""augsvc.codec.encode: PNG exact, JPEG close, bad tensors refused as caller bugs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsvc import codec
from tests import imagegen
from tests.codec_helpers import decode, mean_abs_error

# codec uses torchvision.io on purpose (fast JPEG path); its per-call deprecation
# warning (torchvision 0.29, successor TorchCodec) is not this suite's subject.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_encode_png_round_trips_exactly(channels: int) -> None:
    pixels = torch.from_numpy(np.moveaxis(imagegen.smooth_array(21, 13, channels), -1, 0).copy())
    data = codec.encode_png(pixels)
    assert data.startswith(b"\x89PNG")
    assert torch.equal(decode(data), pixels)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_encode_jpeg_is_close_and_drops_alpha(channels: int) -> None:
    pixels = torch.from_numpy(np.moveaxis(imagegen.smooth_array(160, 120, channels), -1, 0).copy())
    data = codec.encode_jpeg(pixels, quality=95)
    decoded = decode(data)
    expected = pixels[:3] if channels == 4 else pixels
    assert decoded.shape == expected.shape
    assert mean_abs_error(decoded, expected) < 2.0


def test_encode_accepts_non_contiguous_views() -> None:
    pixels = torch.from_numpy(np.moveaxis(imagegen.smooth_array(20, 10), -1, 0).copy())
    view = pixels.flip(-1)[:, :, 2:]
    assert torch.equal(decode(codec.encode_png(view)), view)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3, 4, 4, dtype=torch.float32), torch.zeros(2, 4, 4, dtype=torch.uint8)],
)
def test_encode_rejects_bad_tensors(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        codec.encode_png(bad)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode_jpeg(bad)
