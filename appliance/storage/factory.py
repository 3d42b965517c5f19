"""Builds the configured object store."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from appliance.config import Settings
from appliance.storage.base import ObjectStore


def data_secret(data_dir: Path, name: str) -> bytes:
    """A random key made once per data directory (mode 0600): `url-secret` signs local-storage URLs,
    `callback-secret` signs upload callbacks unless one is configured."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def public_base_url(settings: Settings) -> str:
    if settings.server.public_url:
        return settings.server.public_url
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def open_store(settings: Settings) -> ObjectStore:
    storage = settings.storage
    if storage.backend == "s3":
        from appliance.storage.s3 import S3Store

        assert storage.s3 is not None  # the schema requires the section
        return S3Store(storage.s3)
    if storage.backend == "minio":
        from appliance.storage.minio import MinioStore

        assert storage.minio is not None
        return MinioStore(storage.minio)
    from appliance.storage.local import LocalStore

    root = storage.local.root or settings.server.data_dir / "objects"
    return LocalStore(root, data_secret(settings.server.data_dir, "url-secret"), public_base_url(settings))
