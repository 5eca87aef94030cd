"""The SDK's exception tree mirrors the server's, and problem bodies map onto it."""

from __future__ import annotations

from augsvc_client import errors


def test_the_docstring_draws_every_class():
    for cls in errors.all_errors():
        assert f"{cls.__name__} (" in errors.__doc__


def test_field_errors_and_headers_are_kept():
    body = {
        "status": 422,
        "code": "invalid-recipe",
        "detail": "bad",
        "errors": [{"loc": ["ops", 2, "degrees"], "msg": "too big"}],
    }
    got = errors.from_problem(422, body, {"Retry-After": "3"})
    assert isinstance(got, errors.InvalidRecipe)
    assert isinstance(got, errors.ValidationFailed)
    assert got.errors == [errors.FieldError(("ops", 2, "degrees"), "too big")]
    assert got.headers == {"retry-after": "3"}
    assert "ops[2].degrees: too big" in str(got)  # the one field-path form, as the server


def test_unknown_code_falls_back_by_status_keeping_the_code():
    got = errors.from_problem(404, {"code": "widget-not-found", "detail": "no widget"})
    assert type(got) is errors.NotFound
    assert got.code == "widget-not-found"
    got = errors.from_problem(503, b'{"code": "brand-new"}')
    assert type(got) is errors.Unavailable


def test_unknown_status_and_non_json_bodies():
    got = errors.from_problem(502, b"<html>Bad gateway</html>")
    assert type(got) is errors.AugsvcError
    assert got.status == 502
    assert "Bad gateway" in got.detail
    assert isinstance(errors.from_problem(429, b""), errors.RateLimited)
    assert type(errors.from_problem(405, {"code": "method-not-allowed"})) is errors.MethodNotAllowed
    assert type(errors.from_problem(418, {"code": "teapot"})) is errors.AugsvcError


def test_a_code_whose_status_disagrees_falls_back_by_status():
    got = errors.from_problem(400, {"code": "recipe-not-found"})
    assert type(got) is errors.BadRequest


def test_client_side_classes_are_never_built_from_a_response():
    assert type(errors.from_problem(500, {"code": "transport"})) is errors.AugsvcError
    assert errors.TransportError("x").status is None
