"""Image decode/encode and the wire formats of augsvc (safetensors batches, stream frames, zip).

Everything here is a pure function of its arguments: limits such as ``max_pixels`` are passed
in by the caller (the API reads them from ``Settings``), and nothing knows about HTTP, Redis or
configuration. Anything a client can get wrong is raised as a typed error from
:mod:`augsvc.errors`; Pillow's and torchvision's own exceptions never escape, so bad uploads
become a 4xx and never a 500.

Decoded images are always ``uint8`` tensors of shape ``(C, H, W)`` with ``C`` in ``{1, 3, 4}``
(grey, RGB, RGBA): that is the only layout the engine has to handle.

- :mod:`.decode`: uploads to tensors (sniffing, pixel limit, EXIF orientation), their
  headers alone (size before decoding), and JPEGs at a reduced scale (DCT scaling).
- :mod:`.encode`: tensors to PNG/JPEG; the bundled sample photo.
- :mod:`.batches`: safetensors bodies in and out.
- :mod:`.frames`: ``application/x-augsvc-stream`` frames.
- :mod:`.archive`: deterministic ZIP answers.
"""

from augsvc.codec.archive import make_zip
from augsvc.codec.batches import images_to_safetensors, read_image_batch
from augsvc.codec.decode import ImageHeader, ScaledImage, decode_image, probe_image
from augsvc.codec.encode import encode_jpeg, encode_png, sample_photo_bytes
from augsvc.codec.frames import FRAME_HEADER_BYTES, frame, read_frame

__all__ = [
    "FRAME_HEADER_BYTES",
    "ImageHeader",
    "ScaledImage",
    "decode_image",
    "encode_jpeg",
    "encode_png",
    "frame",
    "images_to_safetensors",
    "make_zip",
    "probe_image",
    "read_frame",
    "read_image_batch",
    "sample_photo_bytes",
]
