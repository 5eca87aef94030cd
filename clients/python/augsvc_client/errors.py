"""Typed exceptions built from the service's ``application/problem+json`` errors.

The tree mirrors the server's (``augsvc.errors``) without importing it: every problem
body carries a stable ``code``, and :func:`from_problem` picks the class for that code,
falling back to the most general class for the HTTP status when the code is unknown
(a newer server), and to :class:`AugsvcError` itself when the status is unknown too.
Three classes exist only on the client side: :class:`TransportError` (no HTTP answer
at all), :class:`DeadlineExceeded` (the retry policy's total deadline ran out) and
:class:`StreamOutOfStep` (a stream frame that is not the one the cursor expects).

    AugsvcError (500 internal)
    ├── BadRequest (400 bad-request)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    │   ├── PathNotAllowed (403 path-not-allowed)       a dataset path outside the allowed roots
    │   └── UrlNotAllowed (403 url-not-allowed)         a dataset URL outside the allowed URLs
    ├── NotFound (404 not-found)
    │   ├── RecipeNotFound (404 recipe-not-found)
    │   ├── DatasetNotFound (404 dataset-not-found)
    │   └── ObjectNotFound (404 object-not-found)       a bucket or object of a dataset is gone
    ├── MethodNotAllowed (405 method-not-allowed)
    ├── NotAcceptable (406 not-acceptable)
    ├── RequestTimeout (408 request-timeout)           the body stalled; the server dropped it
    ├── PreconditionFailed (412 precondition-failed)
    ├── PayloadTooLarge (413 payload-too-large)
    │   ├── TooManyImages (413 too-many-images)
    │   └── ImageTooLarge (413 image-too-large)
    ├── UnsupportedMediaType (415 unsupported-media-type)
    ├── ValidationFailed (422 validation-failed)
    │   ├── InvalidRecipe (422 invalid-recipe)
    │   ├── InvalidReference (422 invalid-reference)
    │   ├── UndecodableImage (422 undecodable-image)
    │   └── SampleUnreadable (422 sample-unreadable)      a dataset's file is gone or unreadable
    ├── RateLimited (429 rate-limited)                 client side: any 429
    ├── Unavailable (503 unavailable)
    │   ├── StoreUnavailable (503 store-unavailable)
    │   ├── Overloaded (503 overloaded)
    │   └── ObjectStoreUnavailable (503 object-store-unavailable)
    ├── TransportError (no status, transport)          client side: no HTTP answer
    ├── DeadlineExceeded (no status, deadline-exceeded) client side: retries ran out of time
    └── StreamOutOfStep (no status, stream-out-of-step) client side: a resumed stream
                                                       did not continue where it stopped

Catch :class:`AugsvcError` for everything, a branch (``NotFound``, ``ValidationFailed``)
for a family, or a leaf for one precise failure. Field errors (``exc.errors``) name the
offending input, e.g. ``FieldError(loc=("ops", 2, "degrees"), msg="...")``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field; ``loc`` is a path such as ``("ops", 2, "degrees")``."""

    loc: tuple[str | int, ...]
    msg: str

    def __str__(self) -> str:
        return f"{format_loc(self.loc)}: {self.msg}"


