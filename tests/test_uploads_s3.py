"""Uploads through the real server onto SeaweedFS, with the s3 (boto3) and the minio backends, scanned by clamd."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.clamd import EICAR, SIGNATURE, Clamd
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3
from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow
PART_MB = 5


def storage_section(backend: str, seaweed: SeaweedS3, bucket: str) -> str:
    if backend == "s3":
        return (f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "{seaweed.endpoint_url}"\n'
                f'bucket = "{bucket}"\nregion = "us-east-1"\naccess_key_id = "{ACCESS_KEY}"\n'
                f'secret_access_key = "{SECRET_KEY}"\npart_size_mb = {PART_MB}\n')
    return (f'[storage]\nbackend = "minio"\n[storage.minio]\nendpoint = "127.0.0.1:{seaweed.s3_port}"\n'
            f'bucket = "{bucket}"\nregion = "us-east-1"\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
            f"secure = false\npart_size_mb = {PART_MB}\n")


@pytest.fixture(params=["s3", "minio"])
def backend(request: pytest.FixtureRequest, seaweed: SeaweedS3, clamd: Clamd,
            tmp_path: Path) -> Iterator[tuple[ServeProcess, SeaweedS3, str]]:
    bucket = seaweed.make_bucket()
    process = write_config(
        tmp_path,
        extra=storage_section(request.param, seaweed, bucket)
        + f'[uploads.clamd]\naddress = "{clamd.address}"\nrequired = true\n',
    )
    process.start()
    yield process, seaweed, bucket
    process.kill()


def big_png() -> bytes:
    """About 12 MB of noise as a PNG: three multipart parts."""
    image = Image.frombytes("RGB", (2000, 2000), os.urandom(2000 * 2000 * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def objects(seaweed: SeaweedS3, bucket: str) -> list[str]:
    answer = seaweed.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in answer.get("Contents", [])]


def pending_multipart(seaweed: SeaweedS3, bucket: str) -> list[Any]:
    return list(seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_large_image_streams_in_parts_and_variants_are_presigned(backend: tuple[ServeProcess, SeaweedS3, str]) -> None:
    server, seaweed, bucket = backend
    body = big_png()
    with server.client(timeout=120) as client:
        response = client.post("/v1/uploads", files={"file": ("noise.png", body, "image/png")})
        assert response.status_code == 202, response.text
        answer = response.json()
        server.wait_job(answer["job_id"], ("completed",), timeout=120)
        asset = client.get(f"/v1/assets/{answer['asset_id']}").json()
    assert asset["sha256"] == hashlib.sha256(body).hexdigest() and asset["size"] == len(body)
    head = seaweed.client().head_object(Bucket=bucket, Key=f"assets/{asset['id']}/original")
    assert head["ContentLength"] == len(body) and head["ContentType"] == "image/png"
    # Presigned by the backend: fetched straight from SeaweedFS, no token.
    original = httpx.get(asset["url"], timeout=60)
    assert original.status_code == 200 and hashlib.sha256(original.content).hexdigest() == asset["sha256"]
    thumbnail = asset["variants"]["thumbnail"]
    assert thumbnail["state"] == "completed" and "X-Amz-Signature" in thumbnail["url"]
    fetched = httpx.get(thumbnail["url"], timeout=30)
    assert fetched.status_code == 200
    with Image.open(io.BytesIO(fetched.content)) as image:
        assert image.size == (320, 320)
    assert pending_multipart(seaweed, bucket) == []


def test_eicar_across_a_part_boundary_is_422_and_leaves_nothing(backend: tuple[ServeProcess, SeaweedS3,
                                                                                   str]) -> None:
    server, seaweed, bucket = backend
    body = big_png()
    boundary = PART_MB * 1024 * 1024
    infected = body[: boundary - 30] + EICAR + body[boundary - 30:]  # the signature straddles parts 1 and 2
    before = objects(seaweed, bucket)
    with server.client(timeout=120) as client:
        response = client.post("/v1/uploads", files={"file": ("noise.png", infected, "image/png")})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["signature"].startswith(SIGNATURE)
    assert objects(seaweed, bucket) == before
    assert pending_multipart(seaweed, bucket) == []
