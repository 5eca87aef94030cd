"""The op registry is the single source of the catalogue: one new module, nothing else
edited, and the op is in /v1/ops, in recipe validation and in a fused plan.

The throwaway op lives in a temporary package outside the repository and is loaded the
way a user loads a custom op: ``AUGSVC_OP_MODULES`` for the service, ``import`` in
process (in a child interpreter, so this test session's registry stays as it was).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from augsvc.ops import op_names
from augsvc.recipes import catalogue, parse_recipe
from tests.imagegen import png_bytes

NUDGE = textwrap.dedent(
    '''
    """nudge: shift right by a whole number of pixels drawn from [0, pixels]."""

    from typing import Literal

    import numpy as np
    from pydantic import Field

    from augsvc.maths import geometry
    from augsvc.ops import GeometricOp, gated, register


    @register
    class Nudge(GeometricOp):
        """Shift the image right by 0..pixels whole pixels."""

        op: Literal["nudge"] = "nudge"
        pixels: int = Field(ge=0, le=64)

        def sample(self, draws, canvas):
            on = self.applied(draws)
            shift = np.floor(draws.uniform(1) * (self.pixels + 1))
            return {"applied": on, "shift": gated(shift, on, 0.0)}

        def matrix(self, params, canvas):
            zero = np.zeros_like(params["shift"])
            return geometry.translation(params["shift"], zero), canvas
    '''
)

RECIPE = {"ops": [{"op": "hflip", "p": 1.0}, {"op": "nudge", "pixels": 5}]}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    (root / "throwaway_ops").mkdir()
    (root / "throwaway_ops" / "__init__.py").write_text("")
    (root / "throwaway_ops" / "nudge.py").write_text(NUDGE)
    return root


def _env(plugin_path: Path) -> dict[str, str]:
    paths = [str(plugin_path), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def test_the_session_registry_does_not_know_the_throwaway_op():
    assert "nudge" not in op_names()
    assert "nudge" not in {entry["op"] for entry in catalogue()}


def test_a_registered_module_is_validated_catalogued_and_fused_in_process(plugin_path):
    check = textwrap.dedent(
        """
        import numpy as np, torch
        import throwaway_ops.nudge
        from augsvc.engine import augment, compile_plan
        from augsvc.errors import InvalidRecipe
        from augsvc.recipes import catalogue, parse_recipe, recipe_json_schema

        entry = {e["op"]: e for e in catalogue()}["nudge"]
        assert entry["kind"] == "geometric" and "pixels" in entry["schema"]["properties"]
        refs = recipe_json_schema()["properties"]["ops"]["items"]["discriminator"]["mapping"]
        assert "nudge" in refs
        try:
            parse_recipe({"ops": [{"op": "nudge", "pixels": 99}]})
        except InvalidRecipe as err:
            assert err.errors[0].loc == ("ops", 0, "pixels"), err.errors
        else:
            raise AssertionError("pixels=99 was accepted")

        plan = compile_plan(parse_recipe(RECIPE))
        assert [s.kind for s in plan.stages] == ["warp"], plan.stages
        assert [op.name() for _, op in plan.stages[0].ops] == ["hflip", "nudge"]
        image = torch.arange(3 * 4 * 9, dtype=torch.uint8).view(1, 3, 4, 9)
        out = augment(plan, image, seed=3)
        shift = int(out.params["ops.1.shift"][0])
        expected = torch.zeros_like(image)
        expected[..., shift:] = image.flip(-1)[..., : 9 - shift]
        assert torch.equal(out.images, expected), (shift, out.images, expected)
        print("shift", shift)
        """
    ).replace("RECIPE", repr(RECIPE))
    env = {**os.environ, **_env(plugin_path)}
    run = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("shift ")


def test_the_service_serves_an_op_from_a_module_named_in_settings(plugin_path, start_augsvc):
    server = start_augsvc(AUGSVC_OP_MODULES="throwaway_ops.nudge", **_env(plugin_path))
    with server.client() as client:
        ops = {entry["op"] for entry in client.get("/v1/ops").json()["ops"]}
        assert "nudge" in ops and {"rotate", "hflip"} <= ops
        bad = client.put("/v1/recipes/nudged", json={"ops": [{"op": "nudge", "pixels": -1}]})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["ops", 0, "pixels"]
        stored = client.put("/v1/recipes/nudged", json=RECIPE)
        assert stored.status_code == 201, stored.text
        assert stored.json()["recipe"]["ops"][1] == {"op": "nudge", "pixels": 5, "p": 1.0}
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "Nudge" in schema and "nudge" in str(schema["Recipe"])
        answer = client.post(
            "/v1/augment",
            params={"recipe": "nudged", "seed": 3},
            files=[("image", ("a.png", png_bytes(9, 4), "image/png"))],
            headers={"Accept": "application/zip"},
        )
        assert answer.status_code == 200, answer.text


def test_a_module_that_cannot_be_imported_stops_the_service_at_start(start_augsvc):
    with pytest.raises(RuntimeError, match="cannot be imported"):
        start_augsvc(AUGSVC_OP_MODULES="no_such_module_anywhere")


def test_unknown_ops_are_named_with_the_known_ones():
    from augsvc.errors import InvalidRecipe

    with pytest.raises(InvalidRecipe) as info:
        parse_recipe({"ops": [{"op": "nudge", "pixels": 1}]})
    assert info.value.errors[0].loc == ("ops", 0)
    assert "unknown op 'nudge'" in info.value.detail and "'rotate'" in info.value.detail
    assert np.all([name in info.value.errors[0].msg for name in ("hflip", "normalize")])
