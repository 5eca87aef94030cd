"""The shared request builder: every input type becomes the efficient, equivalent body."""

from __future__ import annotations

import importlib.util
import io
import json

import numpy as np
import pytest
import safetensors.numpy
from augsvc_client import request
from augsvc_client.inputs import prepare_images, sniff
from augsvc_client.wire import ImagesBody
from PIL import Image

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pixels(n: int = 3, h: int = 6, w: int = 7, c: int = 3, seed: int = 0) -> np.ndarray:
    """(n, c, h, w) uint8."""
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def png(chw: np.ndarray) -> bytes:
    out = io.BytesIO()
    hwc = chw.transpose(1, 2, 0)
    Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).save(out, format="PNG")
    return out.getvalue()


def tensor_of(payload) -> np.ndarray:
    assert payload.files is None
    return safetensors.numpy.load(bytes(payload.tensor))["images"]


def test_every_pixel_input_gives_the_same_safetensors_body():
    batch = pixels()
    forms = {
        "numpy NCHW": batch,
        "numpy NHWC": np.ascontiguousarray(batch.transpose(0, 2, 3, 1)),
        "numpy HWC list": [np.ascontiguousarray(x.transpose(1, 2, 0)) for x in batch],
        "numpy CHW list": list(batch),
        "PIL list": [Image.fromarray(x.transpose(1, 2, 0)) for x in batch],
    }
    if HAVE_TORCH:  # the SDK's unit tests also run where only the SDK is installed
        import torch

        forms["torch NCHW"] = torch.from_numpy(batch)
        forms["torch CHW list"] = [torch.from_numpy(x) for x in batch]
    bodies = {name: prepare_images(form) for name, form in forms.items()}
    for name, payload in bodies.items():
        assert payload.count == 3, name
        np.testing.assert_array_equal(tensor_of(payload), batch, err_msg=name)
    assert len({bytes(p.tensor) for p in bodies.values()}) == 1


def test_the_images_body_is_safetensors_sent_in_slices_of_the_callers_array():
    """No copy of the pixels is made: the chunks after the header are views of the
    (contiguous) array, at most ImagesBody.CHUNK bytes each, and together they are
    exactly what the safetensors library writes for the same tensor."""
    batch = np.random.default_rng(0).integers(0, 256, (5, 3, 300, 400), dtype=np.uint8)
    body = ImagesBody(batch)
    chunks = list(body.chunks())
    assert len(body) == sum(len(c) for c in chunks)
    assert all(isinstance(c, memoryview) and len(c) <= ImagesBody.CHUNK for c in chunks[1:])
    assert np.shares_memory(np.asarray(chunks[1]), batch)  # a view, not a copy
    assert (8 + int.from_bytes(chunks[0][:8], "little")) % 8 == 0  # data 8-byte aligned
    loaded = safetensors.numpy.load(bytes(body))
    assert list(loaded) == ["images"]
    np.testing.assert_array_equal(loaded["images"], batch)
    assert bytes(body) == bytes(body)  # chunks() starts afresh (a retry resends it all)
    with pytest.raises(ValueError, match="uint8"):
        ImagesBody(batch.astype(np.float32))


def test_grey_and_rgba_arrays_and_pil_modes():
    grey = pixels(1, c=1)[0]
    assert tensor_of(prepare_images([grey[0]])).shape == (1, 1, 6, 7)  # (H, W)
    assert tensor_of(prepare_images([Image.fromarray(grey[0])])).shape == (1, 1, 6, 7)
    rgba = pixels(1, c=4)[0]
    assert tensor_of(prepare_images([Image.fromarray(rgba.transpose(1, 2, 0))])).shape[1] == 4
    palette = Image.fromarray(pixels(1)[0].transpose(1, 2, 0)).convert("P")
    assert tensor_of(prepare_images([palette])).shape == (1, 3, 6, 7)


def test_files_go_untouched_as_multipart_parts(tmp_path):
    batch = pixels(2)
    encoded = [png(x) for x in batch]
    path = tmp_path / "a.png"
    path.write_bytes(encoded[0])
    for form in ([path, encoded[1]], [str(path), encoded[1]]):
        payload = prepare_images(form)
        assert payload.tensor is None
        assert [f[1][1] for f in payload.files] == encoded
        assert [f[1][2] for f in payload.files] == ["image/png", "image/png"]
        assert payload.files[0][1][0] == "a.png"
    assert prepare_images(encoded[0]).count == 1  # a single bytes object is one image


