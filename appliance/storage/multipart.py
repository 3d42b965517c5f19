"""A streaming S3 multipart writer: memory bounded by one part, small objects in one PUT."""

from __future__ import annotations

import abc
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from appliance.storage.base import ObjectWriter
from appliance.storage.outage import storage_failure

log = logging.getLogger("ingestbox.storage")


# Parts upload here while the writer's caller goes on receiving the next one.
PART_UPLOADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="storage-part")


class MultipartWriter(ObjectWriter):
    """Buffers up to `part_size` bytes, then uploads that part; backends supply the five calls.

    boto3's upload_fileobj on a stream whose reads come back short buffers the whole body,
    so the multipart calls are made by hand here. One part per writer uploads in the background
    while the next fills: network in and network out overlap, and memory stays at two parts.
    """

    def __init__(self, key: str, content_type: str, part_size: int) -> None:
        super().__init__(key, content_type)
        self.part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[tuple[int, str]] = []
        self._inflight: Future[None] | None = None

    @abc.abstractmethod
    def _create(self) -> str: ...

    @abc.abstractmethod
    def _upload_part(self, upload_id: str, number: int, data: bytes | bytearray) -> str: ...

    @abc.abstractmethod
    def _complete(self, upload_id: str, parts: list[tuple[int, str]]) -> None: ...

    @abc.abstractmethod
    def _abort(self, upload_id: str) -> None: ...

    @abc.abstractmethod
    def _put(self, data: bytes) -> None: ...

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ValueError("write after commit or abort")
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self.part_size:
            if len(self._buffer) == self.part_size:
                part, self._buffer = self._buffer, bytearray()  # the usual case: hand the buffer over, no copy
            else:
                part = bytearray(memoryview(self._buffer)[: self.part_size])
                del self._buffer[: self.part_size]
            self._wait_inflight()
            self._inflight = PART_UPLOADS.submit(self._flush_part, part)

    def _wait_inflight(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.result()

    def _flush_part(self, data: bytes | bytearray) -> None:
        try:
            if self._upload_id is None:
                self._upload_id = self._create()
            number = len(self._parts) + 1
            self._parts.append((number, self._upload_part(self._upload_id, number, data)))
        except Exception as exc:
            raise storage_failure(f"storage write of {self.key} failed", exc) from exc

    def commit(self) -> int:
        if self.closed:
            raise ValueError("commit after commit or abort")
        try:
            self._wait_inflight()
            if self._upload_id is None:
                self._put(bytes(self._buffer))
            else:
                if self._buffer:
                    self._flush_part(bytes(self._buffer))
                self._complete(self._upload_id, self._parts)
        except Exception as exc:
            raise storage_failure(f"storage commit of {self.key} failed", exc) from exc
        self._buffer = bytearray()
        self.closed = True
        return self.size

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._wait_inflight()  # a part still uploading would otherwise land after the abort
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        self.closed = True
        if upload_id is not None:
            try:
                self._abort(upload_id)
            except Exception:
                # The bucket's lifecycle rule for incomplete uploads is the backstop.
                log.warning("could not abort multipart upload of %s", self.key, exc_info=True)
