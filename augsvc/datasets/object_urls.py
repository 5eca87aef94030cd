"""Dataset URLs in object storage, and the allow-list they must fall under.

A dataset URL names a bucket and a key prefix, ``s3://bucket/prefix``, never a host: the
one endpoint the server talks to is configured (``AUGSVC_S3_ENDPOINT``), and so are the
credentials (the server's environment or platform identity). So a user who registers a
dataset can only choose *which allowed objects* are read, not *where from*: a URL with a
host, a port, an http(s) scheme or embedded credentials is refused before any request is
made (no server-side request forgery through a dataset URL).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from augsvc.errors import FieldError, UrlNotAllowed, ValidationFailed

# S3's rules for bucket names (3-63 characters, lower-case letters, digits, dots and
# hyphens, starting and ending with a letter or digit), without the IP-address form.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_KEY = 1024
SHOWN = 200


@dataclass(frozen=True)
class ObjectUrl:
    """``s3://bucket/key``: ``key`` is a prefix (no leading or trailing slash), or ""."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    def covers(self, other: ObjectUrl) -> bool:
        """``other`` is this prefix or lies under it, at a ``/`` boundary: ``s3://b/team``
        covers ``s3://b/team/x`` but not ``s3://b/team-b``."""
        if other.bucket != self.bucket:
            return False
        return not self.key or other.key == self.key or other.key.startswith(self.key + "/")


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _redacted(text: str) -> str:
    """The URL with anything before an ``@`` in its authority replaced, for messages."""
    scheme, sep, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return _shown(scheme + sep + authority + slash + path)


def _invalid(text: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"dataset URL {_redacted(text)!r}: {why}", errors=[FieldError(("body", "url"), why)]
    )


def parse_object_url(text: str) -> ObjectUrl:
    """The bucket and key prefix of ``s3://bucket[/prefix]``; UrlNotAllowed for a URL that
    names a host or port, ValidationFailed for anything else malformed."""
    if _CONTROL.search(text):
        raise _invalid(text, "contains a control character")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise _invalid(text, "is not a URL: expected s3://bucket/prefix")
    authority, _, key = rest.partition("/")
    if "@" in authority:
        raise _invalid(
            text,
            "credentials in a dataset URL are not accepted: the server reads with its own "
            "(environment or platform identity)",
        )
    if scheme.lower() in ("http", "https") or ":" in authority:
        raise UrlNotAllowed(
            f"dataset URL {_redacted(text)!r} names an endpoint: only s3://bucket/prefix URLs "
            "are accepted, read from the server's configured endpoint (AUGSVC_S3_ENDPOINT)",
            errors=[FieldError(("body", "url"), "names an endpoint")],
        )
    if scheme != "s3":
        raise _invalid(
            text,
            f"scheme {scheme[:20]!r} is not served: use s3://bucket/prefix (Google Cloud "
            "Storage and most on-premises stores serve the S3 API at their own endpoint)",
        )
    if not _BUCKET.fullmatch(authority) or ".." in authority or _IP_LIKE.fullmatch(authority):
        raise _invalid(text, f"{_shown(authority)!r} is not a valid bucket name")
    if "?" in key or "#" in key:
        raise _invalid(text, "query strings and fragments are not part of a dataset URL")
    key = key.strip("/")
    if len(key) > MAX_KEY:
        raise _invalid(text, f"the key prefix is longer than {MAX_KEY} characters")
    if key and any(part in ("", ".", "..") for part in key.split("/")):
        raise _invalid(text, "the key prefix has an empty, '.' or '..' segment")
    return ObjectUrl(authority, key)


def check_allowed(url: ObjectUrl, allowed: Sequence[ObjectUrl]) -> None:
    """UrlNotAllowed naming ``url`` unless an allow-list entry covers it."""
    if not allowed:
        raise UrlNotAllowed(
            f"dataset URL {_shown(str(url))!r} is not allowed: no dataset URLs are configured "
            "(set AUGSVC_DATA_URLS)"
        )
    if not any(entry.covers(url) for entry in allowed):
        raise UrlNotAllowed(
            f"dataset URL {_shown(str(url))!r} is outside the configured dataset URLs "
            "(AUGSVC_DATA_URLS)"
        )


def check_endpoint(text: str) -> str:
    """A configured endpoint as ``scheme://host[:port]``; ValueError when it is not one."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s)://host[:port] endpoint")
    if parts.username or parts.password:
        raise ValueError("the endpoint must not carry credentials: set AWS_ACCESS_KEY_ID etc.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: an endpoint has no path, query or fragment")
    port = parts.port  # ValueError for a bad port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
