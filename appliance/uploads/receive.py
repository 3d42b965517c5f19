"""One upload in flight: sniff the first bytes, then stream to storage while hashing and counting."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import urllib.parse
import uuid
from typing import Any

from appliance.config import ClamdSettings
from appliance.db.assets import Asset, AssetRecords
from appliance.errors import BadRequest, IngestboxError, ServiceUnavailable
from appliance.storage import ObjectStore, ObjectWriter
from appliance.uploads.clamd import Infected, InstreamScan, ScanFailed
from appliance.uploads.names import clean_filename
from appliance.uploads.sniff import SNIFF_BYTES, check_type, kind_of, sniff

log = logging.getLogger("ingestbox.uploads")
BATCH_BYTES = 1024 * 1024  # bytes gathered before one executor call: fewer thread hops than per-chunk calls
FIELD_LIMIT = 4096  # bytes of a plain form field (callback_url, notify_email)
TEXT_FIELDS = ("callback_url", "notify_email")
EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


class UploadTooLarge(IngestboxError):
    status, code, quiet = 413, "too_large", True


class UploadReceiver:
    """Consumes form events; the `file` part goes to storage as it arrives, other fields are kept small.

    Bytes are gathered into batches of BATCH_BYTES; one batch at a time goes to the scanner and to
    storage on the default executor while the next one is read from the socket. So an upload holds
    at most two batches plus the storage writer's part buffer, whatever the file's size.
    """

    def __init__(
        self, store: ObjectStore, records: AssetRecords, max_bytes: int, allowed: list[str],
        clamd: ClamdSettings | None = None,
    ) -> None:
        self.store = store
        self.records = records
        self.clamd = clamd
        self.scan: InstreamScan | None = None
        self.scanned = False
        self.max_bytes = max_bytes
        self.allowed = allowed
        self.asset_id = str(uuid.uuid4())
        self.key = f"assets/{self.asset_id}/original"
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.mime: str | None = None
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.writer: ObjectWriter | None = None
        self._head = bytearray()
        self._in_file = False
        self._file_done = False
        self._field = bytearray()
        self._batch = bytearray()
        self._inflight: asyncio.Future[None] | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def handle(self, kind: str, name: str, filename: str | None, data: bytes) -> None:
        if name == "file" and filename is not None:
            await self._file_event(kind, filename, data)
        elif name in TEXT_FIELDS:
            if kind == "data":
                self._field += data
                if len(self._field) > FIELD_LIMIT:
                    raise BadRequest(f"form field {name} is over {FIELD_LIMIT} bytes")
            elif kind == "end":
                self.fields[name] = self._field.decode("utf-8", "replace").strip()
                self._field.clear()
        # other fields are ignored without being kept

    async def _file_event(self, kind: str, filename: str, data: bytes) -> None:
        if kind == "begin":
            if self._file_done or self._in_file:
                raise BadRequest("one file per upload")
            self._in_file = True
            self.filename = clean_filename(filename)
        elif kind == "data":
            self.size += len(data)
            if self.size > self.max_bytes:
                raise UploadTooLarge(f"the file is over the {self.max_bytes}-byte limit", max_bytes=self.max_bytes)
            self.sha256.update(data)
            if self.writer is None:
                self._head += data
                if len(self._head) >= SNIFF_BYTES:
                    await self._open()
            else:
                self._batch += data
                if len(self._batch) >= BATCH_BYTES:
                    await self._send_batch()
        elif kind == "end":
            self._in_file = False
            self._file_done = True
            if self.writer is None and self._head:
                await self._open()
            await self._send_batch()
            await self._drain()

    async def _send_batch(self) -> None:
        """Hand the gathered bytes to the executor once the previous batch is through; do not wait for this one."""
        await self._drain()
        if self._batch:
            batch, self._batch = bytes(self._batch), bytearray()
            self._inflight = asyncio.get_running_loop().run_in_executor(None, self._pass, batch)

    async def _drain(self) -> None:
        inflight = self._inflight
        if inflight is not None:
            # Shielded: if the client goes away meanwhile, the batch is still being written, and
            # abort() must wait for it to end before it aborts the writer.
            await asyncio.shield(inflight)
            self._inflight = None

    async def _open(self) -> None:
        """Decide the type from the first bytes; only an allowed file reaches storage."""
        head = bytes(self._head)
        self.mime = sniff(head)
        check_type(self.mime, self.filename, self.allowed)
        self.scan = await self._run(self._open_scan)
        # Recorded before the first byte is written: if this process dies mid-upload, the next
        # start deletes whatever reached storage (uploads/janitor.py).
        await self._run(self.records.add_pending, self.key, time.time())
        self.writer = await self._run(self.store.open_writer, self.key, self.mime)
        self._head = bytearray()
        await self._run(self._pass, head)

    def _open_scan(self) -> InstreamScan | None:
        if self.clamd is None or not self.clamd.address:
            return None
        try:
            return InstreamScan(self.clamd.address, self.clamd.timeout_seconds)
        except ServiceUnavailable as exc:
            if self.clamd.required:
                raise ScanFailed(f"{exc.message}; uploads wait for the scanner ([uploads.clamd] required)") from exc
            log.warning("upload %s not scanned: %s", self.asset_id, exc.message)
            return None

    def _pass(self, data: bytes) -> None:
        """One chunk to the scanner and to storage, in the same executor call."""
        if self.scan is not None:
            self.scan.feed(data)
        assert self.writer is not None
        self.writer.write(data)

    def _verdict(self) -> None:
        if self.scan is None:
            return
        try:
            found = self.scan.verdict()
        finally:
            self.scan.close()
        if found is not None:
            log.warning("upload %s rejected: clamd found %s", self.asset_id, found)
            raise Infected(f"the file is infected: {found}", signature=found)
        self.scanned = True

    async def finish(self, job_id: str) -> Asset:
        if not self._file_done:
            raise BadRequest("no file: send it in the form field named 'file'")
        if self.size == 0 or self.writer is None or self.mime is None:
            raise BadRequest("the file is empty")
        callback_url, notify_email = self._notification_fields()
        await self._run(self._verdict)  # before the commit: an infected file never becomes visible
        await self._run(self.writer.commit)
        now = time.time()
        return Asset(
            id=self.asset_id, kind=kind_of(self.mime), mime=self.mime, size=self.size,
            sha256=self.sha256.hexdigest(), original_key=self.key, filename=self.filename, job_id=job_id,
            created_at=now, updated_at=now, callback_url=callback_url, notify_email=notify_email,
            metadata={"scanned": self.scanned},
        )

    def _notification_fields(self) -> tuple[str | None, str | None]:
        callback_url = self.fields.get("callback_url", "").strip() or None
        if callback_url is not None:
            parsed = urllib.parse.urlsplit(callback_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise BadRequest("callback_url must be an http:// or https:// URL")
        notify_email = self.fields.get("notify_email", "").strip() or None
        if notify_email is not None and not EMAIL.fullmatch(notify_email):
            raise BadRequest("notify_email must be one email address")
        return callback_url, notify_email

    async def abort(self) -> None:
        """Nothing of a rejected upload stays in storage."""
        # The writer must not be in use while it is aborted; the rejection's own error is what the client gets.
        with contextlib.suppress(Exception):
            await self._drain()
        if self.scan is not None:
            self.scan.close()
        if self.writer is None:
            return
        if not self.writer.closed:
            await self._run(self.writer.abort)
        else:
            try:
                await self._run(self.store.delete, self.key)
            except Exception:
                log.warning("upload %s: could not delete the rejected original now; the next start does",
                            self.asset_id)
                return
        with contextlib.suppress(Exception):
            await self._run(self.records.drop_pending, self.key)