def test_mixed_or_ragged_pixels_are_sent_as_lossless_png():
    a, b = pixels(1, h=6)[0], pixels(1, h=9)[0]
    payload = prepare_images([a, b])
    assert payload.tensor is None
    decoded = [np.asarray(Image.open(io.BytesIO(f[1][1]))) for f in payload.files]
    np.testing.assert_array_equal(decoded[0], a.transpose(1, 2, 0))
    np.testing.assert_array_equal(decoded[1], b.transpose(1, 2, 0))
    mixed = prepare_images([a, png(b)])
    assert [f[1][2] for f in mixed.files] == ["image/png", "image/png"]


def test_bad_inputs_are_refused_before_sending():
    with pytest.raises(TypeError, match="uint8"):
        prepare_images([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="channel axis"):
        prepare_images([np.zeros((5, 6, 7), np.uint8)])
    with pytest.raises(ValueError, match="no images"):
        prepare_images([])
    with pytest.raises(TypeError, match="unsupported"):
        prepare_images([42])


def test_sniff():
    assert sniff(b"\x89PNG\r\n\x1a\n....") == ("image/png", ".png")
    assert sniff(b"\xff\xd8\xff\xe0") == ("image/jpeg", ".jpg")
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == ("image/webp", ".webp")
    assert sniff(b"hello")[0] == "application/octet-stream"


def test_augment_call_is_idempotent_exactly_with_a_seed():
    batch = pixels(1)
    seeded = request.augment(batch, "r@2", seed=1, offset=4, return_params=True, output="numpy")
    assert seeded.idempotent
    assert seeded.params == {"recipe": "r@2", "seed": "1", "offset": "4", "return_params": "true"}
    assert seeded.headers["Content-Type"] == "application/x-safetensors"
    assert seeded.headers["Accept"] == "application/x-safetensors"
    unseeded = request.augment(batch, "r", seed=None, offset=0, return_params=False, output="numpy")
    assert not unseeded.idempotent
    assert "seed" not in unseeded.params


def test_an_inline_recipe_forces_a_multipart_body():
    recipe = {"ops": [{"op": "hflip"}]}
    call = request.augment(pixels(2), recipe, seed=1, offset=0, return_params=False, output="numpy")
    assert "recipe" not in call.params
    assert json.loads(call.data["recipe"]) == recipe
    assert call.content is None and len(call.files) == 2
    assert "Content-Type" not in call.headers  # httpx sets the multipart boundary


def test_recipes_are_sent_from_dicts_files_and_bytes(tmp_path):
    recipe = {"ops": [{"op": "rotate", "degrees": 10}], "output": {"size": [8, 8]}}
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    (tmp_path / "r.yaml").write_text(
        "ops:\n  - op: rotate\n    degrees: 10\noutput:\n  size: [8, 8]\n"
    )
    expected = {
        "dict": (recipe, json.dumps(recipe, separators=(",", ":")).encode(), "application/json"),
        "json file": (tmp_path / "r.json", (tmp_path / "r.json").read_bytes(), "application/json"),
        "yaml file": (str(tmp_path / "r.yaml"), (tmp_path / "r.yaml").read_bytes(),
                      "application/yaml"),
        "yaml bytes": (b"ops: []\n", b"ops: []\n", "application/yaml"),
        "json bytes": (b' {"ops": []}', b' {"ops": []}', "application/json"),
    }  # fmt: skip
    for name, (source, content, content_type) in expected.items():
        call = request.put_recipe("r", source, if_match="sha256:abc")
        # files travel as they are: the server reads them, under its nesting limit
        assert (call.content, call.headers["Content-Type"]) == (content, content_type), name
        assert call.headers["If-Match"] == '"sha256:abc"'
    with pytest.raises(FileNotFoundError):
        request.put_recipe("r", tmp_path / "missing.yaml", None)


def test_references_stay_readable_in_paths():
    assert request.get_recipe("sha256:ab12").path == "/v1/recipes/sha256:ab12"
    assert request.get_recipe("flip@3").path == "/v1/recipes/flip@3"
    assert request.get_recipe("a/b").path == "/v1/recipes/a%2Fb"
