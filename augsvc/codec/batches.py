"""safetensors batches: the ``application/x-safetensors`` bodies of ``/v1/augment``.

The writer is our own (one copy of each tensor into the output); the reader validates
the header against the limits before touching pixels and returns the image tensor as a
zero-copy view of the request buffer.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping

import torch

from augsvc.documents import MAX_NESTING, TooDeep, check_json_nesting
from augsvc.errors import (
    FieldError,
    ImageTooLarge,
    TooManyImages,
    UndecodableImage,
    ValidationFailed,
)

#: Largest JSON header of an uploaded batch. It describes a few tensors in a few hundred
#: bytes; safetensors' own cap (100 MB) is meant for model files, and a header that size
#: would only have json.loads build millions of Python objects out of one request.
_MAX_SAFETENSORS_HEADER = 1024 * 1024


_SAFETENSORS_DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
}


def images_to_safetensors(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialise tensors (moved to CPU, made contiguous) as a safetensors blob.

    Written here rather than by ``safetensors.torch.save`` for two reasons: the bytes
    must not depend on the process (the Rust writer emits ``__metadata__`` in HashMap
    order, randomised per process, so replicas would answer one request differently),
    and a response is tens of MB, so it is assembled with a single copy. Tensors are
    laid out as the reference writer does (widest dtype first, then by name), which
    keeps every tensor aligned; the header is padded to 8 bytes.
    """
    prepared = []
    for name, tensor in tensors.items():
        value = tensor.detach().to("cpu").contiguous()
        if value.dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {value.dtype} has no safetensors name")
        prepared.append((name, value))
    prepared.sort(key=lambda item: (-item[1].element_size(), item[0]))
    header: dict[str, object] = {}
    buffers = []
    offset = 0
    for name, value in prepared:
        size = value.numel() * value.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [offset, offset + size],
        }
        buffers.append(value.view(-1).view(torch.uint8).numpy() if size else b"")
        offset += size
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    encoded += b" " * (-len(encoded) % 8)
    return b"".join([struct.pack("<Q", len(encoded)), encoded, *buffers])


def read_image_batch(data: bytes | bytearray, *, max_images: int, max_pixels: int) -> torch.Tensor:
    """The uint8 ``images`` tensor (N, C, H, W) of an uploaded safetensors body.

    The header is parsed and every field checked against the body and the limits before a
    byte of tensor data is copied; pickle is never involved. Raises
    :class:`UndecodableImage` (not safetensors / inconsistent header),
    :class:`ValidationFailed` (no ``images``, wrong dtype, rank or channels),
    :class:`TooManyImages` and :class:`ImageTooLarge`.
    """
    header, body_start = _safetensors_header(data)
    entry = header.get("images")
    if entry is None:
        names = ", ".join(repr(k) for k in header if k != "__metadata__") or "none"
        raise _batch_error(f"safetensors body has no tensor named 'images' (tensors: {names})")
    if not isinstance(entry, dict):
        raise UndecodableImage("safetensors header entry for 'images' is not an object")
    shape = _batch_shape(entry, max_images=max_images, max_pixels=max_pixels)
    start, end = _batch_offsets(entry, shape, body_len=len(data) - body_start)
    if isinstance(data, bytearray):  # writable: view the pixels where they already are
        flat = torch.frombuffer(
            data, dtype=torch.uint8, count=end - start, offset=body_start + start
        )
    else:
        flat = torch.frombuffer(
            bytearray(memoryview(data)[body_start + start : body_start + end]), dtype=torch.uint8
        )
    return flat.view(shape)


