"""The one batch pipeline every path runs, and the memory model it admits jobs with.

``batch.run_batch`` takes a batch of sources and an encoder; ``cost`` says what a job
holds, ``budget`` admits it, ``decode`` plans each image's decode at the scale and
region its sample reads, ``encoders`` turn a rendered batch into bytes.
"""

from augsvc.pipeline.batch import BatchJob, DecodedBatch, EncodedBatch, File, Limits, run_batch
from augsvc.pipeline.budget import MemoryBudget
from augsvc.pipeline.cost import JobCost
from augsvc.pipeline.encoders import (
    RESPONSE_ENCODERS,
    FrameEncoder,
    GridEncoder,
    Rendered,
    ResponseOptions,
    SafetensorsEncoder,
    ZipEncoder,
)

__all__ = [
    "RESPONSE_ENCODERS",
    "BatchJob",
    "DecodedBatch",
    "EncodedBatch",
    "File",
    "FrameEncoder",
    "GridEncoder",
    "JobCost",
    "Limits",
    "MemoryBudget",
    "Rendered",
    "ResponseOptions",
    "SafetensorsEncoder",
    "ZipEncoder",
    "run_batch",
]
