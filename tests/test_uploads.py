"""Uploads against the real `ingestbox serve`: streamed, sniffed, stored, described; rejections leave nothing."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media import jpeg_bytes, jpeg_with_exif, mp4_file, pdf_bytes, png_bomb, png_bytes
from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow
MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("uploads")
    process = write_config(
        directory,
        extra=f"[uploads]\nmax_bytes = {MAX_BYTES}\n"
        "[queues.file-processing]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n",
    )
    process.start()
    yield process
    process.kill()


def stored_assets(server: ServeProcess) -> set[str]:
    """The asset ids with anything in storage (jobs of earlier uploads may still be adding variants)."""
    root = server.data_dir / "objects" / "assets"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def stored_objects(server: ServeProcess) -> list[Path]:
    root = server.data_dir / "objects"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload(server: ServeProcess, name: str, body: bytes, mime: str = "application/octet-stream",
           **fields: str) -> httpx.Response:
    with server.client(timeout=60) as client:
        return client.post("/v1/uploads", files={"file": (name, body, mime)}, data=fields)


def wait_job(server: ServeProcess, job_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    return server.wait_job(job_id, states, timeout=30)


def test_jpeg_is_stored_described_and_served(server: ServeProcess) -> None:
    body = jpeg_bytes(640, 480)
    response = upload(server, "holiday photo.jpg", body, "image/jpeg", callback_url="http://127.0.0.1:9/cb")
    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"asset_id", "job_id", "status_url"}
    assert answer["status_url"] == f"/v1/jobs/{answer['job_id']}"
    job = wait_job(server, answer["job_id"], ("completed",))
    assert job["queue"] == "file-processing"
    with server.client() as client:
        asset = client.get(f"/v1/assets/{answer['asset_id']}").json()
        assert (asset["kind"], asset["mime"], asset["size"]) == ("image", "image/jpeg", len(body))
        assert asset["sha256"] == hashlib.sha256(body).hexdigest()
        assert asset["filename"] == "holiday photo.jpg"
        assert (asset["metadata"]["width"], asset["metadata"]["height"]) == (640, 480)
        original = httpx.get(asset["url"], timeout=10)
        assert original.status_code == 200 and original.content == body
        assert client.get("/v1/assets/nope").status_code == 404
    # the stored key is the server's, never the client's name
    assert all("holiday" not in str(p) for p in stored_objects(server))


def test_thumbnails_are_upright_small_and_without_gps(server: ServeProcess) -> None:
    import io

    from PIL import Image

    body = jpeg_with_exif(640, 480, orientation=6)
    with Image.open(io.BytesIO(body)) as original:
        assert 0x8825 in original.getexif()  # the upload does carry a position
    answer = upload(server, "phone.jpg", body, "image/jpeg").json()
    wait_job(server, answer["job_id"], ("completed",))
    with server.client() as client:
        asset = client.get(f"/v1/assets/{answer['asset_id']}").json()
    assert asset["metadata"]["orientation"] == 6 and asset["metadata"]["camera_make"] == "TestCam"
    variants = asset["variants"]
    assert set(variants) == {"thumbnail", "thumbnail_webp", "large", "large_webp"}
    assert (variants["thumbnail"]["width"], variants["thumbnail"]["height"]) == (240, 320)  # upright
    assert (variants["large"]["width"], variants["large"]["height"]) == (480, 640)  # never upscaled
    assert variants["thumbnail_webp"]["mime"] == "image/webp"
    for name in ("thumbnail", "large_webp"):
        fetched = httpx.get(variants[name]["url"], timeout=10)
        assert fetched.status_code == 200 and len(fetched.content) == variants[name]["size"]
        with Image.open(io.BytesIO(fetched.content)) as thumb:
            assert thumb.size == (variants[name]["width"], variants[name]["height"])
            assert 0x8825 not in thumb.getexif() and 0x0112 not in thumb.getexif()


def test_pdf_and_video_are_described(server: ServeProcess, tmp_path: Path) -> None:
    pdf = upload(server, "report.pdf", pdf_bytes(3), "application/pdf").json()
    video = upload(server, "clip.mp4", mp4_file(tmp_path / "clip.mp4", seconds=1), "video/mp4").json()
    wait_job(server, pdf["job_id"], ("completed",))
    wait_job(server, video["job_id"], ("completed",))
    with server.client() as client:
        pdf_asset = client.get(f"/v1/assets/{pdf['asset_id']}").json()
        video_asset = client.get(f"/v1/assets/{video['asset_id']}").json()
    assert pdf_asset["kind"] == "pdf" and pdf_asset["metadata"]["pages"] == 3
    assert pdf_asset["metadata"]["title"] == "Test document"
    assert pdf_asset["variants"]["thumbnail"]["state"] == "completed"  # the first page
    assert max(pdf_asset["variants"]["large"]["width"], pdf_asset["variants"]["large"]["height"]) == 1280
    assert video_asset["kind"] == "video" and video_asset["mime"] == "video/mp4"
    meta = video_asset["metadata"]
    assert (meta["width"], meta["height"], meta["video_codec"], meta["audio_codec"]) == (320, 240, "h264", None)
    assert 0.9 <= meta["duration"] <= 1.2


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("page.jpg", b"<!DOCTYPE html><html><body>hello</body></html>" * 50, "text/html"),
        ("tool.png", Path("/bin/true").read_bytes(), "application/x-"),
        ("photo.jpg", png_bytes(), "image/png"),
    ],
)
def test_wrong_types_are_415_and_leave_nothing(server: ServeProcess, name: str, body: bytes, expected: str) -> None:
    before = stored_assets(server)
    response = upload(server, name, body, "image/jpeg")
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_type" and error["sniffed"].startswith(expected)
    assert stored_assets(server) == before


def test_empty_file_and_missing_file_are_400(server: ServeProcess) -> None:
    assert upload(server, "empty.jpg", b"").status_code == 400
    with server.client() as client:
        response = client.post("/v1/uploads", data={"callback_url": "x"}, files={"other": ("a.txt", b"x")})
        assert response.status_code == 400
        assert "form field named 'file'" in response.json()["error"]["message"]
        malformed = client.post("/v1/uploads", content=b"--xyz\r\ngarbage",
                                headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert malformed.status_code == 400
        not_form = client.post("/v1/uploads", content=b"{}", headers={"Content-Type": "application/json"})
        assert not_form.status_code == 400


def test_over_the_limit_is_413_declared_or_streamed(server: ServeProcess) -> None:
    before = stored_assets(server)
    big = jpeg_bytes(64, 64) + b"\x00" * (MAX_BYTES + 10)
    declared = upload(server, "big.jpg", big, "image/jpeg")
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n"
        yield jpeg_bytes(64, 64)
        for _ in range(40):
            yield b"\x00" * (128 * 1024)
        yield b"\r\n--b--\r\n"

    with server.client(timeout=60) as client:
        streamed = client.post("/v1/uploads", content=chunks(),
                               headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413
    time.sleep(0.2)
    assert stored_assets(server) == before


def test_truncated_jpeg_ends_dead_with_a_reason(server: ServeProcess) -> None:
    body = jpeg_bytes(800, 600)
    response = upload(server, "cut.jpg", body[: len(body) // 2], "image/jpeg")
    assert response.status_code == 202
    job = wait_job(server, response.json()["job_id"], ("dead",))
    assert job["attempts"] == 3
    assert "image cannot be decoded" in job["error"] and "truncated" in job["error"]


def test_image_bomb_ends_dead_with_a_clear_reason(server: ServeProcess) -> None:
    response = upload(server, "huge.png", png_bomb(), "image/png")
    assert response.status_code == 202  # it is a PNG; what it claims is found out by the job
    job = wait_job(server, response.json()["job_id"], ("dead",))
    assert "decompression bomb" in job["error"]


@pytest.fixture(scope="module")
def scanning_server(tmp_path_factory: pytest.TempPathFactory, clamd: Any) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("scanning")
    process = write_config(directory, extra=f'[uploads.clamd]\naddress = "{clamd.address}"\nrequired = true\n')
    process.start()
    yield process
    process.kill()


def with_eicar_at(body: bytes, offset: int) -> bytes:
    from tests.support.clamd import EICAR

    return body[:offset] + EICAR + body[offset:]


@pytest.mark.parametrize("offset", [200, 8170, 65520])
def test_eicar_in_a_valid_pdf_is_422_and_leaves_nothing(scanning_server: ServeProcess, offset: int) -> None:
    from tests.support.clamd import SIGNATURE

    pdf = pdf_bytes(2)
    pdf = pdf[:-6] + b"%" + b"x" * 70_000 + b"\n" + pdf[-6:]  # room for the later offsets, still a PDF
    response = upload(scanning_server, "invoice.pdf", with_eicar_at(pdf, offset), "application/pdf")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "infected" and error["signature"].startswith(SIGNATURE)
    assert stored_objects(scanning_server) == []


def test_clean_upload_is_scanned_and_kept(scanning_server: ServeProcess) -> None:
    response = upload(scanning_server, "clean.pdf", pdf_bytes(1), "application/pdf")
    assert response.status_code == 202
    wait_job(scanning_server, response.json()["job_id"], ("completed",))
    with scanning_server.client() as client:
        asset = client.get(f"/v1/assets/{response.json()['asset_id']}").json()
    assert asset["metadata"]["pages"] == 1 and asset["metadata"]["scanned"] is True
    stored = {p.name for p in stored_objects(scanning_server)}
    assert stored == {"original", "thumbnail.jpg", "thumbnail_webp.webp", "large.jpg", "large_webp.webp"}


def test_scanner_down_refuses_when_required_and_passes_when_not(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/no-clamd.ctl"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    required = write_config(tmp_path / "a", extra=f'[uploads.clamd]\naddress = "{missing}"\nrequired = true\n')
    optional = write_config(tmp_path / "b", extra=f'[uploads.clamd]\naddress = "{missing}"\nrequired = false\n')
    required.start()
    optional.start()
    try:
        refused = upload(required, "a.jpg", jpeg_bytes(), "image/jpeg")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "scanner_unavailable"
        assert stored_objects(required) == []
        passed = upload(optional, "a.jpg", jpeg_bytes(), "image/jpeg")
        assert passed.status_code == 202
    finally:
        required.kill()
        optional.kill()
