"""augsvc.codec.batches: the safetensors writer (deterministic, one copy) and the upload reader
(header checked against the limits before any pixel is touched)."""

from __future__ import annotations

import json
import struct

import pytest
import safetensors.torch
import torch

from augsvc import codec
from augsvc.errors import ImageTooLarge, TooManyImages, UndecodableImage, ValidationFailed
from tests import imagegen


def test_images_to_safetensors_round_trips_with_metadata() -> None:
    batch = torch.arange(2 * 3 * 4 * 5, dtype=torch.int64).remainder(256).to(torch.uint8)
    batch = batch.view(2, 3, 4, 5)
    keys = torch.tensor([10, 11])
    blob = codec.images_to_safetensors(
        {"images": batch.transpose(-1, -2), "keys": keys}, {"epoch": "3"}
    )
    loaded = safetensors.torch.load(blob)
    assert torch.equal(loaded["images"], batch.transpose(-1, -2))
    assert torch.equal(loaded["keys"], keys)
    header_len = struct.unpack_from("<Q", blob)[0]
    assert json.loads(blob[8 : 8 + header_len])["__metadata__"] == {"epoch": "3"}


def test_images_to_safetensors_accepts_slices_of_one_batch() -> None:
    batch = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    blob = codec.images_to_safetensors({"a": batch[:2], "b": batch[2:]}, None)
    assert set(safetensors.torch.load(blob)) == {"a", "b"}


def test_read_image_batch_round_trip() -> None:
    batch = torch.randint(0, 256, (3, 4, 6, 5), dtype=torch.uint8, generator=torch.Generator())
    blob = codec.images_to_safetensors({"images": batch, "keys": torch.arange(3)})
    read = codec.read_image_batch(blob, max_images=3, max_pixels=30)
    assert read.dtype == torch.uint8
    assert torch.equal(read, batch)
    read[0, 0, 0, 0] = 1  # the result owns writable memory


def _batch_error(data: bytes, **limits: int) -> Exception:
    with pytest.raises(Exception) as info:
        codec.read_image_batch(
            data,
            max_images=limits.get("max_images", 8),
            max_pixels=limits.get("max_pixels", 10_000),
        )
    return info.value


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", UndecodableImage, ["safetensors", "8-byte"]),
        (imagegen.jpeg_bytes(8, 8), UndecodableImage, ["safetensors", "header length"]),
        (
            imagegen.tensor_safetensors((2, 3, 4, 4), "F32"),
            ValidationFailed,
            ["uint8", "F32"],
        ),
        (imagegen.tensor_safetensors((3, 4, 4), "U8"), ValidationFailed, ["4 dimensions"]),
        (imagegen.tensor_safetensors((1, 2, 4, 4), "U8"), ValidationFailed, ["C=2"]),
        (imagegen.tensor_safetensors((0, 3, 4, 4), "U8"), ValidationFailed, ["empty"]),
        (
            imagegen.tensor_safetensors((1, 3, 4, 4), "U8", name="pixels"),
            ValidationFailed,
            ["'images'", "'pixels'"],
        ),
        (imagegen.tensor_safetensors((9, 3, 4, 4), "U8"), TooManyImages, ["9 images", "8"]),
        (imagegen.tensor_safetensors((1, 3, 200, 51), "U8"), ImageTooLarge, ["10200", "10000"]),
        (
            imagegen.raw_safetensors(
                {"images": {"dtype": "U8", "shape": [1, 1, 2, 2], "data_offsets": [0, 4]}},
                b"\x00" * 4,
                header_len=10**6,
            ),
            UndecodableImage,
            ["header length 1000000", "larger"],
        ),
        (
            imagegen.raw_safetensors(
                {"images": {"dtype": "U8", "shape": [1, 1, 2, 2], "data_offsets": [0, 4]}},
                b"\x00" * 3,
            ),
            UndecodableImage,
            ["data_offsets"],
        ),
        (
            imagegen.raw_safetensors(
                {"images": {"dtype": "U8", "shape": [1, 1, 2, 2], "data_offsets": [0, 5]}},
                b"\x00" * 5,
            ),
            UndecodableImage,
            ["data_offsets", "4 bytes"],
        ),
        (
            imagegen.raw_safetensors(
                {"images": {"dtype": "U8", "shape": [1, 1, True, 2], "data_offsets": [0, 2]}},
                b"\x00" * 2,
            ),
            UndecodableImage,
            ["malformed shape"],
        ),
        (struct.pack("<Q", 4) + b"{{{{", UndecodableImage, ["not JSON"]),
        (struct.pack("<Q", 2) + b"[]", UndecodableImage, ["not an object"]),
    ],
    ids=[
        "empty",
        "jpeg-body",
        "float32",
        "rank3",
        "two-channels",
        "zero-images",
        "missing-images",
        "too-many",
        "too-many-pixels",
        "header-length-too-big",
        "data-past-end",
        "offsets-disagree-with-shape",
        "bool-in-shape",
        "bad-json",
        "json-array",
    ],
)
def test_read_image_batch_refusals(data: bytes, error: type, words: list[str]) -> None:
    raised = _batch_error(data)
    assert type(raised) is error
    for word in words:
        assert word in raised.detail


