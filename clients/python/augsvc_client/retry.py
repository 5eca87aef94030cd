"""When to retry a call and how long to wait: small pure functions plus a policy.

Only idempotent calls are retried (GET/PUT/DELETE, and augment with an explicit seed),
and only on failures that say nothing about the request itself: the connection failed
(:class:`~augsvc_client.errors.TransportError`), 429, or 503. Waits grow exponentially
with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"), a server's
``Retry-After`` is a lower bound on the wait, and the whole call, attempts and waits
included, is bounded by ``RetryPolicy.deadline``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import AugsvcError, DeadlineExceeded, TransportError

RETRYABLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all (1 = no retry), within ``deadline`` seconds in total."""

    attempts: int = 4
    base: float = 0.1
    cap: float = 5.0
    deadline: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base < 0 or self.cap < 0 or self.deadline <= 0:
            raise ValueError("base and cap must be >= 0 and deadline > 0")


def is_retryable(failure: int | BaseException, idempotent: bool) -> bool:
    """Whether a failed call may be sent again: a status code or the raised exception."""
    if not idempotent:
        return False
    if isinstance(failure, TransportError):
        return True
    if isinstance(failure, AugsvcError):
        return failure.status in RETRYABLE_STATUSES
    if isinstance(failure, BaseException):
        return False
    return failure in RETRYABLE_STATUSES


def backoff(
    attempt: int, base: float, cap: float, jitter_rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0-based): uniform in
    ``[0, min(cap, base * 2**attempt)]`` ("full jitter")."""
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    rng = jitter_rng if jitter_rng is not None else random
    return rng.uniform(0.0, ceiling)


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date), else None.

    ``headers`` must look keys up case-insensitively (httpx.Headers does) or use the
    canonical ``Retry-After`` spelling. A date in the past gives 0.
    """
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass
class RetryState:
    """The bookkeeping of one call under a policy; both clients drive it the same way.

    ``delay(error)`` returns how long to sleep before the next attempt, or raises: the
    error itself when it is not retryable or the attempts are spent, and
    :class:`DeadlineExceeded` when the wait would pass the deadline.
    """

    policy: RetryPolicy
    idempotent: bool
    rng: random.Random | None = None
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.policy.deadline - (self.clock() - self.started)

    def reset(self) -> None:
        """Progress was made (a stream delivered a frame): start counting afresh."""
        self.attempt = 0
        self.started = self.clock()

    def delay(self, error: AugsvcError) -> float:
        self.attempt += 1
        if not is_retryable(error, self.idempotent) or self.attempt >= self.policy.attempts:
            raise error
        wait = backoff(self.attempt - 1, self.policy.base, self.policy.cap, self.rng)
        asked = retry_after(error.headers) if error.headers else None
        if asked is not None:
            wait = max(wait, asked)
        if wait >= self.remaining():
            raise DeadlineExceeded(
                f"gave up after {self.attempt} attempt(s): the next wait ({wait:.2f}s) "
                f"passes the {self.policy.deadline:g}s deadline; last error: {error}",
                last_error=error,
            ) from error
        return wait
