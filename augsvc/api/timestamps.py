"""One timestamp convention for every record the API returns.

Stores keep Unix seconds (a float sorts and compares cheaply); the wire carries RFC 3339
UTC strings with milliseconds, ``2025-01-31T12:00:00.123Z``, which every JSON consumer
can read without knowing the epoch, for recipes and datasets alike.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_timestamp(unix_seconds: float) -> str:
    """``1738324800.123`` -> ``"2025-01-31T12:00:00.123Z"``."""
    moment = datetime.fromtimestamp(unix_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
