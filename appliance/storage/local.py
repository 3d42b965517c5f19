"""Local-disk object store under the data directory, with signed URLs served by ingestbox itself."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from appliance.errors import StorageError, StorageFull
from appliance.storage.base import ObjectStore, ObjectWriter, check_key


def _disk_error(exc: OSError, what: str) -> StorageError | StorageFull:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left for {what}: free disk space under the data directory")
    return StorageError(f"local storage failed on {what}: {exc.strerror}")


class LocalWriter(ObjectWriter):
    """Writes to a temporary file beside the objects, renamed into place on commit."""

    def __init__(self, store: LocalStore, key: str, content_type: str) -> None:
        super().__init__(key, content_type)
        self.store = store
        self.temp = store.temp_dir / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO | None = self.temp.open("wb")

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("write after commit or abort")
        try:
            self._file.write(data)
        except OSError as exc:
            raise _disk_error(exc, self.key) from exc
        self.size += len(data)

    def commit(self) -> int:
        if self._file is None:
            raise ValueError("commit after commit or abort")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            target = self.store.path_of(self.key)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp, target)
        except OSError as exc:
            raise _disk_error(exc, self.key) from exc
        self.closed = True
        return self.size

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # a full disk fails the close's flush; the file goes anyway
                self._file.close()
            self._file = None
        self.temp.unlink(missing_ok=True)
        self.closed = True


class LocalStore(ObjectStore):
    """Objects as files under `root`; URLs are `/files/<key>?expires=&sig=` signed with a local secret."""

    backend = "local"

    def __init__(self, root: Path, url_secret: bytes, base_url: str, url_seconds: int = 3600) -> None:
        self.root = root
        self.temp_dir = root / ".incoming"
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.url_secret = url_secret
        self.base_url = base_url.rstrip("/")
        self.url_seconds = url_seconds

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        check_key(key)
        return LocalWriter(self, key, content_type)

    def open_reader(self, key: str) -> BinaryIO:
        try:
            return self.path_of(key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None

    def size(self, key: str) -> int:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and self.temp_dir not in path.parents:
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def sign(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self.url_secret, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, signature: str, now: float | None = None) -> bool:
        if (now if now is not None else time.time()) > expires:
            return False
        return hmac.compare_digest(self.sign(key, expires), signature)

    def url(self, key: str, expires_seconds: int | None = None) -> str:
        expires = int(time.time()) + (expires_seconds or self.url_seconds)
        return f"{self.base_url}/files/{quote(check_key(key))}?expires={expires}&sig={self.sign(key, expires)}"

    def check(self) -> None:
        probe = self.temp_dir / f"readyz-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.read_bytes()
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"local storage at {self.root} is not writable: {exc.strerror}") from exc

    def describe(self) -> str:
        return f"local ({self.root})"

    def abort_incomplete(self, prefix: str = "") -> int:
        """Remove the temporary files of writers of a process that died (call before any writer opens)."""
        removed = 0
        for path in self.temp_dir.glob("*.part"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
