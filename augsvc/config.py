"""Settings: the only way augsvc is configured (environment variables, prefix ``AUGSVC_``).

Nothing builds a Settings at import time; ``create_app(settings)`` and the CLI do.
Every field here is listed in the README's settings table.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Settings that were replaced, and what replaced them.
RETIRED = {"MAX_REQUEST_PIXELS": "MAX_JOB_BYTES", "MAX_INFLIGHT_PIXELS": "MAX_INFLIGHT_BYTES"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUGSVC_", extra="ignore")

    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL for recipes and datasets; unset = embedded in-memory store.",
    )
    redis_prefix: str = Field(default="augsvc", description="Key prefix in Redis.")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
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
    )
    s3_endpoint: str = Field(
        default="",
        description="The one S3-compatible endpoint datasets are read from "
        "(https://host[:port]); empty = AWS S3 in s3_region.",
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
        """A variable that no longer exists would be ignored silently; say what replaced it."""
        for old, new in RETIRED.items():
            if f"AUGSVC_{old}" in os.environ:
                raise ValueError(f"AUGSVC_{old} is retired: set AUGSVC_{new} (bytes) instead")
        return self

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
    def op_module_names(self) -> list[str]:
        return [m.strip() for m in self.op_modules.split(",") if m.strip()]

    @property
    def data_root_paths(self) -> list[Path]:
        """The resolved data roots (symlinks followed), for path confinement."""
        return [Path(p.strip()).resolve() for p in self.data_roots.split(",") if p.strip()]

    @property
    def data_url_prefixes(self) -> list[str]:
        return [u.strip() for u in self.data_urls.split(",") if u.strip()]
