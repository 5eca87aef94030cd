"""The decoded-pixel budget: how many pixels one request, and the whole process, may hold
decoded at once.

Uploads are compressed and decoded pixels are not: a 36-megapixel black PNG is about
100 KB on the wire and 108 MB decoded, so a request well under the body limit could
ask for tens of gigabytes. Every path that decodes (augment requests, previews, stream
batches) therefore learns its cost from the image headers first and holds that many
pixels of this budget while it decodes, augments and encodes:

- a cost over ``per_request`` (``AUGSVC_MAX_REQUEST_PIXELS``) is refused with 413
  before any pixel is decoded;
- the costs held at once never pass ``in_flight`` (``AUGSVC_MAX_INFLIGHT_PIXELS``): one
  that does not fit waits up to ``wait_s`` for others to finish, then gets 503
  Overloaded with Retry-After, like a full engine queue;
- a cost larger than the whole of ``in_flight`` gets 413 at once rather than waiting
  for room that can never appear.

Counting pixels, not bytes, keeps the settings readable ("a 256-image batch of 500x375
is 48 megapixels"); the README turns them into memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from augsvc.errors import Overloaded, PayloadTooLarge

RETRY_AFTER_S = 1


class PixelBudget:
    def __init__(
        self,
        per_request: int,
        in_flight: int,
        *,
        on_change: Callable[[int], None] = lambda _: None,
        on_reject: Callable[[], None] = lambda: None,
    ) -> None:
        self.per_request = per_request
        self.in_flight = in_flight
        self._held = 0
        self._room = threading.Condition()
        self._on_change = on_change
        self._on_reject = on_reject

    @property
    def held(self) -> int:
        """Pixels held right now, over every request and stream."""
        return self._held

    def check(self, pixels: int, what: str) -> None:
        """413 when ``pixels`` can never be admitted (``what`` names the work)."""
        if pixels > self.per_request:
            raise PayloadTooLarge(
                f"{what}: {pixels} decoded pixels, more than the limit of "
                f"{self.per_request} per request (AUGSVC_MAX_REQUEST_PIXELS): send fewer or "
                "smaller images per request"
            )
        if pixels > self.in_flight:
            raise PayloadTooLarge(
                f"{what}: {pixels} decoded pixels, more than the server holds decoded at "
                f"once ({self.in_flight}, AUGSVC_MAX_INFLIGHT_PIXELS)"
            )

    @contextmanager
    def hold(self, pixels: int, what: str, *, wait_s: float = 0.0) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the ``with`` block.

        413 (:meth:`check`) for a cost that can never fit; 503 Overloaded when it does
        not fit within ``wait_s`` seconds because others hold the budget."""
        self.check(pixels, what)
        deadline = time.monotonic() + wait_s
        with self._room:
            while self._held + pixels > self.in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._on_reject()
                    raise Overloaded(
                        f"{what}: {pixels} decoded pixels do not fit, {self._held} of the "
                        f"{self.in_flight} the server holds at once "
                        "(AUGSVC_MAX_INFLIGHT_PIXELS) are taken by other requests; retry "
                        "after the Retry-After delay",
                        retry_after=RETRY_AFTER_S,
                    )
                self._room.wait(left)
            self._held += pixels
            self._on_change(self._held)
        try:
            yield
        finally:
            with self._room:
                self._held -= pixels
                self._on_change(self._held)
                self._room.notify_all()
