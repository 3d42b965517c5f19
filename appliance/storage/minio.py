"""MinIO object store through the minio client, with presigned URLs."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error

from appliance.config import MinioSettings
from appliance.errors import StorageError
from appliance.storage.base import ObjectStore, ObjectWriter, check_key
from appliance.storage.multipart import MultipartWriter
from appliance.storage.outage import guarded, storage_failure

MiB = 1024 * 1024
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")


def _missing(exc: Exception) -> bool:
    return isinstance(exc, S3Error) and exc.code in _MISSING


class MinioWriter(MultipartWriter):
    # The minio client streams only from a readable object (pull); ingest pushes chunks as
    # they arrive, so this uses the client's multipart calls, which it keeps underscored.
    def __init__(self, store: MinioStore, key: str, content_type: str) -> None:
        super().__init__(key, content_type, store.part_size)
        self.client = store.client
        self.bucket = store.bucket

    def _create(self) -> str:
        return self.client._create_multipart_upload(self.bucket, self.key, {"Content-Type": self.content_type})

    def _upload_part(self, upload_id: str, number: int, data: bytes | bytearray) -> str:
        return self.client._upload_part(self.bucket, self.key, bytes(data), None, upload_id, number)

    def _complete(self, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.client._complete_multipart_upload(
            self.bucket, self.key, upload_id, [Part(n, etag) for n, etag in parts]
        )

    def _abort(self, upload_id: str) -> None:
        self.client._abort_multipart_upload(self.bucket, self.key, upload_id)

    def _put(self, data: bytes) -> None:
        self.client._put_object(self.bucket, self.key, data, {"Content-Type": self.content_type})


class MinioStore(ObjectStore):
    backend = "minio"

    def __init__(self, settings: MinioSettings) -> None:
        self.bucket = settings.bucket
        self.endpoint = settings.endpoint
        self.part_size = settings.part_size_mb * MiB
        self.presign_seconds = settings.presign_seconds
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        return MinioWriter(self, check_key(key), content_type)

    def open_reader(self, key: str) -> BinaryIO:
        check_key(key)
        try:
            response = self.client.get_object(self.bucket, key)
        except Exception as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise storage_failure(f"minio read of {key} failed", exc) from exc
        return guarded(_ClosingResponse(response), key)

    def size(self, key: str) -> int:
        check_key(key)
        try:
            return int(self.client.stat_object(self.bucket, key).size or 0)
        except Exception as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise storage_failure(f"minio stat of {key} failed", exc) from exc

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self.client.remove_object(self.bucket, key)
        except Exception as exc:
            raise storage_failure(f"minio delete of {key} failed", exc) from exc

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        for item in self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
            if item.object_name is not None:
                yield item.object_name

    def abort_incomplete(self, prefix: str) -> int:
        aborted = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = self.client._list_multipart_uploads(
                self.bucket, prefix=prefix or None, key_marker=key_marker, upload_id_marker=upload_marker
            )
            for upload in page.uploads:
                if upload.object_name and upload.upload_id:
                    self.client._abort_multipart_upload(self.bucket, upload.object_name, upload.upload_id)
                    aborted += 1
            if not page.is_truncated:
                return aborted
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker

    def url(self, key: str, expires_seconds: int | None = None) -> str:
        seconds = expires_seconds or self.presign_seconds
        return self.client.presigned_get_object(self.bucket, check_key(key), datetime.timedelta(seconds=seconds))

    def check(self) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                raise StorageError(f"minio bucket {self.bucket} at {self.endpoint} does not exist")
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"minio at {self.endpoint} is not reachable: {exc}") from exc

    def describe(self) -> str:
        return f"minio (bucket {self.bucket} at {self.endpoint})"


class _ClosingResponse:
    """A urllib3 response that also releases its connection on close (and in `with`)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def read(self, size: int = -1) -> bytes:
        return self._response.read(None if size < 0 else size)

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()

    def __enter__(self) -> _ClosingResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
