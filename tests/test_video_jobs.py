"""A video upload through the real server: thumbnail, transcode rungs as variants, signed callback, ready mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.app import create_app
from appliance.config import ServerSettings, Settings
from appliance.runtime import build_runtime
from hwaccel.probe import HwaccelReport, trial_encode
from tests.conftest import ApiClient
from tests.media import make_video
from tests.support.receiver import Receiver
from tests.support.server import ServeProcess, write_config
from tests.support.smtp import Inbox, smtp_inbox

pytestmark = pytest.mark.slow
CALLBACK_SECRET = "callback-test-secret"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as box:
        yield box


@pytest.fixture
def server(tmp_path: Path, inbox: Inbox) -> Iterator[ServeProcess]:
    process = write_config(
        tmp_path,
        extra=f'[uploads]\ncallback_secret = "{CALLBACK_SECRET}"\n'
        f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {inbox.port}\nstarttls = false\nsender = "box@example.com"\n'
        "[queues.file-processing]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n"
        "[queues.webhook-handling]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n",
    )
    process.start()
    yield process
    process.kill()


def upload_video(server: ServeProcess, path: Path, **fields: str) -> dict[str, Any]:
    with server.client(timeout=60) as client:
        response = client.post("/v1/uploads", files={"file": (path.name, path.read_bytes(), "video/mp4")},
                               data=fields)
    assert response.status_code == 202, response.text
    return dict(response.json())


def check_signature(headers: dict[str, str], body: bytes) -> None:
    fields = dict(part.split("=", 1) for part in headers["X-Ingestbox-Signature"].split(","))
    expected = hmac.new(CALLBACK_SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(time.time() - int(fields["t"])) < 120


def test_video_upload_gets_variants_a_signed_callback_and_a_ready_mail(
    server: ServeProcess, receiver: Receiver, inbox: Inbox, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "clip.mp4", 6.0, 640, 360, 25)
    answer = upload_video(server, source, callback_url=f"{receiver.url}/done", notify_email="student@example.com")
    asset_id = answer["asset_id"]
    server.wait_job(answer["job_id"], ("completed",), timeout=60)
    job = server.wait_job(f"transcode-{asset_id}", ("completed",), timeout=120)
    assert job["queue"] == "media-transcoding" and job["progress"] == 100

    with server.client() as client:
        asset = client.get(f"/v1/assets/{asset_id}").json()
        variants = asset["variants"]
        assert variants["1080p"]["state"] == "skipped" and "upscale" in variants["1080p"]["reason"]
        for name, size in (("720p", (640, 360)), ("preview", (640, 360)), ("thumbnail", (320, 180))):
            assert variants[name]["state"] == "completed", (name, variants[name])
            assert (variants[name]["width"], variants[name]["height"]) == size
        assert variants["720p"]["encoder"] == "libx264" and variants["720p"]["codec"] == "h264"
        assert abs(variants["720p"]["duration"] - 6.0) < 0.2
        # The URL works (signed, served by ingestbox) and ffprobe reads a real H.264 + AAC file from it.
        fetched = httpx.get(variants["720p"]["url"], timeout=30)
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "video/mp4"
        (tmp_path / "fetched.mp4").write_bytes(fetched.content)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                                str(tmp_path / "fetched.mp4")], capture_output=True, text=True, check=True)
        assert probe.stdout.split() == ["h264", "aac"]

    (callback,) = receiver.wait_for("/done", 1, timeout=30)
    check_signature(callback.headers, callback.body)
    event = json.loads(callback.body)
    assert event["event"] == "asset.completed" and event["asset"]["id"] == asset_id
    assert event["asset"]["variants"]["720p"]["state"] == "completed"

    (mail,) = inbox.wait(1)
    assert mail.rcpt_tos == ["student@example.com"]
    message = inbox.parsed(mail)
    assert message["Subject"] == "Your video clip.mp4 is ready"
    text = message.get_body(("plain",)).get_content()
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("720p: "))
    assert httpx.get(link, timeout=30).status_code == 200  # the link in the mail works
    assert message.get_body(("html",)) is not None


def test_truncated_video_ends_dead_with_a_reason_and_says_so(server: ServeProcess, receiver: Receiver,
                                                              inbox: Inbox, tmp_path: Path) -> None:
    whole = make_video(tmp_path / "whole.mp4", 3.0, 320, 240, 25)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    answer = upload_video(server, broken, callback_url=f"{receiver.url}/failed", notify_email="me@example.com")
    job = server.wait_job(answer["job_id"], ("dead",), timeout=60)
    assert job["attempts"] == 3 and "video cannot be" in job["error"]
    (callback,) = receiver.wait_for("/failed", 1, timeout=30)
    check_signature(callback.headers, callback.body)
    assert json.loads(callback.body)["event"] == "asset.failed"
    (mail,) = inbox.wait(1)
    assert inbox.parsed(mail)["Subject"] == "Processing broken.mp4 failed"
    with server.client() as client:
        assert client.get("/healthz").status_code == 200  # and the server keeps serving


def test_hardware_encoder_failure_falls_back_to_libx264_visibly(tmp_path: Path) -> None:
    """NVENC chosen (as on a machine whose probe passed) but unable to encode here: the job still completes."""
    settings = Settings(server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2))
    runtime = build_runtime(settings, hwaccel=HwaccelReport([], "nvenc", "nvenc"))
    runtime.start()
    try:
        api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
        source = make_video(tmp_path / "clip.mp4", 2.0, 320, 240, 25)
        response = api.post("/v1/uploads", files={"file": ("clip.mp4", source.read_bytes(), "video/mp4")})
        assert response.status == 202, response.text
        asset_id = response.json["asset_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = runtime.engine.records.get(f"transcode-{asset_id}")
            if job is not None and job.state in ("completed", "dead"):
                break
            time.sleep(0.1)
        assert job is not None and job.state == "completed", job
        variants = {v["name"]: v for v in runtime.assets.variants(asset_id)}
        metrics = api.get("/metrics").text
        if trial_encode("h264_nvenc", "yuv420p") is None:  # a machine where NVENC really works
            assert variants["720p"]["detail"]["encoder"] == "nvenc"
        else:
            assert variants["720p"]["detail"]["encoder"] == "libx264"
            assert 'ingestbox_encoder_fallbacks_total{from_encoder="nvenc",to_encoder="libx264"} 1.0' in metrics
        assert 'ingestbox_transcode_seconds_count{encoder="libx264"}' in metrics or "nvenc" in metrics
    finally:
        runtime.stop()
