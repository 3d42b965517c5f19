"""Store failures that may pass (the store did not answer, or failed on its side) told apart from the rest."""

from __future__ import annotations

from typing import Any, BinaryIO

from botocore import exceptions as boto
from minio.error import ServerError as MinioServerError
from urllib3 import exceptions as urllib3

from appliance.errors import StorageError, StorageUnavailable

# Transport failures of boto3 (s3) and urllib3 (minio): the store did not answer, or broke off.
_TRANSPORT = (
    boto.ConnectionError, boto.HTTPClientError, boto.IncompleteReadError, MinioServerError,
    urllib3.MaxRetryError, urllib3.NewConnectionError, urllib3.ProtocolError, urllib3.TimeoutError,
)


def is_transport_failure(exc: BaseException) -> bool:
    """A connection that failed or broke off, a timeout, or a 5xx answer from the store."""
    if isinstance(exc, _TRANSPORT):
        return True
    if isinstance(exc, boto.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return False


def storage_failure(message: str, exc: BaseException) -> StorageError:
    """The error a store raises for `exc`: StorageUnavailable when the store may come back by itself."""
    if isinstance(exc, StorageError):
        return exc
    if is_transport_failure(exc):
        return StorageUnavailable(f"{message}: {exc}")
    return StorageError(f"{message}: {exc}")


def is_storage_outage(exc: BaseException) -> bool:
    """True when a job failed because the object store is unavailable (only stores raise StorageUnavailable:
    an application that forwarding or a callback cannot reach is not an outage of ours)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageUnavailable):
            return True
        current = current.__cause__ or current.__context__
    return False


class GuardedReader:
    """A store's response body whose read errors (the store going away mid-read) become storage errors."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._body.read(size) if size >= 0 else self._body.read())
        except Exception as exc:
            raise storage_failure(f"reading {self._key} failed", exc) from exc

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> GuardedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def guarded(body: Any, key: str) -> BinaryIO:
    return GuardedReader(body, key)  # type: ignore[return-value]  # (read/close/with: what callers use)
