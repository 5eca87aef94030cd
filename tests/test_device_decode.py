"""Which uploads nvJPEG may decode is read from the header on the CPU: baseline 8-bit
grey or RGB JPEGs only. Without CUDA nothing goes to the device and a planned decode is
exactly the CPU's; with CUDA the batched decode is within a few grey levels of libjpeg,
oriented the same way."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from augsvc.codec import probe_image
from augsvc.codec.device_decode import decode_on_device, device_decodable
from augsvc.engine import compile_plan
from augsvc.pipeline.decode import plan_decode
from augsvc.recipes import parse_recipe
from tests.photos import photo


def _jpeg(mode: str = "RGB", orientation: int = 1, **save) -> bytes:
    image = Image.fromarray(photo(60, 80).permute(1, 2, 0).numpy()).convert(mode)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif, **save)
    return out.getvalue()


def _png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo(20, 30).permute(1, 2, 0).numpy()).save(out, "PNG")
    return out.getvalue()


def _header(data: bytes):
    return probe_image(data, max_pixels=10**7)


def test_only_baseline_grey_and_rgb_jpegs_are_device_decodable():
    assert device_decodable(_header(_jpeg("RGB")))
    assert device_decodable(_header(_jpeg("L")))
    assert device_decodable(_header(_jpeg("RGB", orientation=6)))
    assert not device_decodable(_header(_jpeg("RGB", progressive=True)))
    assert not device_decodable(_header(_jpeg("CMYK")))
    assert not device_decodable(_header(_png()))


def test_without_a_cuda_device_every_image_decodes_on_the_cpu_as_before():
    uploads = [_jpeg("RGB"), _jpeg("L", orientation=3), _png(), _jpeg("RGB", progressive=True)]
    assert decode_on_device([_header(d) for d in uploads], torch.device("cpu")) == [None] * 4
    plan = compile_plan(parse_recipe({"ops": [{"op": "random_resized_crop", "size": 16}]}))
    keys = np.arange(4)
    plain = plan_decode(plan, [_header(d) for d in uploads], seed=1, keys=keys).decode()
    on_cpu = plan_decode(plan, [_header(d) for d in uploads], seed=1, keys=keys).decode(
        torch.device("cpu")
    )
    for a, b in zip(plain, on_cpu, strict=True):
        assert torch.equal(a.pixels, b.pixels) and a.full_hw == b.full_hw


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nvjpeg_decodes_a_batch_close_to_libjpeg_and_oriented_alike():
    uploads = [_jpeg("RGB"), _jpeg("L"), _jpeg("RGB", orientation=6), _jpeg("RGB", orientation=3),
               _png(), _jpeg("RGB", progressive=True)]  # fmt: skip
    got = decode_on_device([_header(d) for d in uploads], torch.device("cuda"))
    assert got[4] is None and got[5] is None
    for data, pixels in zip(uploads[:4], got[:4], strict=True):
        want = _header(data).decode()
        assert pixels is not None and pixels.device.type == "cuda"
        assert pixels.shape == want.shape
        diff = (pixels.cpu().int() - want.int()).abs()
        assert float(diff.float().mean()) < 1.0 and int(diff.max()) <= 16
