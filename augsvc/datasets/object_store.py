"""The S3 client of dataset streams: listing, whole and ranged reads, typed failures.

One :class:`ObjectStore` per process talks to the one configured endpoint through
botocore, which brings the whole AWS credential chain (environment variables, web
identity as on EKS, container and instance roles: never anything from a request) and
retries transient failures (throttling, 5xx, dropped connections) with exponential
backoff and jitter. Redirects are not followed: botocore's HTTP layer hands a 3xx back
as an error, which becomes a typed 503 here, so an endpoint cannot send the server to
another host.

A ranged read accepts ``206 Partial Content``, and also a ``200`` whose ``Content-Range``
is the range asked for (some S3-compatible servers answer so); a ``200`` without it is
the whole object, sliced here. Its length is checked either way.

Every failure is an error of :mod:`augsvc.errors`: a missing bucket or object is
:class:`ObjectNotFound` (404), anything else that survives the retries is
:class:`ObjectStoreUnavailable` (503, resumable). Messages name the bucket and key, and
the S3 error code, never a credential.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from augsvc.errors import AugsvcError, ObjectNotFound, ObjectStoreUnavailable

log = logging.getLogger("augsvc.datasets.objects")

#: Attempts per request, first included: botocore's standard retry mode, and the same
#: count again around reading a body whose connection drops half-way.
ATTEMPTS = 5
_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_REFUSED = {
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "403",
}  # fmt: skip
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
T = TypeVar("T")
#: (bucket, key, start, end): a whole object when start and end are None.
Read = tuple[str, str, int | None, int | None]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


def client_installed() -> bool:
    try:
        import botocore  # noqa: F401
    except ImportError:
        return False
    return True


class ObjectStore:
    """One S3-compatible endpoint, shared by every dataset and stream of a process.

    ``pool`` bounds how many reads are in flight at once (prefetch and indexing).
    Thread-safe: botocore clients are, and the counters take a lock.
    """

    def __init__(
        self, endpoint: str, region: str, *, concurrency: int = 16, attempts: int = ATTEMPTS
    ) -> None:
        self.custom_endpoint = bool(endpoint)
        self.endpoint = endpoint or f"https://s3.{region}.amazonaws.com"
        self.region = region
        self.concurrency = concurrency
        self.attempts = attempts
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="augsvc-objects")
        self._client: Any = None
        self._lock = threading.Lock()
        #: Requests sent (lists, heads, gets), for the metrics and for tests that check
        #: what an index cache saves.
        self.requests = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError:
            raise ObjectStoreUnavailable(
                "object-store datasets need the s3 extra: pip install 'augsvc[s3]'"
            ) from None
        config = Config(
            region_name=self.region,
            signature_version="s3v4",
            # Path-style requests keep the host the configured one for any bucket name.
            s3={"addressing_style": "path" if self.custom_endpoint else "auto"},
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=self.concurrency + 4,
            user_agent_extra="augsvc",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = botocore.session.Session()
        client = session.create_client("s3", endpoint_url=self.endpoint, config=config)
        client.meta.events.register_first("needs-retry.s3", _no_region_redirects)
        return client

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run one request; botocore's exceptions become augsvc errors naming ``what``."""
        self._count()
        try:
            return fn(self._s3())
        except AugsvcError:
            raise
        except Exception as exc:
            raise _translate(exc, what, self.attempts) from None

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (listing order, unsorted)."""
        where = f"s3://{bucket}/{prefix}"
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(where, lambda s3, kw=kwargs: s3.list_objects_v2(**kw))
            for item in page.get("Contents", []):
                found.append(ObjectInfo(item["Key"], int(item["Size"]), item.get("ETag", "")))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's size and ETag, or None when there is no such object."""
        try:
            got = self._call(
                f"s3://{bucket}/{key}", lambda s3: s3.head_object(Bucket=bucket, Key=key)
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(key, int(got["ContentLength"]), got.get("ETag", ""))

    def get(self, bucket: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The object, or its bytes ``[start, end)``."""
        where = f"s3://{bucket}/{key}"
        for attempt in range(1, self.attempts + 1):
            try:
                return self._get_once(bucket, key, start, end, where)
            except _BodyDropped as dropped:
                if attempt == self.attempts:
                    raise dropped.error from None
                log.warning("reading %s again (attempt %d): %s", where, attempt + 1, dropped)
                time.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

    def _get_once(
        self, bucket: str, key: str, start: int | None, end: int | None, where: str
    ) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start is not None:
            if end is None or end <= start:
                raise ValueError("a ranged read needs start < end")
            kwargs["Range"] = f"bytes={start}-{end - 1}"
        answer = self._call(where, lambda s3: s3.get_object(**kwargs))
        try:
            body = answer["Body"].read()
        except Exception as exc:  # the connection dropped half-way: botocore does not retry
            raise _BodyDropped(_translate(exc, where, 1)) from None
        if start is None:
            return body
        return _the_range(body, answer.get("ContentRange"), start, end, where)  # type: ignore[arg-type]

    def submit_many(self, reads: Sequence[Read]) -> list[Future[bytes]]:
        """Start several reads on the pool (at most ``concurrency`` run at once)."""
        return [self.pool.submit(self.get, *read) for read in reads]


def gather(futures: Sequence[Future[bytes]]) -> list[bytes]:
    """The results in order; the first failure is raised and the reads not yet started
    are cancelled."""
    try:
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()


class _BodyDropped(Exception):
    def __init__(self, error: AugsvcError) -> None:
        super().__init__(error.detail)
        self.error = error


def _no_region_redirects(request_dict: dict[str, Any], **_: Any) -> None:
    """Turn off botocore's S3 region redirector: it would answer a redirect by asking the
    bucket's region (a HEAD, which an endpoint that redirects everything answers with a
    redirect again) and re-sending. The region is configured; a wrong one is an error."""
    redirect = request_dict.get("context", {}).get("s3_redirect")
    if isinstance(redirect, dict):
        redirect["redirected"] = True  # what the redirector checks to never redirect twice


def _the_range(body: bytes, content_range: str | None, start: int, end: int, where: str) -> bytes:
    want = end - start
    if content_range:
        match = _CONTENT_RANGE.fullmatch(content_range.strip())
        if not match or int(match.group(1)) != start or int(match.group(2)) != end - 1:
            raise ObjectStoreUnavailable(
                f"{where}: asked for bytes {start}-{end - 1}, the object store answered "
                f"{content_range[:60]!r}"
            )
    elif len(body) != want:  # the range was ignored: this is the whole object
        body = body[start:end]
    if len(body) != want:
        raise ObjectStoreUnavailable(
            f"{where}: {len(body)} bytes where {want} were asked for (the object changed?)"
        )
    return body


def _translate(exc: Exception, where: str, attempts: int) -> AugsvcError:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return ObjectNotFound(f"{where}: no such {what} ({code})")
        if code in _REFUSED:
            return ObjectStoreUnavailable(
                f"{where}: the object store refused the server's credentials ({code}); "
                "check the deployment's AWS_* environment or role"
            )
        if isinstance(status, int) and 300 <= status < 400:
            return ObjectStoreUnavailable(
                f"{where}: the object store answered with a redirect (HTTP {status}, {code}), "
                "which is not followed: check AUGSVC_S3_ENDPOINT and AUGSVC_S3_REGION"
            )
        return ObjectStoreUnavailable(f"{where}: the object store answered {code} (HTTP {status})")
    if isinstance(exc, NoCredentialsError):
        return ObjectStoreUnavailable(
            f"{where}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
            "server's environment, or give it a role"
        )
    if isinstance(exc, BotoCoreError | OSError):
        return ObjectStoreUnavailable(
            f"{where}: the object store could not be read after {attempts} attempt(s) "
            f"({type(exc).__name__})"
        )
    return ObjectStoreUnavailable(f"{where}: {type(exc).__name__} while reading")