def format_loc(loc: tuple[str | int, ...]) -> str:
    """``("ops", 2, "degrees")`` -> ``ops[2].degrees``, as the server writes field paths."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"


class AugsvcError(Exception):
    """Base of every error the SDK raises for a failed call."""

    status: ClassVar[int | None] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # Instance values shadow the class defaults only when the server said otherwise
        # (an unknown code that fell back to a known class keeps the server's code).
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.errors = list(errors or [])
        self.problem = dict(problem or {})
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}

    def __str__(self) -> str:
        head = f"[{self.status or '-'} {self.code}] {self.detail}"
        if self.errors:
            head += " (" + "; ".join(str(e) for e in self.errors[:5]) + ")"
        return head


class BadRequest(AugsvcError):
    status, code = 400, "bad-request"


class Unauthorized(AugsvcError):
    status, code = 401, "unauthorized"


class Forbidden(AugsvcError):
    status, code = 403, "forbidden"


class PathNotAllowed(Forbidden):
    code = "path-not-allowed"


class UrlNotAllowed(Forbidden):
    code = "url-not-allowed"


class NotFound(AugsvcError):
    status, code = 404, "not-found"


class RecipeNotFound(NotFound):
    code = "recipe-not-found"


class DatasetNotFound(NotFound):
    code = "dataset-not-found"


class ObjectNotFound(NotFound):
    code = "object-not-found"


class MethodNotAllowed(AugsvcError):
    status, code = 405, "method-not-allowed"


class NotAcceptable(AugsvcError):
    status, code = 406, "not-acceptable"


class RequestTimeout(AugsvcError):
    status, code = 408, "request-timeout"


class PreconditionFailed(AugsvcError):
    status, code = 412, "precondition-failed"


class PayloadTooLarge(AugsvcError):
    status, code = 413, "payload-too-large"


class TooManyImages(PayloadTooLarge):
    code = "too-many-images"


class ImageTooLarge(PayloadTooLarge):
    code = "image-too-large"


class UnsupportedMediaType(AugsvcError):
    status, code = 415, "unsupported-media-type"


class ValidationFailed(AugsvcError):
    status, code = 422, "validation-failed"


class InvalidRecipe(ValidationFailed):
    code = "invalid-recipe"


class InvalidReference(ValidationFailed):
    code = "invalid-reference"


class UndecodableImage(ValidationFailed):
    code = "undecodable-image"


class SampleUnreadable(ValidationFailed):
    """A sample of a registered dataset is missing or unreadable on the server (the detail
    names its index and path); fix the files or register the dataset again."""

    code = "sample-unreadable"


class RateLimited(AugsvcError):
    status, code = 429, "rate-limited"


class Unavailable(AugsvcError):
    status, code = 503, "unavailable"


class StoreUnavailable(Unavailable):
    code = "store-unavailable"


class Overloaded(Unavailable):
    code = "overloaded"


class ObjectStoreUnavailable(Unavailable):
    code = "object-store-unavailable"


class TransportError(AugsvcError):
    """The server could not be reached or the connection broke before a full answer."""

    status, code = None, "transport"


class DeadlineExceeded(AugsvcError):
    """The retry policy's total deadline passed before a call succeeded.

    The last failure is chained as ``__cause__`` and kept in ``last_error``.
    """

    status, code = None, "deadline-exceeded"

    def __init__(self, detail: str, *, last_error: BaseException | None = None, **kw: Any):
        super().__init__(detail, **kw)
        self.last_error = last_error


class StreamOutOfStep(AugsvcError):
    """A stream frame is not the next one for this rank: another epoch or position, or
    another recipe digest after a reconnect. Never retried: continuing would silently
    skip, repeat or mix samples."""

    status, code = None, "stream-out-of-step"


def all_errors() -> list[type[AugsvcError]]:
    """Every class in the tree, root first."""
    seen: list[type[AugsvcError]] = []
    queue: list[type[AugsvcError]] = [AugsvcError]
    while queue:
        cls = queue.pop(0)
        seen.append(cls)
        queue.extend(cls.__subclasses__())
    return seen


def _by_code() -> dict[str, type[AugsvcError]]:
    return {cls.code: cls for cls in all_errors()}


def _by_status() -> dict[int, type[AugsvcError]]:
    """The most general class for each status (the first met walking from the root)."""
    table: dict[int, type[AugsvcError]] = {}
    for cls in all_errors():
        if cls.status is not None:
            table.setdefault(cls.status, cls)
    return table


BY_CODE = _by_code()
BY_STATUS = _by_status()


def _field_errors(raw: object) -> list[FieldError]:
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, Mapping):
            loc = item.get("loc", ())
            loc_t = tuple(loc) if isinstance(loc, list | tuple) else (str(loc),)
            out.append(FieldError(loc_t, str(item.get("msg", ""))))
    return out


def from_problem(
    status: int,
    body: Mapping[str, Any] | bytes | str | None,
    headers: Mapping[str, str] | None = None,
) -> AugsvcError:
    """The exception for an error response: by ``code``, else by status, else the base.

    ``body`` is the parsed problem+json object, or raw bytes/text (parsed here when it is
    JSON; otherwise it becomes the detail, e.g. an HTML page from a proxy).
    """
    problem: Mapping[str, Any] = {}
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            problem = parsed
        else:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            problem = {"detail": text.strip()[:500]}
    elif isinstance(body, Mapping):
        problem = body
    code = problem.get("code")
    cls = BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None or cls.status != status:  # client-side classes have no status
        cls = BY_STATUS.get(status, AugsvcError)
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    return cls(
        str(detail),
        status=status,
        code=code if isinstance(code, str) else None,
        errors=_field_errors(problem.get("errors")),
        problem=problem,
        headers=headers,
    )


__all__ = [cls.__name__ for cls in all_errors()] + ["FieldError", "all_errors", "from_problem"]
