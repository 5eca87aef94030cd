"""The one request builder both clients share, and the decoding of every answer.

Each endpoint is a function returning a :class:`Call`: what to send (method, path,
params, headers, body), whether it is idempotent (so may be retried), and how to decode
a successful response. ``Client`` and ``AsyncClient`` differ only in how they send a
Call and sleep between attempts; everything else about the HTTP contract lives here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import numpy as np

from .archives import read_png_zip
from .arrays import Output, check_output, convert
from .batches import AugmentedBatch
from .errors import AugsvcError, from_problem
from .inputs import prepare_images
from .targets import TargetsPayload, decode_targets, encode_targets
from .wire import ImagesBody, read_safetensors

SAFETENSORS = "application/x-safetensors"
ZIP = "application/zip"
STREAM = "application/x-augsvc-stream"
JSON = "application/json"
YAML = "application/yaml"

Decoder = Callable[[httpx.Response], Any]
#: What ``augment`` returns images as: one numpy array or torch tensor (N, C, H, W), or
#: a list of (C, H, W) numpy arrays that may differ in size and channel count.
AugmentOutput = Literal["numpy", "torch", "list"]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    decode: Decoder
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | ImagesBody | None = None
    files: list[Any] | None = None
    data: Mapping[str, str] | None = None
    idempotent: bool = True

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request (built afresh per attempt: multipart and chunked bodies are
        one-shot streams)."""
        headers = dict(self.headers)
        content: Any = self.content
        if isinstance(content, ImagesBody):
            headers["Content-Length"] = str(len(content))  # not chunked: sized up front
            content = content.achunks() if isinstance(http, httpx.AsyncClient) else content.chunks()
        return http.build_request(
            self.method,
            self.path,
            params=dict(self.params) if self.params else None,
            headers=headers,
            content=content,
            files=self.files,
            data=dict(self.data) if self.data else None,
        )


# --- decoding -----------------------------------------------------------------------


def error_for(response: httpx.Response) -> AugsvcError:
    """The typed exception for an error response (body must have been read)."""
    return from_problem(response.status_code, response.content, response.headers)


def decode_json(response: httpx.Response) -> Any:
    return response.json()


def json_member(key: str) -> Decoder:
    """Decode JSON and return one member (``{"recipes": [...]}`` -> the list)."""

    def decode(response: httpx.Response) -> Any:
        body = response.json()
        return body[key] if isinstance(body, dict) and key in body else body

    return decode


def decode_bytes(response: httpx.Response) -> bytes:
    return response.content


def decode_nothing(response: httpx.Response) -> None:
    return None


def _header_int(response: httpx.Response, name: str, default: int = 0) -> int:
    value = response.headers.get(name)
    return int(value) if value is not None and value.strip().lstrip("-").isdigit() else default


def list_decoder(offset: int) -> Decoder:
    """A zip of PNGs as a batch whose ``images`` is a list of (C, H, W) uint8 arrays."""

    def decode(response: httpx.Response) -> AugmentedBatch:
        images = read_png_zip(response.content)
        first = _header_int(response, "X-Augsvc-Offset", offset)
        return AugmentedBatch(
            images=images,
            keys=np.arange(first, first + len(images), dtype=np.int64),
            seed=_header_int(response, "X-Augsvc-Seed"),
            digest=response.headers.get("X-Augsvc-Recipe-Digest", ""),
        )

    return decode


def batch_decoder(output: Output, targets: TargetsPayload | None = None) -> Decoder:
    def decode(response: httpx.Response) -> AugmentedBatch:
        tensors, meta = read_safetensors(response.content)
        params = {
            name.removeprefix("params."): convert(value, output)
            for name, value in tensors.items()
            if name.startswith("params.")
        }
        seed = _header_int(response, "X-Augsvc-Seed", int(meta.get("seed", 0)))
        moved = None
        if targets is not None and "targets.boxes" in tensors:
            out_hw = tuple(int(v) for v in tensors["images"].shape[-2:])
            moved = decode_targets(tensors, targets.kinds, out_hw, output)  # type: ignore[arg-type]
        return AugmentedBatch(
            images=convert(tensors["images"], output),
            keys=convert(tensors.get("keys", np.zeros(0, np.int64)), output),
            params=params,
            seed=seed,
            digest=response.headers.get("X-Augsvc-Recipe-Digest", meta.get("digest", "")),
            targets=moved,
        )

    return decode


