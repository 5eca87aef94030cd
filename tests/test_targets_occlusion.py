"""Occluding ops count against boxes wherever they sit: at the top of a recipe, inside
one_of, some_of and random_order, next to policies, and an occluding op registered
from outside the package, with no other edit.

The truth is the pixels: images start black, erasing fills with a value nothing else
makes (200, or 55 once inverted), so the erased part of each box is read off the
output. The ordering rule is held to its statement: refused exactly when an occluder
comes before an op that moves pixels, or a combinator holds both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augsvc.errors import InvalidRecipe
from augsvc.recipes import parse_recipe
from augsvc.targets.types import ImageTargets
from tests.targets_helpers import run

H, W = 32, 48
FILL = 200
ERASE = {"op": "random_erasing", "p": 0.7, "scale": [0.02, 0.1], "ratio": [0.5, 2.0]}
ERASE["value"] = FILL
BOXES = np.array([[0, 0, W, H], [4, 4, 36, 28], [20, 10, 44, 30]], dtype=np.float64)
OCCLUSION = {"erasing_counts_occlusion": True}
KEYS = np.arange(12, dtype=np.int64)


def erased_pixels(image: torch.Tensor) -> np.ndarray:
    """(H, W) bool: where an erasing filled (its value, or that value inverted)."""
    c0 = image[0].numpy()
    return (c0 == FILL) | (c0 == 255 - FILL)


def check_visibility_is_the_pixels(result, moved) -> int:
    """Each box's reported visibility is 1 - the erased share of its output pixels
    (boxes are larger than any erasing can cover, so none is dropped); returns how
    many samples had something erased."""
    erased_samples = 0
    for i, m in enumerate(moved):
        erased = erased_pixels(result.images[i])
        erased_samples += int(erased.any())
        assert m.box_index.tolist() == list(range(len(BOXES)))
        for box, seen in zip(m.boxes, m.visibility, strict=True):
            x0, y0, x1, y1 = box.astype(int)
            assert np.array_equal(box, [x0, y0, x1, y1])  # flips keep whole pixels
            truth = 1.0 - erased[y0:y1, x0:x1].mean()
            np.testing.assert_allclose(seen, truth, atol=1e-12, err_msg=f"sample {i}")
    return erased_samples


def batch(n: int = len(KEYS)) -> tuple[torch.Tensor, list[ImageTargets]]:
    images = torch.zeros(n, 3, H, W, dtype=torch.uint8)
    return images, [ImageTargets(boxes=BOXES.copy()) for _ in range(n)]


WRAPPED = {
    "top level": [ERASE],
    "one_of": [{"op": "one_of", "ops": [ERASE]}],
    "one_of with another choice": [{"op": "one_of", "ops": [{"op": "invert"}, ERASE]}],
    "some_of": [{"op": "some_of", "n": 1, "ops": [{"op": "grayscale"}, ERASE]}],
    "random_order": [{"op": "random_order", "ops": [ERASE, {"op": "invert"}, ERASE]}],
}


@pytest.mark.parametrize("ops", WRAPPED.values(), ids=WRAPPED.keys())
def test_erasing_hides_what_it_covers_wherever_it_sits(ops):
    images, targets = batch()
    result, moved = run([{"op": "hflip"}, *ops], images, targets, keys=KEYS, options=OCCLUSION)
    assert check_visibility_is_the_pixels(result, moved) >= 3


def test_erasing_in_a_one_of_reports_the_rectangle_its_pixels_show():
    """The member's params (under its own key) name the rectangle the pixels show, and
    a sample the one_of skipped has neither."""
    images, targets = batch()
    erase = {**ERASE, "p": 1.0}
    ops = [{"op": "one_of", "p": 0.5, "ops": [erase]}]
    result, moved = run(ops, images, targets, keys=KEYS, options=OCCLUSION)
    p = {k: result.params[f"ops.0.0.0.{k}"] for k in ("applied", "top", "left", "height", "width")}
    assert 0 < p["applied"].sum() < len(KEYS)
    for i, m in enumerate(moved):
        erased = erased_pixels(result.images[i])
        expected = np.zeros_like(erased)
        if p["applied"][i]:
            t, lf = int(p["top"][i]), int(p["left"][i])
            expected[t : t + int(p["height"][i]), lf : lf + int(p["width"][i])] = True
        assert np.array_equal(erased, expected)
        assert (m.visibility < 1).any() == bool(p["applied"][i])


def test_overlapping_erasings_hide_a_pixel_once():
    """Two erasings that overlap on a box: the pixels both filled are hidden once, as
    the image shows them, not subtracted twice."""
    images, targets = batch(4)
    big = {"op": "random_erasing", "p": 1.0, "scale": [0.3, 0.3], "ratio": [1.5, 1.5]}
    ops = [{**big, "value": FILL}, {**big, "value": FILL}]
    result, moved = run(ops, images, targets, keys=KEYS[:4], options=OCCLUSION)
    p = result.params
    filled = p["ops.0.height"] * p["ops.0.width"] + p["ops.1.height"] * p["ops.1.width"]
    erased = [erased_pixels(img) for img in result.images]
    assert any(e.sum() < f for e, f in zip(erased, filled, strict=True))  # some overlap
    x0, y0, x1, y1 = BOXES[0].astype(int)
    for e, m in zip(erased, moved, strict=True):
        assert m.box_index[0] == 0
        np.testing.assert_allclose(m.visibility[0], 1 - e[y0:y1, x0:x1].mean())


def _refused(ops: list[dict]) -> InvalidRecipe | None:
    try:
        parse_recipe({"ops": ops, "targets": OCCLUSION})
    except InvalidRecipe as err:
        return err
    return None


def test_the_ordering_rule_names_the_occluder_inside_a_combinator():
    both = _refused([{"op": "one_of", "ops": [{"op": "hflip"}, ERASE]}])
    assert both is not None and both.errors[0].loc == ("ops", 0, "ops", 1)
    early = _refused([{"op": "some_of", "n": 1, "ops": [{"op": "invert"}, ERASE]}, {"op": "vflip"}])
    assert early is not None and early.errors[0].loc == ("ops", 0, "ops", 1)
    assert "ops[1]" in early.errors[0].msg
    assert _refused([{"op": "random_order", "ops": [{"op": "vflip"}]}, ERASE]) is None


def test_policies_move_pixels_for_the_ordering_rule():
    assert _refused([{"op": "rand_augment"}, ERASE]) is None
    err = _refused([ERASE, {"op": "trivial_augment_wide"}])
    assert err is not None and err.errors[0].loc == ("ops", 0)
    assert _refused([{"op": "timm_auto_augment", "config": "rand-m9-n2"}, ERASE]) is None
    assert _refused([ERASE, {"op": "timm_auto_augment", "config": "rand-m9-n2"}]) is not None


MOVERS = [{"op": "hflip", "p": 0.5}, {"op": "vflip", "p": 0.5}]
STILL = [{"op": "grayscale", "p": 0.5}, {"op": "invert", "p": 0.5}]
MEMBERS = st.sampled_from([*MOVERS, *STILL, ERASE, ERASE])  # erasing drawn most


@st.composite
def composite(draw) -> dict:
    ops = draw(st.lists(MEMBERS, min_size=1, max_size=3))
    kind = draw(st.sampled_from(["one_of", "some_of", "random_order"]))
    doc = {"op": kind, "ops": ops, "p": draw(st.sampled_from([1.0, 0.8]))}
    if kind == "some_of":
        doc["n"] = draw(st.integers(0, len(ops)))
    return doc


def flattened(ops: list[dict]) -> list[tuple[int, str]]:
    """(recipe position, 'mover' | 'occluder' | 'still') of every op, members included,
    in listed order."""
    out = []
    for i, doc in enumerate(ops):
        for member in doc.get("ops", [doc]):
            kind = {"hflip": "mover", "vflip": "mover", "random_erasing": "occluder"}
            out.append((i, kind.get(member["op"], "still")))
    return out


def should_refuse(ops: list[dict]) -> bool:
    flat = flattened(ops)
    precedes = any(
        a == "occluder" and b == "mover" for k, (_, a) in enumerate(flat) for _, b in flat[k + 1 :]
    )
    held = [{kind for j, kind in flat if j == i} for i in range(len(ops))]
    return precedes or any({"mover", "occluder"} <= kinds for kinds in held)


def _at(ops: list[dict], loc: tuple) -> dict:
    node: object = {"ops": ops}
    for part in loc:
        node = node[part]  # type: ignore[index]
    assert isinstance(node, dict)
    return node


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(MEMBERS | composite(), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_nested_recipes_report_what_their_pixels_show(ops, seed):
    """For any nesting: the rule refuses exactly when an occluder precedes a mover in
    the flattened order or a combinator holds both (naming an occluder), and every
    sample of an accepted recipe reports the visibility its pixels show."""
    err = _refused(ops)
    assert (err is not None) == should_refuse(ops), err
    if err is not None:
        assert _at(ops, err.errors[0].loc)["op"] == "random_erasing", err.errors
        return
    images, targets = batch()
    result, moved = run(ops, images, targets, seed=seed, keys=KEYS, options=OCCLUSION)
    check_visibility_is_the_pixels(result, moved)


PATCH = textwrap.dedent(
    '''
    """patch: grey over the top-left quarter of the image."""

    from typing import ClassVar, Literal

    import numpy as np

    from augsvc.ops import Occluder, PixelOp, register


    @register
    class Patch(PixelOp, Occluder):
        """Cover the top-left quarter with grey (128)."""

        kind: ClassVar = "erase"
        op: Literal["patch"] = "patch"

        def sample(self, draws, canvas):
            h, w = canvas
            return {"applied": self.applied(draws), "height": h // 2, "width": w // 2}

        def apply(self, x, params):
            x = x.clone()
            for i in np.flatnonzero(params["applied"]):
                x[i, :, : int(params["height"][i]), : int(params["width"][i])] = 128
            return x

        def occluded_rectangles(self, params):
            zero = np.zeros_like(params["width"])
            rects = np.stack([zero, zero, params["width"], params["height"]], 1)
            return [rects[i : i + 1] if on else rects[:0] for i, on in enumerate(params["applied"])]
    '''
)

PATCH_CHECK = textwrap.dedent(
    """
    import numpy as np, torch
    import throwaway_occluders.patch
    from augsvc.engine import augment, compile_plan
    from augsvc.errors import InvalidRecipe
    from augsvc.recipes import parse_recipe
    from augsvc.targets.move import move_batch
    from augsvc.targets.types import ImageTargets

    occlusion = {"erasing_counts_occlusion": True}
    try:
        parse_recipe({"ops": [{"op": "patch"}, {"op": "hflip"}], "targets": occlusion})
    except InvalidRecipe as err:
        assert err.errors[0].loc == ("ops", 0), err.errors
    else:
        raise AssertionError("a patch before a flip was accepted")
    ops = [{"op": "hflip"}, {"op": "one_of", "ops": [{"op": "patch", "p": 0.5}]}]
    plan = compile_plan(parse_recipe({"ops": ops, "targets": occlusion}))
    images = torch.zeros(16, 3, 8, 12, dtype=torch.uint8)
    result = augment(plan, images, seed=1, keys=np.arange(16))
    box = np.array([[0.0, 0.0, 12.0, 8.0]])
    moved = move_batch(plan, result, [ImageTargets(boxes=box.copy()) for _ in range(16)])
    seen = [float(m.visibility[0]) for m in moved]
    truth = [1 - float((img[0] == 128).double().mean()) for img in result.images]
    assert seen == truth and set(seen) == {0.75, 1.0}, (seen, truth)
    print("ok", seen.count(0.75))
    """
)


@pytest.fixture(scope="module")
def occluder_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    (root / "throwaway_occluders").mkdir()
    (root / "throwaway_occluders" / "__init__.py").write_text("")
    (root / "throwaway_occluders" / "patch.py").write_text(PATCH)
    return root


def test_an_occluder_registered_from_outside_counts_with_no_other_edit(occluder_plugin):
    """One module outside the package declares it occludes; inside a one_of, boxes
    follow it and the ordering rule holds it, as for random_erasing (in a child
    interpreter, so this session's registry stays as it was)."""
    paths = [str(occluder_plugin), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    child = subprocess.run(
        [sys.executable, "-c", PATCH_CHECK], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.startswith("ok ")
