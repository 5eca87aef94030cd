"""The one error tree of augsvc.

Every failure a caller can cause is a subclass of :class:`AugsvcError` carrying an
HTTP status and a stable machine-readable ``code``. The engine, codec and store raise
these without knowing about HTTP; the API renders any of them as RFC 9457
``application/problem+json`` in one handler, and the SDK maps ``code`` back to the
same tree. Routes never build HTTP errors by hand.

    AugsvcError (500 internal)
    ├── BadRequest (400 bad-request)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    │   ├── PathNotAllowed (403 path-not-allowed)
    │   └── UrlNotAllowed (403 url-not-allowed)
    ├── NotFound (404 not-found)
    │   ├── RecipeNotFound (404 recipe-not-found)
    │   ├── DatasetNotFound (404 dataset-not-found)
    │   └── ObjectNotFound (404 object-not-found)
    ├── MethodNotAllowed (405 method-not-allowed)
    ├── NotAcceptable (406 not-acceptable)
    ├── RequestTimeout (408 request-timeout)
    ├── PreconditionFailed (412 precondition-failed)
    ├── PayloadTooLarge (413 payload-too-large)
    │   ├── TooManyImages (413 too-many-images)
    │   └── ImageTooLarge (413 image-too-large)
    ├── UnsupportedMediaType (415 unsupported-media-type)
    ├── ValidationFailed (422 validation-failed)
    │   ├── InvalidRecipe (422 invalid-recipe)
    │   ├── InvalidReference (422 invalid-reference)
    │   ├── UndecodableImage (422 undecodable-image)
    │   └── SampleUnreadable (422 sample-unreadable)
    └── Unavailable (503 unavailable)
        ├── StoreUnavailable (503 store-unavailable)
        ├── Overloaded (503 overloaded)
        └── ObjectStoreUnavailable (503 object-store-unavailable)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:augsvc:problem:"


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field; ``loc`` is a path such as ``("ops", 2, "degrees")``."""

    loc: tuple[str | int, ...]
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}

    @property
    def path(self) -> str:
        return format_loc(self.loc)


def format_loc(loc: tuple[str | int, ...]) -> str:
    """``("ops", 2, "degrees")`` -> ``ops[2].degrees``: the one way a field path is shown,
    in error details, the CLI and the SDK alike (``recipe`` for the document itself)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"


def field_errors(exc: Any, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """pydantic's ``ValidationError`` (or FastAPI's, anything with its ``errors()``) as
    one :class:`FieldError` per problem, at ``prefix`` + its location, its message
    without the "Value error, " pydantic puts before a validator's own words."""
    return [
        FieldError(
            (*prefix, *(p if isinstance(p, int) else str(p) for p in err.get("loc", ()))),
            str(err.get("msg", "invalid value")).removeprefix("Value error, "),
        )
        for err in exc.errors()
    ]


class AugsvcError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.code

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body


class BadRequest(AugsvcError):
    status, code, title = 400, "bad-request", "Bad request"


class Unauthorized(AugsvcError):
    status, code, title = 401, "unauthorized", "Missing or unknown API key"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="augsvc"'})
        super().__init__(detail, **kw)


class Forbidden(AugsvcError):
    status, code, title = 403, "forbidden", "API key lacks the required scope"


class PathNotAllowed(Forbidden):
    code, title = "path-not-allowed", "Path outside the configured data roots"


class UrlNotAllowed(Forbidden):
    """A dataset URL outside ``AUGSVC_DATA_URLS``, or one that names its own endpoint."""

    code, title = "url-not-allowed", "URL outside the configured dataset URLs"


class NotFound(AugsvcError):
    status, code, title = 404, "not-found", "Not found"


class RecipeNotFound(NotFound):
    code, title = "recipe-not-found", "Recipe not found"


class DatasetNotFound(NotFound):
    code, title = "dataset-not-found", "Dataset not found"


class ObjectNotFound(NotFound):
    """A bucket, prefix or object of a dataset in object storage is not there."""

    code, title = "object-not-found", "Object not found in object storage"


class MethodNotAllowed(AugsvcError):
    """The path exists but not with this method; ``Allow`` lists the ones it has."""

    status, code, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(AugsvcError):
    status, code, title = 406, "not-acceptable", "No acceptable response type"


class RequestTimeout(AugsvcError):
    """The request body stopped arriving (or arrived too slowly) and was dropped: a client
    cannot hold a connection, and the part of a body it sent, for as long as it likes.
    The answer closes the connection."""

    status, code, title = 408, "request-timeout", "Request body timed out"


class PreconditionFailed(AugsvcError):
    status, code, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AugsvcError):
    status, code, title = 413, "payload-too-large", "Request too large"


class TooManyImages(PayloadTooLarge):
    code, title = "too-many-images", "Too many images in one request"


class ImageTooLarge(PayloadTooLarge):
    code, title = "image-too-large", "Image has too many pixels"


class UnsupportedMediaType(AugsvcError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(AugsvcError):
    status, code, title = 422, "validation-failed", "Invalid input"


class InvalidRecipe(ValidationFailed):
    code, title = "invalid-recipe", "Invalid recipe"


class InvalidReference(ValidationFailed):
    code, title = "invalid-reference", "Malformed name or reference"


class UndecodableImage(ValidationFailed):
    code, title = "undecodable-image", "Image could not be decoded"


class SampleUnreadable(ValidationFailed):
    """A registered dataset's sample (or the dataset itself) can no longer be read: a
    file deleted, replaced by a folder or a pipe, a shard rewritten since it was
    indexed. The sibling of ``undecodable-image``: the data, not the request, is at
    fault, and the detail names the sample's index and its path in the dataset."""

    code, title = "sample-unreadable", "Dataset sample missing or unreadable"


class Unavailable(AugsvcError):
    status, code, title = 503, "unavailable", "Service unavailable"


class StoreUnavailable(Unavailable):
    code, title = "store-unavailable", "Recipe store unavailable"


class Overloaded(Unavailable):
    code, title = "overloaded", "Server busy"

    def __init__(self, detail: str, *, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)


class ObjectStoreUnavailable(Unavailable):
    """The object store did not answer, or refused the server's own credentials, after
    retries: a fault of the deployment, not of the request."""

    code, title = "object-store-unavailable", "Object store unavailable"


def all_errors() -> list[type[AugsvcError]]:
    """Every class in the tree, root first (used by docs and the SDK parity test)."""
    seen: list[type[AugsvcError]] = []
    stack: list[type[AugsvcError]] = [AugsvcError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
