"""Which exceptions mean "the object store is down for now" rather than "this job is wrong"."""

from __future__ import annotations

from botocore import exceptions as boto
from urllib3 import exceptions as urllib3

from appliance.errors import StorageFull

# Transport failures of boto3 (s3) and urllib3 (minio): the store did not answer, or broke off.
_TRANSPORT = (
    boto.ConnectionError, boto.HTTPClientError, boto.IncompleteReadError,
    urllib3.MaxRetryError, urllib3.NewConnectionError, urllib3.ProtocolError, urllib3.TimeoutError,
)


def is_storage_outage(exc: BaseException) -> bool:
    """True for an unreachable or failing store (connection refused, timeouts, 5xx), never for bad input."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the cause chain: StorageError wraps the client's error
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return False  # a full disk does not come back by itself soon; the operator must act
        if isinstance(current, _TRANSPORT):
            return True
        if isinstance(current, boto.ClientError):
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if isinstance(status, int) and status >= 500:
                return True
        current = current.__cause__ or current.__context__
    return False
