"""Settings: the only way augsvc is configured (environment variables, prefix ``AUGSVC_``).

Nothing builds a Settings at import time; ``create_app(settings)`` and the CLI do.
Every field here is listed in the README's settings table.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "AUGSVC_"
#: Settings that were replaced, and what replaced them.
RETIRED = {"MAX_REQUEST_PIXELS": "MAX_JOB_BYTES", "MAX_INFLIGHT_PIXELS": "MAX_INFLIGHT_BYTES"}
#: AUGSVC_* variables that are not the service's settings: the SDK's and the CLI's.
CLIENT_VARIABLES = frozenset({"URL", "API_KEY"})
REDIS_URL_FORM = (
    "redis://[:password@]host[:port][/db], rediss://... for TLS or unix:///path/to/socket"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL for recipes and datasets; unset = embedded in-memory store.",
        json_schema_extra={"form": REDIS_URL_FORM},
    )
    redis_prefix: str = Field(default="augsvc", description="Key prefix in Redis.")
    device: str = Field(
        default="auto",
        description="auto | cpu | cuda | cuda:N",
        json_schema_extra={"form": "auto, cpu, cuda or cuda:N"},
    )
    device_decode: bool = Field(
        default=False,
        description="On CUDA, decode uploaded baseline JPEGs with nvJPEG in one batch "
        "(pixels a few grey levels from libjpeg's, so off unless asked for).",
    )

    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated `key:scope` pairs (scope read or admin); unset = open.",
    )

    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest request body (413 beyond it)."
    )
    # A stalled body is dropped after the gap timeout: the longest wait for the next chunk.
    # A gap rather than a total is what tells a stall from a slow link: an honest 64 MiB
    # upload over a slow link keeps sending and may take minutes, a stalled client sends
    # nothing. A client dripping a byte just inside every gap would still hold its
    # connection for ever, so the total deadline bounds the whole body too, set wide
    # enough for the largest body over a slow link (64 MiB at about 110 KB/s).
    body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for the next chunk of a request body (408 beyond it).",
    )
    body_read_deadline_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest time a whole request body may take to arrive (408 beyond it).",
    )
    max_images: int = Field(default=256, gt=0, description="Images per request.")
    max_image_pixels: int = Field(
        default=40_000_000, gt=0, description="Pixels per decoded image (decompression bombs)."
    )
    max_output_pixels: int = Field(
        default=256 * 1024 * 1024, gt=0, description="Output pixels per request (N*H*W)."
    )
    max_job_bytes: int = Field(
        default=2 * 1024**3,
        gt=0,
        description="Memory one job may hold (an augment request, a preview, a stream batch): "
        "decoded inputs, masks, the engine's working copies, outputs and the encoded "
        "response, estimated from headers and the recipe before decoding (413 beyond).",
    )
    max_inflight_bytes: int = Field(
        default=6 * 1024**3,
        gt=0,
        description="Memory the process's jobs and streams hold at once, by the same "
        "estimate (503 + Retry-After beyond; 413 for one job larger than all).",
    )
    plan_cache_size: int = Field(default=256, gt=0, description="Compiled plans per process.")
    queue_depth: int = Field(default=8, gt=0, description="Engine jobs waiting before 503.")
    engine_threads: int = Field(
        default=0,
        ge=0,
        description="Requests the engine works on at once (each also uses torch's own threads); "
        "0 = automatic: 1 on the CPU, 3 on CUDA (a stream each).",
    )
    preview_max: int = Field(
        default=64, gt=0, le=256, description="Most augmentations one preview grid may show."
    )
    max_recipe_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest recipe document a PUT accepts."
    )
    data_roots: str = Field(
        default="",
        description="Comma-separated folders that registered datasets must lie under; "
        "empty = dataset registration refused.",
    )
    data_urls: str = Field(
        default="",
        description="Comma-separated object-store URL prefixes (s3://bucket/prefix) that "
        "registered datasets must lie under; empty = object-store datasets refused.",
        json_schema_extra={"form": "comma-separated s3://bucket/prefix URLs"},
    )
    s3_endpoint: str = Field(
        default="",
        description="The one S3-compatible endpoint datasets are read from "
        "(https://host[:port]); empty = AWS S3 in s3_region.",
        json_schema_extra={"form": "http(s)://host[:port]"},
    )
    s3_region: str = Field(default="us-east-1", description="Region the S3 requests sign for.")
    object_reads: int = Field(
        default=16,
        gt=0,
        le=256,
        description="Object-store reads in flight at once per process (prefetch and indexing).",
    )
    max_streams: int = Field(
        default=4, gt=0, description="Concurrent dataset streams per process (503 beyond)."
    )
    stream_prefetch: int = Field(
        default=2,
        gt=0,
        le=16,
        description="Batches a stream renders ahead of the socket (bounds its memory).",
    )

    op_modules: str = Field(
        default="",
        description="Comma-separated Python modules imported at start whose ops register "
        "themselves (custom ops); empty = the built-in ops only.",
    )

    @model_validator(mode="after")
    def _no_retired_variables(self) -> Settings:
        """A variable that no longer exists would be ignored silently; say what replaced it
        (``settings_problems`` names every one that is set)."""
        retired = retired_variables(os.environ)
        if retired:
            raise ValueError(retired[0])
        return self

    @field_validator("redis_url", mode="before")
    @classmethod
    def _blank_redis_url_is_unset(cls, value: Any) -> Any:
        """``AUGSVC_REDIS_URL=`` (a compose file's empty value) names no Redis: unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        """Anything else would fail only when the store opens, after the settings check,
        as a lifespan traceback. The message names the scheme, never the URL (it may hold
        a password)."""
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in ("redis", "rediss", "unix"):
            shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            raise ValueError(f"not a Redis URL ({shown})")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise ValueError("not a Redis URL (its port is not a number)") from None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("data_urls")
    @classmethod
    def _urls_parse_and_a_client_is_installed(cls, value: str) -> str:
        """A bad allow-list entry or a missing client stops the service at start."""
        from augsvc.datasets.object_urls import parse_object_url
        from augsvc.errors import AugsvcError

        entries = [u.strip() for u in value.split(",") if u.strip()]
        for entry in entries:
            try:
                parse_object_url(entry)
            except AugsvcError as exc:
                raise ValueError(exc.detail) from None
        if entries and importlib.util.find_spec("botocore") is None:
            raise ValueError("object-store datasets need the s3 extra: pip install 'augsvc[s3]'")
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_is_a_base_url(cls, value: str) -> str:
        from augsvc.datasets.object_urls import check_endpoint

        return check_endpoint(value.strip()) if value.strip() else ""

    @property
    def redis_location(self) -> str | None:
        """The Redis URL with its password masked, for messages and logs."""
        return None if self.redis_url is None else masked_url(self.redis_url.get_secret_value())

    @property
    def op_module_names(self) -> list[str]:
        return [m.strip() for m in self.op_modules.split(",") if m.strip()]

    @property
    def data_root_paths(self) -> list[Path]:
        """The resolved data roots (symlinks followed), for path confinement."""
        return [Path(p.strip()).resolve() for p in self.data_roots.split(",") if p.strip()]

    @property
    def data_url_prefixes(self) -> list[str]:
        return [u.strip() for u in self.data_urls.split(",") if u.strip()]


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the user part or the query)."""
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{hostport}")
    if "password" in parts.query.lower():
        parts = parts._replace(query="***")
    return urlunsplit(parts)


# --- what a bad environment is told ----------------------------------------------------

#: pydantic's error types that mean "this text is not a value of the field's type".
_NOT_PARSED = {
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "float_parsing": "not a number",
    "bool_parsing": "not true or false",
}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def expected_form(field: FieldInfo) -> str:
    """What a field's variable takes, in words: its type, bounds and default."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "form" in extra:
        form = str(extra["form"])
    elif field.annotation is bool:
        form = "true or false"
    elif field.annotation in (int, float):
        kind = "a whole number" if field.annotation is int else "a number"
        bounds = [
            f"{symbol} {getattr(m, name)}"
            for m in field.metadata
            for name, symbol in _BOUNDS
            if getattr(m, name, None) is not None
        ]
        form = " ".join([kind, " and ".join(bounds)]).strip()
    else:
        form = "text"
    if field.default is not None and field.default != "" and not isinstance(field.default, bool):
        return f"{form} (default {field.default})"
    return form


def _what_is_wrong(error: Mapping[str, Any]) -> str:
    if error["type"] in _NOT_PARSED:
        return _NOT_PARSED[error["type"]]
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
    return message if error["msg"].startswith("Value error") else f"should be {message}"


def _shown_value(name: str, value: Any) -> str:
    """The value as set, unless the field may hold a secret (then only that it was set)."""
    annotation = Settings.model_fields[name].annotation
    if annotation is SecretStr or SecretStr in get_args(annotation):
        return ""
    text = str(value)
    return f"={text[:60]!r}" if len(text) <= 60 else f"={text[:57]!r}..."


def settings_problems(error: ValidationError, environ: Mapping[str, str]) -> list[str]:
    """One line per bad variable: ``AUGSVC_<NAME>='value': what is wrong; expected
    <form>``; retired variables named with what replaced them."""
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        if name not in Settings.model_fields:
            lines.append(_what_is_wrong(item))  # a check across fields names its variables
            continue
        field = Settings.model_fields[name]
        lines.append(
            f"{PREFIX}{name.upper()}{_shown_value(name, item.get('input'))}: "
            f"{_what_is_wrong(item)}; expected {expected_form(field)}"
        )
    for line in retired_variables(environ):
        if line not in lines:
            lines.append(line)
    return lines


def retired_variables(environ: Mapping[str, str]) -> list[str]:
    """A refusal for each retired variable that is set, naming what replaced it."""
    names = {key.upper() for key in environ}
    return [
        f"{PREFIX}{old} is retired: set {PREFIX}{new} (bytes) instead"
        for old, new in RETIRED.items()
        if f"{PREFIX}{old}" in names
    ]


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each AUGSVC_* variable that is no setting: a misspelt one would be
    ignored in silence, and the service run on a default its operator meant to change."""
    fields = [name.upper() for name in Settings.model_fields]
    known = {*fields, *CLIENT_VARIABLES, *RETIRED}
    warnings = []
    for key in sorted(environ):
        name = key.upper().removeprefix(PREFIX)
        if not key.upper().startswith(PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "the README lists every setting"
        warnings.append(f"{key} is not a setting and is ignored: {hint}")
    return warnings
