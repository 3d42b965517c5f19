"""S3 object store through boto3, with presigned URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from appliance.config import S3Settings
from appliance.errors import StorageError
from appliance.storage.base import ObjectStore, ObjectWriter, check_key
from appliance.storage.multipart import MultipartWriter
from appliance.storage.outage import guarded, storage_failure

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
_MISSING = ("404", "NoSuchKey", "NotFound")


def _missing(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _MISSING


class S3Writer(MultipartWriter):
    def __init__(self, store: S3Store, key: str, content_type: str) -> None:
        super().__init__(key, content_type, store.part_size)
        self.client = store.client
        self.bucket = store.bucket

    def _create(self) -> str:
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, ContentType=self.content_type)
        return answer["UploadId"]

    def _upload_part(self, upload_id: str, number: int, data: bytes | bytearray) -> str:
        answer = self.client.upload_part(
            # botocore sends a bytearray as it is; the stubs only name bytes (a copy would cost a part's memory).
            Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=cast(bytes, data)
        )
        return answer["ETag"]

    def _complete(self, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
        )

    def _abort(self, upload_id: str) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)

    def _put(self, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType=self.content_type)


class S3Store(ObjectStore):
    backend = "s3"

    def __init__(self, settings: S3Settings) -> None:
        self.bucket = settings.bucket
        self.part_size = settings.part_size_mb * MiB
        self.presign_seconds = settings.presign_seconds
        self.endpoint = settings.endpoint_url or "AWS"
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        return S3Writer(self, check_key(key), content_type)

    def open_reader(self, key: str) -> BinaryIO:
        check_key(key)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise storage_failure(f"s3 read of {key} failed", exc) from exc
        return guarded(answer["Body"], key)

    def size(self, key: str) -> int:
        check_key(key)
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise storage_failure(f"s3 stat of {key} failed", exc) from exc
        return answer["ContentLength"]

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise storage_failure(f"s3 delete of {key} failed", exc) from exc

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def pending_uploads(self, prefix: str = "") -> list[dict[str, Any]]:
        """Multipart uploads started and neither completed nor aborted."""
        uploads: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            uploads.extend(dict(u) for u in page.get("Uploads", []))
        return uploads

    def abort_incomplete(self, prefix: str) -> int:
        aborted = 0
        for upload in self.pending_uploads(prefix):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
        return aborted

    def url(self, key: str, expires_seconds: int | None = None) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": check_key(key)},
            ExpiresIn=expires_seconds or self.presign_seconds,
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"s3 bucket {self.bucket} at {self.endpoint} is not reachable: {exc}") from exc

    def describe(self) -> str:
        return f"s3 (bucket {self.bucket} at {self.endpoint})"