# --- endpoints ----------------------------------------------------------------------


def segment(value: str) -> str:
    """One path segment; ``@`` and ``:`` stay readable (``name@3``, ``sha256:...``)."""
    return quote(value, safe="@:")


RecipeSource = Mapping[str, Any] | str | Path | bytes


def recipe_body(recipe: RecipeSource) -> tuple[bytes, str]:
    """The body and Content-Type that send ``recipe``: a dict as JSON; a ``.json`` /
    ``.yaml`` / ``.yml`` file, or a document's bytes, as they are.

    Documents are not parsed here: the server reads them (under its nesting limit, with
    YAML anchors refused) and answers a 422 naming the field at fault, so one reader
    decides what a recipe document is.
    """
    if isinstance(recipe, Mapping):
        return _json_body(dict(recipe)), JSON
    if isinstance(recipe, bytes):
        return recipe, JSON if recipe.lstrip()[:1] in (b"{", b"[") else YAML
    path = Path(recipe)
    if not path.is_file():
        raise FileNotFoundError(f"recipe file {str(path)!r} does not exist")
    yaml_file = path.suffix.lower() in (".yaml", ".yml")
    return path.read_bytes(), YAML if yaml_file else JSON


def _json_body(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def put_recipe(name: str, recipe: RecipeSource, if_match: str | None) -> Call:
    content, content_type = recipe_body(recipe)
    headers = {"Content-Type": content_type}
    if if_match is not None:
        headers["If-Match"] = if_match if if_match.startswith(('"', "W/", "*")) else f'"{if_match}"'
    return Call(
        "PUT", f"/v1/recipes/{segment(name)}", decode_json, headers=headers, content=content
    )


def get_recipe(ref: str) -> Call:
    return Call("GET", f"/v1/recipes/{segment(ref)}", decode_json)


def list_recipes() -> Call:
    return Call("GET", "/v1/recipes", json_member("recipes"))


def recipe_versions(name: str) -> Call:
    return Call("GET", f"/v1/recipes/{segment(name)}/versions", json_member("versions"))


def delete_recipe(name: str) -> Call:
    return Call("DELETE", f"/v1/recipes/{segment(name)}", decode_nothing)


def ops() -> Call:
    return Call("GET", "/v1/ops", json_member("ops"))


def preview(ref: str, seed: int, n: int, image: Any = None) -> Call:
    """The PNG grid of ``n`` augmentations: of the server's sample photo, or of
    ``image`` (any one image ``augment`` takes), which is uploaded."""
    params = {"seed": str(seed), "n": str(n)}
    path = f"/v1/recipes/{segment(ref)}/preview"
    if image is None:
        return Call("GET", path, decode_bytes, params=params, headers={"Accept": "image/png"})
    payload = prepare_images([image], allow_tensor=False)
    return Call(
        "POST", path, decode_bytes, params=params, headers={"Accept": "image/png"},
        files=payload.files,
    )  # fmt: skip


def put_dataset(name: str, kind: str, path: str | None, url: str | None) -> Call:
    """Register a source by ``path`` (under the server's data roots) or ``url``
    (``s3://bucket/prefix`` under its allowed prefixes); the server wants exactly one."""
    spec: dict[str, str] = {"kind": kind}
    if path is not None:
        spec["path"] = str(path)
    if url is not None:
        spec["url"] = url
    return Call(
        "PUT",
        f"/v1/datasets/{segment(name)}",
        decode_json,
        headers={"Content-Type": JSON},
        content=_json_body(spec),
    )


def get_dataset(name: str) -> Call:
    return Call("GET", f"/v1/datasets/{segment(name)}", decode_json)


def list_datasets() -> Call:
    return Call("GET", "/v1/datasets", json_member("datasets"))


def delete_dataset(name: str) -> Call:
    return Call("DELETE", f"/v1/datasets/{segment(name)}", decode_nothing)


def augment(
    images: Any,
    recipe: str | Mapping[str, Any],
    *,
    seed: int | None,
    offset: int,
    return_params: bool,
    output: AugmentOutput,
    targets: Any = None,
) -> Call:
    """POST /v1/augment. Idempotent exactly when the seed is explicit.

    ``output="list"`` asks for a zip of PNGs and returns a list of (C, H, W) arrays, so
    samples of different sizes or channel counts fit; parameters and targets need
    tensors. ``targets`` (one entry per image) travel as multipart parts, so the images
    go as files then."""
    if output not in ("numpy", "torch", "list"):
        raise ValueError(f"output must be 'numpy', 'torch' or 'list', got {output!r}")
    check_output(output)
    if output == "list" and (return_params or targets is not None):
        raise ValueError(
            "return_params and targets need a tensor answer: use output='numpy' or 'torch'"
        )
    params = {"offset": str(offset), "return_params": "true" if return_params else "false"}
    if seed is not None:
        params["seed"] = str(seed)
    data = None
    if isinstance(recipe, str):
        params["recipe"] = recipe
    elif isinstance(recipe, Mapping):
        # An inline recipe travels as a multipart part, so pixels go as PNG parts then.
        data = {"recipe": json.dumps(dict(recipe), separators=(",", ":"))}
    else:
        raise TypeError("recipe must be a reference string or an inline recipe dict")
    payload = prepare_images(images, allow_tensor=data is None and targets is None)
    moving = None
    files = payload.files
    if targets is not None:
        moving = encode_targets(list(targets), payload.count)
        data = {**(data or {}), "targets": moving.targets_json}
        files = [*(files or []), *moving.mask_files]
    headers = {"Accept": ZIP if output == "list" else SAFETENSORS}
    if output == "list":
        params["format"] = "png"  # lossless
    if payload.tensor is not None:
        headers["Content-Type"] = SAFETENSORS
    return Call(
        "POST",
        "/v1/augment",
        list_decoder(offset) if output == "list" else batch_decoder(output, moving),
        params=params,
        headers=headers,
        content=payload.tensor,
        files=files,
        data=data,
        idempotent=seed is not None,
    )


def stream(
    dataset: str,
    *,
    recipe: str,
    seed: int,
    epoch: int,
    batch_size: int,
    rank: int,
    world_size: int,
    start: int,
    drop_last: bool,
    mix: Mapping[str, Any] | None = None,
) -> Call:
    """GET /v1/datasets/{name}/stream from global position ``start`` (decoded by frames)."""
    params: dict[str, Any] = {
        "recipe": recipe,
        "seed": str(seed),
        "epoch": str(epoch),
        "batch_size": str(batch_size),
        "rank": str(rank),
        "world_size": str(world_size),
        "start": str(start),
        "drop_last": "true" if drop_last else "false",
        **mix_params(mix),
    }
    return Call(
        "GET",
        f"/v1/datasets/{segment(dataset)}/stream",
        decode_nothing,
        params=params,
        headers={"Accept": STREAM},
    )


#: The stream's mixing parameters (timm's Mixup names; ``mix_prob`` is timm's ``prob``).
MIX_PARAMS = frozenset(
    {"mixup_alpha", "cutmix_alpha", "cutmix_minmax", "mix_prob", "switch_prob", "correct_lam",
     "label_smoothing", "num_classes"}
)  # fmt: skip


def mix_params(mix: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters of a stream's ``mix`` settings (``cutmix_minmax`` is sent twice)."""
    if not mix:
        return {}
    unknown = sorted(set(mix) - MIX_PARAMS)
    if unknown:
        raise ValueError(f"unknown mixing parameters {unknown}; known: {sorted(MIX_PARAMS)}")
    out: dict[str, Any] = {}
    for name, value in mix.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif name == "cutmix_minmax":
            out[name] = [str(float(v)) for v in value]
        else:
            out[name] = str(value)
    return out
