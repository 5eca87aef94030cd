"""Server and SDK keep separate copies of the wire (the SDK never imports augsvc); these
tests hold each pair to the same behaviour: same input, same bytes or the same error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from augsvc_client import errors
from augsvc_client import request as sdk_request
from augsvc_client.inputs import sniff
from augsvc_client.wire import FrameBuffer, ImagesBody
from hypothesis import given, settings
from hypothesis import strategies as st

import augsvc.errors as server_errors
from augsvc import codec
from augsvc.codec import media_types
from augsvc.codec.decode import sniff_format
from tests import imagegen


def test_every_server_code_has_a_class_with_the_same_name_status_and_parent():
    for server_cls in server_errors.all_errors():
        sdk_cls = errors.BY_CODE.get(server_cls.code)
        assert sdk_cls is not None, f"SDK lacks a class for code {server_cls.code!r}"
        assert sdk_cls.__name__ == server_cls.__name__
        assert sdk_cls.status == server_cls.status
        if server_cls is not server_errors.AugsvcError:
            assert sdk_cls.__base__.__name__ == server_cls.__base__.__name__


@pytest.mark.parametrize("server_cls", server_errors.all_errors(), ids=lambda c: c.code)
def test_a_server_problem_becomes_the_matching_class(server_cls):
    err = server_cls("it broke") if server_cls is not server_errors.Overloaded else server_cls("x")
    problem = err.problem(instance="/v1/x")
    got = errors.from_problem(err.status, problem, err.headers)
    assert type(got).__name__ == server_cls.__name__
    assert (got.status, got.code, got.detail) == (err.status, err.code, err.detail)
    assert got.problem == problem


def test_field_paths_are_written_alike():
    for loc in [(), ("ops",), ("ops", 2, "degrees"), ("output", "fill", 0), ("body", "recipe")]:
        assert errors.format_loc(loc) == server_errors.format_loc(loc)


def test_media_types_are_the_same_strings():
    assert sdk_request.SAFETENSORS == media_types.SAFETENSORS
    assert sdk_request.STREAM == media_types.STREAM
    assert sdk_request.JSON == media_types.JSON
    assert sdk_request.ZIP == media_types.ZIP


@settings(max_examples=40, deadline=None)
@given(
    blobs=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20),
)
def test_server_frames_split_back_into_the_same_blobs_in_the_sdk(blobs, cuts):
    """However the network chunks a stream, the SDK hands back exactly the server's blobs,
    and the server's own incremental reader agrees on every prefix."""
    stream = b"".join(codec.frame(blob) for blob in blobs)
    buffer, received, position = FrameBuffer(), [], 0
    for cut in [*cuts, len(stream)]:
        chunk, position = stream[position : position + cut], position + cut
        received.extend(buffer.feed(chunk))
    assert received == blobs and buffer.pending == 0
    rest, parsed = stream, []
    while (got := codec.read_frame(rest)) is not None:
        parsed.append(got[0])
        rest = rest[got[1] :]
    assert parsed == blobs and rest == b""


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(
        st.integers(1, 3), st.sampled_from([1, 3, 4]), st.integers(1, 9), st.integers(1, 9)
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_sdk_upload_is_byte_for_byte_the_servers_safetensors(shape, seed):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    sdk = bytes(ImagesBody(array))
    server = codec.images_to_safetensors({"images": torch.from_numpy(array)})
    assert sdk == server
    decoded = codec.read_image_batch(bytearray(sdk), max_images=8, max_pixels=10**6)
    assert np.array_equal(decoded.numpy(), array)


_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
          "BMP": "image/bmp", "TIFF": "image/tiff", None: "application/octet-stream"}  # fmt: skip


def test_both_sides_sniff_every_format_alike(tmp_path):
    files = [path.read_bytes() for path in imagegen.write_images(tmp_path).values()]
    heads = [b"", b"\x00" * 12, b"RIFF\x00\x00\x00\x00WEBX", b"II+\x00", b"MM\x00+", b"BMx"]
    for data in files + heads:
        assert _TYPES[sniff_format(data)] == sniff(data)[0], data[:12]