def test_read_image_batch_validation_errors_name_the_field() -> None:
    raised = _batch_error(imagegen.tensor_safetensors((2, 3, 4, 4), "F32"))
    assert isinstance(raised, ValidationFailed)
    assert raised.errors[0].loc == ("images",)


def test_safetensors_bytes_do_not_depend_on_metadata_order():
    """Replicas must answer identical requests with identical bytes."""
    tensors = {"images": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "keys": torch.arange(2)}
    metadata = {f"k{i}": str(i) for i in range(12)}
    reordered = dict(reversed(list(metadata.items())))
    a = codec.images_to_safetensors(tensors, metadata)
    assert a == codec.images_to_safetensors(tensors, reordered)
    header = a[8 : 8 + int.from_bytes(a[:8], "little")]
    assert header.index(b'"k0"') < header.index(b'"k1"') < header.index(b'"k9"')


def test_safetensors_writer_round_trips_through_the_reference_reader():
    import safetensors.torch

    tensors = {
        "images": torch.randint(0, 256, (3, 3, 5, 7), dtype=torch.uint8),
        "keys": torch.arange(3),
        "odd": torch.ones(5, dtype=torch.uint8),  # odd size before wider dtypes
        "matrix": torch.randn(3, 3, 3, dtype=torch.float64),
        "flags": torch.tensor([True, False, True]),
        "half": torch.randn(4, dtype=torch.bfloat16),
        "f32": torch.randn(2, 2),
        "empty": torch.zeros(0, 4, dtype=torch.int32),
        "strided": torch.arange(20).view(4, 5).t(),  # non-contiguous input
    }
    blob = codec.images_to_safetensors(tensors, {"seed": "7"})
    back = safetensors.torch.load(blob)
    assert set(back) == set(tensors)
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and torch.equal(back[name], value), name
    assert int.from_bytes(blob[:8], "little") % 8 == 0


def test_uploaded_batch_is_a_view_of_a_writable_body():
    """The service reads bodies into a bytearray; the tensor must not copy 36 MB again."""
    images = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    body = bytearray(codec.images_to_safetensors({"images": images}))
    batch = codec.read_image_batch(body, max_images=4, max_pixels=100)
    assert torch.equal(batch, images)
    body[-1] ^= 0xFF  # the last pixel lives in the body itself
    assert batch.flatten()[-1] == images.flatten()[-1] ^ 0xFF
    immutable = codec.read_image_batch(bytes(body), max_images=4, max_pixels=100)
    assert torch.equal(immutable, batch)
