"""API keys with scopes: ``read`` (augment, preview, GET) and ``admin`` (writes; implies read).

Keys come from ``settings.api_keys`` as ``key1:admin,key2:read``. A presented key must
equal a configured key byte for byte: no prefix, extension, other case or added
whitespace matches. It is compared with *every* configured key using
``hmac.compare_digest`` and no early exit, on SHA-256 digests rather than the keys
themselves: ``compare_digest`` returns at once when its inputs differ in length, so
comparing raw keys would tell a caller how long each key is; digests all have one
length, so response time says nothing about which key, how long, or how much of one was
guessed. Keys are never logged or echoed in errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum

from augsvc.errors import Forbidden, Unauthorized

#: The whitespace HTTP allows around a header value and between ``Bearer`` and its key
#: (``str.strip()`` would also drop no-break spaces and other Unicode spaces, which are
#: part of what the client sent).
_HTTP_SPACE = " \t"


class Scope(IntEnum):
    """Ordered so that a higher scope implies every lower one."""

    READ = 1
    ADMIN = 2


@dataclass(frozen=True)
class Principal:
    """Who made the request: the scope of the matching key (keys themselves stay secret)."""

    scope: Scope


def _fingerprint(key: bytes) -> bytes:
    """What keys are compared by: every fingerprint has the same length (see the module)."""
    return hashlib.sha256(key).digest()


class KeyRing:
    """The configured keys; empty = the service is open."""

    def __init__(self, entries: list[tuple[bytes, Scope]]) -> None:
        self._entries = [(_fingerprint(key), scope) for key, scope in entries]

    @classmethod
    def parse(cls, spec: str | None) -> KeyRing:
        """``"k1:admin,k2:read"`` -> KeyRing; a malformed entry stops the service starting."""
        entries: list[tuple[bytes, Scope]] = []
        for position, raw in enumerate((spec or "").split(",")):
            item = raw.strip()
            if not item:
                continue
            key, sep, scope = item.rpartition(":")
            if not sep or not key or scope.strip().lower() not in ("read", "admin"):
                # Only the position: the entry itself is a secret.
                raise ValueError(
                    f"AUGSVC_API_KEYS entry {position + 1} is not `key:read` or `key:admin`"
                )
            entries.append((key.encode(), Scope[scope.strip().upper()]))
        return cls(entries)

    @property
    def open(self) -> bool:
        return not self._entries

    def authenticate(self, presented: str | None, required: Scope) -> Principal | None:
        """The caller's principal, or None when the service is open.

        Raises Unauthorized (no key / unknown key) or Forbidden (key lacks ``required``).
        """
        if self.open:
            return None
        if not presented:
            raise Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        # surrogatepass: a str that is not valid Unicode is still bytes to compare, never
        # an encoding error (it then matches no key, since every configured key encodes)
        candidate = _fingerprint(presented.encode("utf-8", "surrogatepass"))
        match: Principal | None = None
        for fingerprint, scope in self._entries:
            if hmac.compare_digest(fingerprint, candidate) and match is None:
                match = Principal(scope=scope)
        if match is None:
            raise Unauthorized("unknown API key")
        if match.scope < required:
            raise Forbidden(
                f"this API key has {match.scope.name.lower()} scope; "
                f"this request needs {required.name.lower()}"
            )
        return match


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>``, ``X-API-Key``, or the password of
    ``Authorization: Basic`` (any user name), in that order.

    Basic is what a browser can send on a plain navigation (the playground page asks for
    it with a Basic challenge), and it sends it again by itself on every request to the
    same origin; a key the page sets explicitly (``X-API-Key``) therefore wins over it.

    Only HTTP's own whitespace (space, tab) is trimmed: anything else around the key,
    such as a no-break space, is part of what was presented, so it matches no key.
    """
    kind, _, value = (authorization or "").strip(_HTTP_SPACE).partition(" ")
    value = value.strip(_HTTP_SPACE)
    if kind.lower() == "bearer" and value:
        return value
    if x_api_key and x_api_key.strip(_HTTP_SPACE):
        return x_api_key.strip(_HTTP_SPACE)
    if kind.lower() == "basic" and value:
        return _basic_password(value)
    return None


def _basic_password(token: str) -> str | None:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep and password else None
