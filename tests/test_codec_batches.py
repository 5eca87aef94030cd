"""augsvc.codec.batches: the safetensors writer (deterministic, one copy) and the upload reader
(header checked against the limits before any pixel is touched)."""

from __future__ import annotations

import json
import struct

import pytest
import safetensors.torch
import torch

from augsvc import codec
from augsvc.codec import targets as wire_targets
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
    sent = bytes(bytearray(blob))  # a copy: bytes(blob) would be blob itself
    read = codec.read_image_batch(blob, max_images=3, max_pixels=30)
    assert read.dtype == torch.uint8
    assert torch.equal(read, batch)
    read[0, 0, 0, 0] = int(batch[0, 0, 0, 0]) ^ 0xFF
    # The result owns its memory: an immutable upload is copied, never written through.
    assert read[0, 0, 0, 0] == batch[0, 0, 0, 0] ^ 0xFF
    assert blob == sent


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


# --- the layout of an uploaded body ------------------------------------------------------


def _images_and(extra: dict[str, object], payload: bytes = b"") -> bytes:
    """A 1x1x2x2 ``images`` tensor at [0, 4] and ``extra`` entries, with ``payload``
    after the image bytes."""
    header = {"images": {"dtype": "U8", "shape": [1, 1, 2, 2], "data_offsets": [0, 4]}, **extra}
    return imagegen.raw_safetensors(header, bytes(range(4)) + payload)


@pytest.mark.parametrize(
    ("data", "named", "words"),
    [
        (
            _images_and({"keys": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, b"xx"),
            "keys",
            ["overlap", "'images'", "'keys'"],
        ),
        (
            _images_and({"keys": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}),
            "keys",
            ["overlap"],
        ),
        (_images_and({}, b"\0" * 8), "images", ["8 trailing bytes", "last tensor"]),
        (
            _images_and({"keys": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]}}, b"-" * 4),
            "keys",
            ["bytes 4..6", "no tensor"],
        ),
        (
            _images_and({"keys": {"dtype": "U8", "shape": [2], "data_offsets": [6, 4]}}),
            "keys",
            ["malformed data_offsets"],
        ),
        (_images_and({"keys": [0, 4]}), "keys", ["not an object"]),
    ],
    ids=["overlap", "alias", "trailing", "gap", "reversed", "not-an-object"],
)
def test_a_body_whose_tensors_do_not_tile_its_data_is_refused(data, named, words) -> None:
    raised = _batch_error(data)
    assert type(raised) is UndecodableImage
    assert raised.status == 422 and raised.errors[0].loc == (named,)
    for word in words:
        assert word in raised.detail, raised.detail
    with pytest.raises(UndecodableImage):  # the targets' reader shares the check
        wire_targets.targets_from_tensors(data, 1, (2, 2))


def test_a_header_naming_a_key_twice_is_refused() -> None:
    """Python's reader keeps the last of two ``images``, the reference one refuses the
    file: the server and a client must not see two different batches in one body."""
    entry = '{"dtype":"U8","shape":[1,1,2,2],"data_offsets":[0,4]}'
    text = f'{{"images":{entry},"images":{entry}}}'.encode()
    data = struct.pack("<Q", len(text)) + text + bytes(4)
    raised = _batch_error(data)
    assert type(raised) is UndecodableImage
    assert "'images' appears twice" in raised.detail and raised.errors[0].loc == ("images",)
    nested = b'{"__metadata__":{"a":"1","a":"2"}}'
    raised = _batch_error(struct.pack("<Q", len(nested)) + nested)
    assert "'a' appears twice" in raised.detail


def test_a_body_the_writer_makes_passes_the_layout_check() -> None:
    tensors = {
        "images": torch.zeros(2, 3, 4, 5, dtype=torch.uint8),
        "keys": torch.arange(2),
        "empty": torch.zeros(0, dtype=torch.int32),
        "odd": torch.ones(3, dtype=torch.uint8),
    }
    assert codec.read_image_batch(
        codec.images_to_safetensors(tensors, {"m": "1"}), max_images=2, max_pixels=20
    ).shape == (2, 3, 4, 5)


def _boxes_body(boxes_on: list[int]) -> bytes:
    images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    boxes = torch.zeros(len(boxes_on), 5, dtype=torch.float32)
    boxes[:, 0] = torch.tensor(boxes_on, dtype=torch.float32)
    boxes[:, 3:] = 1
    return codec.images_to_safetensors({"images": images, "boxes": boxes})


def test_a_safetensors_body_has_the_multipart_limit_of_boxes_per_image() -> None:
    limit = wire_targets.MAX_BOXES
    read = wire_targets.targets_from_tensors(_boxes_body([0] * limit + [1] * limit), 2, (4, 4))
    assert read is not None and [len(t.boxes) for t in read] == [limit, limit]
    with pytest.raises(ValidationFailed) as refused:
        wire_targets.targets_from_tensors(_boxes_body([1] * (limit + 1) + [0]), 2, (4, 4))
    assert refused.value.errors[0].loc == ("boxes",)
    assert f"at most {limit} boxes per image, got {limit + 1} on image 1" in refused.value.detail
