"""multipart/form-data bodies split into parts, in order, from bytes already in memory.

python-multipart is driven directly instead of through Starlette's form parser: the body
was read under the byte limit already, the image count is enforced while parsing (the
parser stops at the first part over the limit), and parts never touch temporary files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import (
    MAX_BOUNDARY_LENGTH,
    MultipartParser,
    MultipartState,
    parse_options_header,
)

from augsvc.errors import BadRequest, PayloadTooLarge, TooManyImages
from augsvc.recipes.documents import read_document
from augsvc.service.resolver import RecipeResolver, Resolved

RECIPE_PART = "recipe"
TARGETS_PART = "targets"
MASKS_PART = "masks"
#: Parts that are not images.
NAMED_PARTS = (RECIPE_PART, TARGETS_PART, MASKS_PART)


@dataclass
class Part:
    name: str
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)

    @property
    def label(self) -> str:
        """How errors refer to the part: its filename, else its field name."""
        return self.filename or self.name


@dataclass
class Upload:
    """The image parts in order, the inline recipe part (raw bytes) if there was one,
    and the targets: the ``targets`` JSON part and the ``masks`` files, in order."""

    images: list[Part]
    recipe: bytes | None
    targets: bytes | None = None
    masks: list[Part] = field(default_factory=list)


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a multipart Content-Type, refused with 400 when it is missing or
    longer than python-multipart accepts (RFC 2046 allows 70 characters; the parser
    takes up to ``MAX_BOUNDARY_LENGTH``): the parser would raise on it otherwise, before
    reading a byte, and that is the client's mistake, not a 500."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data body without a boundary in its Content-Type")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise BadRequest(
            f"the multipart boundary in the Content-Type is {len(boundary)} characters long; "
            f"at most {MAX_BOUNDARY_LENGTH} are accepted (RFC 2046 allows 70)"
        )
    return boundary


def parse_multipart(body: bytes, content_type: str, *, max_images: int) -> Upload:
    boundary = multipart_boundary(content_type)
    parts: list[Part] = []
    header_name = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}
    images = 0

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal images
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        part = Part(
            name=name,
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=headers.get(b"content-type", b"").decode("latin-1") or None,
        )
        if name not in NAMED_PARTS:
            images += 1
            if images > max_images:
                raise TooManyImages(
                    f"more than {max_images} images in one request (the limit); "
                    "split the batch into several requests"
                )
        parts.append(part)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += memoryview(data)[start:end]  # one copy, not a slice and a copy

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except (TooManyImages, BadRequest):
        raise
    except Exception as exc:
        raise BadRequest(f"malformed multipart/form-data body: {exc}") from exc
    if parser.state not in (MultipartState.END, MultipartState.BOUNDARY_PADDING):
        raise BadRequest("truncated multipart/form-data body: it ends before the closing boundary")
    recipes = [p for p in parts if p.name == RECIPE_PART]
    if len(recipes) > 1:
        raise BadRequest("more than one 'recipe' part")
    targets = [p for p in parts if p.name == TARGETS_PART]
    if len(targets) > 1:
        raise BadRequest("more than one 'targets' part")
    masks = [p for p in parts if p.name == MASKS_PART]
    if len(masks) > max_images:
        raise TooManyImages(f"more than {max_images} masks in one request (the image limit)")
    return Upload(
        images=[p for p in parts if p.name not in NAMED_PARTS],
        recipe=bytes(recipes[0].data) if recipes else None,
        targets=bytes(targets[0].data) if targets else None,
        masks=masks,
    )


def inline_recipe(raw: bytes, resolver: RecipeResolver, max_bytes: int) -> Resolved:
    """A multipart ``recipe`` part, read like a PUT body: the same size limit, the same
    parser (``/v1/augment`` and the draft preview both take one)."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            f"the 'recipe' part ({len(raw)} bytes) is larger than the limit of {max_bytes} "
            "bytes (AUGSVC_MAX_RECIPE_BYTES)"
        )
    document = read_document(raw, "json", source="the 'recipe' part", loc=("body", "recipe"))
    return resolver.inline(document)
