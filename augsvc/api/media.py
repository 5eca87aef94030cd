"""Media types: what a request body is, and which response type the client accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from augsvc.errors import NotAcceptable, UnsupportedMediaType


def base_type(content_type: str | None) -> str:
    """``"multipart/form-data; boundary=x"`` -> ``"multipart/form-data"`` (lowercase)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_content_type(content_type: str | None, supported: Sequence[str]) -> str:
    """The body's base type if supported, else 415 naming the supported ones."""
    kind = base_type(content_type)
    if kind not in supported:
        shown = repr(kind) if kind else "none"
        raise UnsupportedMediaType(
            f"unsupported Content-Type {shown}: send one of {', '.join(supported)}"
        )
    return kind


#: What clients send when nobody chose a type: none at all, curl's default for ``-d`` and
#: ``--data-binary`` (form-urlencoded), and the generic binary and text types. A document
#: sent with one of these is recognised by its first byte rather than refused.
UNLABELLED = ("", "application/x-www-form-urlencoded", "application/octet-stream", "text/plain")


def document_syntaxes(
    content_type: str | None,
    body: bytes | bytearray,
    json_type: str,
    yaml_types: Sequence[str] = (),
) -> list[Literal["json", "yaml"]]:
    """How to parse a document body, in the order to try: by its Content-Type when it
    names JSON or YAML; sniffed when the type is unlabelled (``{`` or ``[`` first: JSON,
    then YAML where YAML is taken, for YAML's flow style; anything else: YAML, or JSON
    where only JSON is taken); otherwise 415 naming the header to send."""
    kind = base_type(content_type)
    if kind == json_type:
        return ["json"]
    if kind in yaml_types:
        return ["yaml"]
    if kind in UNLABELLED:
        if not yaml_types:
            return ["json"]
        return ["json", "yaml"] if body.lstrip()[:1] in (b"{", b"[") else ["yaml"]
    accepted = " or ".join([json_type, *yaml_types[:1]])
    raise UnsupportedMediaType(
        f"unsupported Content-Type {kind!r}: send the document with the header"
        f" 'Content-Type: {accepted}'"
    )


def _accept_entries(accept: str) -> list[tuple[str, float]]:
    entries = []
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        quality = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        entries.append((parts[0].lower(), quality))
    return entries


def _quality(offer: str, entries: list[tuple[str, float]]) -> float:
    """RFC 9110 12.5.1: the most specific matching range decides."""
    major = offer.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for media_range, quality in entries:
        if media_range == offer:
            specificity = 2
        elif media_range == f"{major}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


def negotiate(accept: str | None, offers: Sequence[str]) -> str:
    """The offer the client likes best (ties: the server's order); 406 when none fits."""
    if not accept or not accept.strip():
        return offers[0]
    entries = _accept_entries(accept)
    scored = [(_quality(offer, entries), -i, offer) for i, offer in enumerate(offers)]
    quality, _, offer = max(scored)
    if quality <= 0:
        raise NotAcceptable(
            f"cannot answer with Accept {accept[:100]!r}: available types are {', '.join(offers)}"
        )
    return offer
