"""One contract, every backend: local, SeaweedFS through boto3, SeaweedFS through the minio client."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import MinioSettings, S3Settings, ServerSettings, Settings, StorageSettings
from appliance.errors import StorageError
from appliance.storage import ObjectStore, open_store
from appliance.storage.base import InvalidKey
from appliance.storage.local import LocalStore
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3", "minio"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    server = ServerSettings(data_dir=tmp_path / "data")
    if request.param == "local":
        settings = Settings(server=server)
    else:
        seaweed: SeaweedS3 = request.getfixturevalue("seaweed")
        bucket = seaweed.make_bucket()
        if request.param == "s3":
            storage = StorageSettings(
                backend="s3",
                s3=S3Settings(
                    endpoint_url=seaweed.endpoint_url, bucket=bucket,
                    access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, part_size_mb=5,
                ),
            )
        else:
            storage = StorageSettings(
                backend="minio",
                minio=MinioSettings(
                    endpoint=f"127.0.0.1:{seaweed.s3_port}", bucket=bucket,
                    access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region="us-east-1",
                    part_size_mb=5,
                ),
            )
        settings = Settings(server=server, storage=storage)
    yield open_store(settings)


def test_put_get_size_delete(store: ObjectStore) -> None:
    store.put_bytes("assets/a1/original", b"hello world", "text/plain")
    assert store.exists("assets/a1/original")
    assert store.size("assets/a1/original") == 11
    assert b"".join(store.iter_chunks("assets/a1/original")) == b"hello world"
    assert list(store.list_keys("assets/a1/")) == ["assets/a1/original"]
    store.delete("assets/a1/original")
    assert not store.exists("assets/a1/original")
    store.delete("assets/a1/original")  # deleting twice is fine


def test_empty_object(store: ObjectStore) -> None:
    store.put_bytes("empty", b"")
    assert store.size("empty") == 0
    assert b"".join(store.iter_chunks("empty")) == b""


def test_missing_key_is_keyerror(store: ObjectStore) -> None:
    with pytest.raises(KeyError):
        store.size("nope")
    with pytest.raises(KeyError):
        store.open_reader("nope")


def test_streamed_multipart_write_roundtrips(store: ObjectStore) -> None:
    """23 MiB in odd-sized chunks: several parts plus a short last one, byte-exact."""
    digest = hashlib.sha256()
    with store.open_writer("big/video.mp4", "video/mp4") as writer:
        remaining = 23 * MiB + 12345
        while remaining:
            chunk = os.urandom(min(remaining, 777_777))
            digest.update(chunk)
            writer.write(chunk)
            remaining -= len(chunk)
        assert writer.commit() == 23 * MiB + 12345
    assert store.size("big/video.mp4") == 23 * MiB + 12345
    check = hashlib.sha256()
    for chunk in store.iter_chunks("big/video.mp4"):
        check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


def test_writer_memory_stays_bounded(store: ObjectStore) -> None:
    """40 MiB through the writer holds about one part, not the object."""
    chunk = os.urandom(256 * 1024)
    tracemalloc.start()
    try:
        with store.open_writer("flat/object", "application/octet-stream") as writer:
            for _ in range(160):
                writer.write(chunk)
            writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.size("flat/object") == 40 * MiB
    assert peak < 20 * MiB, f"peak {peak / MiB:.1f} MiB while writing 40 MiB"


def test_abort_leaves_nothing(store: ObjectStore) -> None:
    writer = store.open_writer("aborted/object", "video/mp4")
    writer.write(os.urandom(11 * MiB))  # at least one part already uploaded
    writer.abort()
    assert not store.exists("aborted/object")
    assert list(store.list_keys("aborted/")) == []
    if hasattr(store, "pending_uploads"):
        assert not [u for u in store.pending_uploads() if u["Key"] == "aborted/object"]


def test_exception_inside_writer_block_aborts(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError), store.open_writer("failed/object") as writer:
        writer.write(b"x" * 1000)
        raise RuntimeError("client went away")
    assert not store.exists("failed/object")


def test_url_serves_the_bytes(store: ObjectStore) -> None:
    store.put_bytes("urls/thing.txt", b"fetch me", "text/plain")
    url = store.url("urls/thing.txt", 300)
    if isinstance(store, LocalStore):
        assert url.startswith("http://127.0.0.1:8480/files/urls/thing.txt?expires=")
        expires = int(url.split("expires=")[1].split("&")[0])
        signature = url.split("sig=")[1]
        assert store.verify("urls/thing.txt", expires, signature)
        assert not store.verify("urls/other.txt", expires, signature)
        assert not store.verify("urls/thing.txt", expires, signature, now=expires + 1)
    else:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"fetch me"


def test_unsafe_keys_are_refused(store: ObjectStore) -> None:
    for key in ("../etc/passwd", "/abs", "a/../../b", "a//b", "sp ace", ""):
        with pytest.raises(InvalidKey):
            store.put_bytes(key, b"x")


def test_check_passes(store: ObjectStore) -> None:
    store.check()


def test_unreachable_s3_fails_check(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerSettings(data_dir=tmp_path),
        storage=StorageSettings(
            backend="s3",
            s3=S3Settings(
                endpoint_url="http://127.0.0.1:9", bucket="nothing", access_key_id="a", secret_access_key="b"
            ),
        ),
    )
    with pytest.raises(StorageError):
        open_store(settings).check()
