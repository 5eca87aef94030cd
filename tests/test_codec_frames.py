"""augsvc.codec.frames: length-prefixed stream frames."""

from __future__ import annotations

import torch

from augsvc import codec


def test_frame_layout_is_length_prefixed() -> None:
    assert codec.frame(b"abc") == b"\x03\x00\x00\x00\x00\x00\x00\x00abc"
    assert codec.frame(b"") == b"\x00" * 8


def test_read_frame_is_incremental() -> None:
    stream = codec.frame(b"hello") + codec.frame(b"world!")
    assert codec.read_frame(stream[:5]) is None
    assert codec.read_frame(stream[:12]) is None
    blob, used = codec.read_frame(stream)
    assert (blob, used) == (b"hello", 13)
    assert codec.read_frame(memoryview(stream)[used:]) == (b"world!", 14)


def test_frames_carry_safetensors_batches() -> None:
    batches = [torch.full((1, 1, 2, 2), i, dtype=torch.uint8) for i in range(3)]
    stream = b"".join(codec.frame(codec.images_to_safetensors({"images": b})) for b in batches)
    read = []
    while (got := codec.read_frame(stream)) is not None:
        blob, used = got
        read.append(codec.read_image_batch(blob, max_images=1, max_pixels=4))
        stream = stream[used:]
    assert stream == b""
    assert all(torch.equal(a, b) for a, b in zip(read, batches, strict=True))
