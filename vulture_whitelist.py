"""Names vulture cannot see used: public SDK API and attributes read by other libraries.

``make lint`` runs vulture over augsvc/ and the SDK with this file; everything else it
reports is dead code. Tests do not count as users.
"""

from augsvc_client.async_client import AsyncClient
from augsvc_client.batches import StreamBatch
from augsvc_client.client import Client
from augsvc_client.errors import RateLimited
from augsvc_client.regularization.dropout import DropoutSchedule
from augsvc_client.torch_data import AugsvcIterableDataset, collate_detection

from augsvc.datasets.ranged_file import RangedFile

Client.augment_iter  # noqa: B018  public SDK API
AsyncClient.augment_iter  # noqa: B018  public SDK API
AugsvcIterableDataset.set_epoch  # noqa: B018  called by training loops, as DistributedSampler's
collate_detection  # noqa: B018  public SDK API: a DataLoader collate_fn
DropoutSchedule.state_dict  # noqa: B018  torch checkpointing protocol
DropoutSchedule.load_state_dict  # noqa: B018  torch checkpointing protocol
RangedFile.readable  # noqa: B018  the io protocol, which tarfile uses
RangedFile.seekable  # noqa: B018
RangedFile.tell  # noqa: B018
RateLimited  # noqa: B018  found by walking the error tree (a proxy's 429)
_.compress_type  # noqa: B018, F821  zipfile.ZipInfo fields read by zipfile
_.external_attr  # noqa: B018, F821
_.__cause__  # noqa: B018, F821  exception chaining read by tracebacks
StreamBatch.soft_targets  # noqa: B018  public SDK API (a mixing stream's soft targets)
_.writeable  # noqa: B018, F821  numpy array flags, set read-only on cached arrays
_.all_ops  # noqa: B018, F821  an augmix field, read by its table validator from the field data
