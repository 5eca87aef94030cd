"""Server-side image sources for streaming: specs, path confinement, readers, epoch order."""

from augsvc.datasets.order import epoch_order, rank_positions, sample_keys
from augsvc.datasets.paths import confine
from augsvc.datasets.source_base import Source
from augsvc.datasets.sources import open_source
from augsvc.datasets.spec import DatasetSpec, parse_spec

__all__ = [
    "DatasetSpec",
    "Source",
    "confine",
    "epoch_order",
    "open_source",
    "parse_spec",
    "rank_positions",
    "sample_keys",
]