def _safetensors_header(data: bytes) -> tuple[dict[str, object], int]:
    """Parse ``u64 little-endian header length`` + JSON; returns (header, body offset)."""
    if len(data) < 8:
        raise UndecodableImage(
            f"body is not a safetensors file: {len(data)} bytes, shorter than the "
            "8-byte header length"
        )
    (header_len,) = struct.unpack_from("<Q", data)
    if header_len > len(data) - 8:
        raise UndecodableImage(
            f"body is not a valid safetensors file: header length {header_len} is larger "
            f"than the {len(data) - 8} bytes that follow it"
        )
    if header_len > _MAX_SAFETENSORS_HEADER:
        raise UndecodableImage(
            f"safetensors header of {header_len} bytes is larger than the limit of "
            f"{_MAX_SAFETENSORS_HEADER} bytes for an uploaded batch"
        )
    try:
        text = bytes(memoryview(data)[8 : 8 + header_len]).decode("utf-8")
        check_json_nesting(text)
        header = json.loads(text, object_pairs_hook=_unique_keys)
    except DuplicateKey as exc:
        raise _layout_error(exc.key, f"safetensors header: key {exc.key!r} appears twice") from None
    except TooDeep as exc:
        raise UndecodableImage(
            f"body is not a valid safetensors file: its header {exc} (MAX_NESTING = {MAX_NESTING})"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UndecodableImage(
            f"body is not a valid safetensors file: header is not JSON ({exc})"
        ) from exc
    if not isinstance(header, dict):
        raise UndecodableImage("body is not a valid safetensors file: header is not an object")
    _check_layout(header, len(data) - 8 - header_len)
    return header, 8 + header_len


class DuplicateKey(ValueError):
    """A JSON object names one key twice: which value a reader takes is the reader's
    choice (Python's the last, others the first), so the server and a client could read
    two different tensors out of one body."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _check_layout(header: dict[str, object], body_len: int) -> None:
    """Every tensor's ``data_offsets`` inside the data section, the tensors tiling it
    exactly as safetensors requires: none overlapping another (two tensors sharing bytes
    would let a write through one change the other), no gap and nothing after the last
    (bytes that no tensor owns are smuggled, not data)."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            raise _layout_error(name, f"safetensors header entry for {name!r} is not an object")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise _layout_error(name, f"safetensors header: {name!r} has malformed data_offsets")
        spans.append((offsets[0], offsets[1], name))
    position, previous = 0, None
    for start, end, name in sorted(spans):
        if start < position:
            raise _layout_error(
                name,
                f"safetensors header: the data_offsets of {name!r} [{start}, {end}] overlap "
                f"those of {previous!r}, which end at {position}",
            )
        if start > position:
            raise _layout_error(
                name,
                f"safetensors header: bytes {position}..{start} of the data section belong "
                f"to no tensor (the next, {name!r}, starts at {start})",
            )
        position, previous = end, name
    if position > body_len:
        raise _layout_error(
            previous or "",
            f"safetensors header: the data_offsets of {previous!r} end at byte {position}, "
            f"past the {body_len}-byte data section",
        )
    if position < body_len:
        raise _layout_error(
            previous or "",
            f"safetensors body: {body_len - position} trailing bytes after the last tensor "
            f"(the tensors end at byte {position} of a {body_len}-byte data section)",
        )


def _layout_error(name: str, detail: str) -> UndecodableImage:
    return UndecodableImage(detail, errors=[FieldError((name,), detail)])


def _batch_shape(
    entry: dict[str, object], *, max_images: int, max_pixels: int
) -> tuple[int, int, int, int]:
    dtype = entry.get("dtype")
    if dtype != "U8":
        raise _batch_error(
            f"tensor 'images' must have dtype uint8 (safetensors 'U8'), got {dtype!r}"
        )
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise UndecodableImage(f"safetensors header: 'images' has a malformed shape {shape!r}")
    if len(shape) != 4:
        raise _batch_error(
            f"tensor 'images' must have 4 dimensions (N, C, H, W), got shape {shape}"
        )
    n, c, h, w = shape
    if c not in (1, 3, 4):
        raise _batch_error(
            f"tensor 'images' must have 1, 3 or 4 channels (N, C, H, W), got C={c} in shape {shape}"
        )
    if n < 1 or h < 1 or w < 1:
        raise _batch_error(f"tensor 'images' is empty: shape {shape}")
    if n > max_images:
        raise TooManyImages(
            f"tensor 'images' holds {n} images, more than the limit of {max_images}"
        )
    if h * w > max_pixels:
        raise ImageTooLarge(
            f"tensor 'images' has {w}x{h} = {h * w} pixels per image, "
            f"more than the limit of {max_pixels}"
        )
    return n, c, h, w


def _batch_offsets(
    entry: dict[str, object], shape: tuple[int, ...], *, body_len: int
) -> tuple[int, int]:
    offsets = entry.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise UndecodableImage(
            f"safetensors header: 'images' has malformed data_offsets {offsets!r}"
        )
    start, end = offsets
    expected = math.prod(shape)
    if end - start != expected or end > body_len:
        raise UndecodableImage(
            f"safetensors header: 'images' data_offsets {offsets} do not hold the "
            f"{expected} bytes of shape {list(shape)} within the {body_len}-byte data section"
        )
    return start, end


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _batch_error(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[FieldError(("images",), detail)])


_NUMPY_DTYPES = {"U8": "u1", "I16": "<i2", "I32": "<i4", "I64": "<i8", "F32": "<f4",
                 "F64": "<f8", "U16": "<u2"}  # fmt: skip


def read_named_tensor(data: bytes | bytearray, name: str, dtypes: tuple[str, ...]):
    """Tensor ``name`` of a safetensors body as a numpy array (a copy), or None when the
    body has none; checked like ``images``: a dtype among ``dtypes``, offsets inside the
    body. UndecodableImage for an inconsistent header, ValidationFailed naming it for a
    wrong dtype."""
    import numpy as np

    header, body_start = _safetensors_header(data)
    entry = header.get(name)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise UndecodableImage(f"safetensors header entry for {name!r} is not an object")
    dtype = entry.get("dtype")
    if dtype not in dtypes:
        detail = f"tensor {name!r} must have dtype {' or '.join(dtypes)}, got {dtype!r}"
        raise ValidationFailed(detail, errors=[FieldError((name,), detail)])
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if (
        not isinstance(shape, list)
        or not all(_is_count(d) for d in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
    ):
        raise UndecodableImage(f"safetensors header: {name!r} has a malformed shape or offsets")
    item = np.dtype(_NUMPY_DTYPES[str(dtype)])
    start, end = offsets
    if end - start != math.prod(shape) * item.itemsize or end > len(data) - body_start:
        raise UndecodableImage(f"safetensors header: {name!r} data_offsets do not match its shape")
    flat = np.frombuffer(memoryview(data)[body_start + start : body_start + end], dtype=item)
    return flat.reshape(shape).copy()
