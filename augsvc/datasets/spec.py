"""What a dataset registration says: its kind and where it lives.

Every source module builds on this one and none of them is imported by it, so the
spec is shared without the sources knowing each other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from augsvc.errors import ValidationFailed, field_errors


class DatasetSpec(BaseModel):
    """What PUT /v1/datasets/{name} takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["folder", "webdataset", "coco", "paired"] = Field(
        description="folder: ImageFolder layout (class subfolders give labels); "
        "webdataset: .tar shards of key.jpg/key.png with optional key.cls; "
        "coco: an images folder (path) and a COCO instances/keypoints JSON "
        "(annotations): boxes, category ids, keypoints, instance masks; "
        "paired: path holds images/ and masks/, matched by file stem"
    )
    path: str | None = Field(
        default=None, min_length=1, max_length=4096, description="Under AUGSVC_DATA_ROOTS."
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Instead of path: s3://bucket/prefix in object storage, under "
        "AUGSVC_DATA_URLS.",
    )
    annotations: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="coco only: the COCO JSON file, under AUGSVC_DATA_ROOTS.",
    )

    @model_validator(mode="after")
    def _one_location(self) -> DatasetSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (a server folder) and url (s3://...)")
        if (self.annotations is None) == (self.kind == "coco"):
            raise ValueError("annotations (a COCO JSON file) is given exactly for kind coco")
        if self.url is not None and self.kind in ("coco", "paired"):
            raise ValueError(f"{self.kind} datasets are read from a server folder (path)")
        return self


def parse_spec(document: Any) -> DatasetSpec:
    """Validate a registration body (already parsed), ValidationFailed naming each bad
    field as ``body.<field>``."""
    try:
        return DatasetSpec.model_validate(document)
    except ValidationError as exc:
        errors = field_errors(exc, ("body",))
        detail = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in errors[:5])
        raise ValidationFailed(f"invalid dataset registration: {detail}", errors=errors) from None
