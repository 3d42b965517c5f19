"""Faults against the real `ingestbox serve`: kill -9 mid-upload and mid-transcode, the object store down for 30 s."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from appliance.config import ServerSettings, Settings
from appliance.runtime import build_runtime
from tests.media import make_video, png_bytes
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3, start_seaweed
from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def s3_section(seaweed: SeaweedS3, bucket: str, backend: str = "s3") -> str:
    if backend == "minio":
        return (f'[storage]\nbackend = "minio"\n[storage.minio]\nendpoint = "127.0.0.1:{seaweed.s3_port}"\n'
                f'bucket = "{bucket}"\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\nsecure = false\n'
                "part_size_mb = 5\n")
    return (f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "{seaweed.endpoint_url}"\n'
            f'bucket = "{bucket}"\naccess_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
            "part_size_mb = 5\n")


def multipart_body(boundary: str, name: str, total: int, on_sent: Callable[[int], None]) -> Iterator[bytes]:
    """A form with one file of `total` bytes (a PNG header, then noise), made while it is sent."""
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
           "Content-Type: image/png\r\n\r\n").encode()
    head = png_bytes(64, 48)
    yield head
    sent = len(head)
    block = bytes(range(256)) * 4096  # 1 MiB
    while sent < total:
        yield block
        sent += len(block)
        on_sent(sent)
    yield f"\r\n--{boundary}--\r\n".encode()


def db_rows(server: ServeProcess, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "ingestbox.db") as conn:
        return conn.execute(sql).fetchall()


def post_until_killed(server: ServeProcess, total: int, kill_at: int) -> None:
    """Stream an upload and kill -9 the server once `kill_at` bytes are out; the client must see an error."""
    boundary = uuid.uuid4().hex

    def maybe_kill(sent: int) -> None:
        if sent >= kill_at:
            server.kill()

    with server.client(timeout=60) as client, pytest.raises(httpx.TransportError):
        client.post("/v1/uploads", content=multipart_body(boundary, "big.png", total, maybe_kill),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def upload_clip(server: ServeProcess, directory: Path) -> str:
    """A 12 s 720p clip: its transcode runs for a few seconds on two cores. Returns the asset id."""
    source = make_video(directory / "clip.mp4", 12.0, 1280, 720, 30)
    with server.client(timeout=60) as client:
        answer = client.post("/v1/uploads", files={"file": ("clip.mp4", source.read_bytes(), "video/mp4")})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["asset_id"])


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A SeaweedFS of this test's own: the test stops and restarts it."""
    server = start_seaweed(tmp_path / "weed")
    yield server
    server.stop()


@pytest.mark.parametrize("backend", ["local", "s3", "minio"])
def test_kill_9_during_a_300_mb_upload_leaves_no_object_and_no_row(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    extra, seaweed, bucket = "", None, ""
    if backend != "local":
        seaweed = request.getfixturevalue("seaweed")
        bucket = seaweed.make_bucket()
        extra = s3_section(seaweed, bucket, backend)
    server = write_config(tmp_path, extra=extra)
    server.start()
    try:
        post_until_killed(server, total=300 * MiB, kill_at=100 * MiB)
        # What the dead process left: the janitor's record, and a partial write.
        assert len(db_rows(server, "SELECT key FROM pending_objects")) == 1
        if seaweed is not None:
            pending = seaweed.client().list_multipart_uploads(Bucket=bucket, Prefix="assets/").get("Uploads", [])
            assert len(pending) == 1
        else:
            assert list((server.data_dir / "objects" / ".incoming").glob("*.part"))

        server.start()
        assert "removed what interrupted uploads left" in server.log()
        assert db_rows(server, "SELECT key FROM pending_objects") == []
        assert db_rows(server, "SELECT id FROM assets") == []
        if seaweed is not None:
            client = seaweed.client()
            assert client.list_multipart_uploads(Bucket=bucket, Prefix="assets/").get("Uploads", []) == []
            assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        else:
            objects = server.data_dir / "objects"
            assert [p for p in objects.rglob("*") if p.is_file()] == []
        with server.client() as client:  # and it takes the next upload as usual
            answer = client.post("/v1/uploads", files={"file": ("ok.png", png_bytes(), "image/png")})
            assert answer.status_code == 202, answer.text
            server.wait_job(answer.json()["job_id"], ("completed",))
    finally:
        server.kill()


def test_an_original_stored_without_its_asset_row_is_deleted_at_start(tmp_path: Path) -> None:
    """The narrowest window: the object was committed, the process died before the asset row."""
    settings = Settings(server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=1))
    runtime = build_runtime(settings, probe_hardware=False)
    runtime.store.put_bytes("assets/orphan/original", b"left behind", "image/png")
    runtime.assets.add_pending("assets/orphan/original", time.time())
    runtime.start()
    try:
        assert not runtime.store.exists("assets/orphan/original")
        assert runtime.assets.pending_keys() == []
    finally:
        runtime.stop()


def test_kill_9_during_a_transcode_runs_it_again_without_duplicate_variants(tmp_path: Path) -> None:
    server = write_config(tmp_path)
    server.start()
    try:
        asset_id = upload_clip(server, tmp_path)
        job_id = f"transcode-{asset_id}"
        deadline = time.monotonic() + 120
        job: dict[str, Any] = {}
        with server.client() as client:
            while time.monotonic() < deadline:
                found = client.get(f"/v1/jobs/{job_id}")
                job = found.json() if found.status_code == 200 else {}
                if job.get("state") == "active" and job.get("progress", 0) >= 20:
                    break
                time.sleep(0.05)
        assert job.get("state") == "active", job
        assert server.process is not None
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert children, "the transcode runs in a child process"
        server.kill()
        # The transcoder child dies with its parent: nothing keeps encoding for a dead server.
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []

        server.start()
        done = server.wait_job(job_id, ("completed",), timeout=180)
        assert done["attempts"] == 1  # the interrupted attempt is not counted
        with server.client() as client:
            asset = client.get(f"/v1/assets/{asset_id}").json()
        variants = asset["variants"]
        assert {name: variants[name]["state"] for name in ("1080p", "720p", "preview", "thumbnail")} == {
            "1080p": "skipped", "720p": "completed", "preview": "completed", "thumbnail": "completed"}
        stored = sorted(p.name for p in (server.data_dir / "objects" / "assets" / asset_id).iterdir())
        rows = db_rows(server, f"SELECT name, key FROM variants WHERE asset_id = '{asset_id}'")
        names = [name for name, _ in rows]
        assert len(names) == len(set(names))  # one row per variant, however many attempts
        referenced = sorted({"original", *(Path(key).name for _, key in rows if key)})
        assert stored == referenced  # nothing in storage that no variant points at
        assert not list((server.data_dir / "objects" / ".incoming").glob("*.part"))
    finally:
        server.kill()


def test_object_store_down_for_30_s_uploads_get_503_and_jobs_wait_then_complete(
    own_seaweed: SeaweedS3, tmp_path: Path
) -> None:
    bucket = own_seaweed.make_bucket()
    server = write_config(tmp_path, extra=s3_section(own_seaweed, bucket))
    server.start()
    try:
        asset_id = upload_clip(server, tmp_path)
        with server.client(timeout=60) as client:
            server.wait_job(f"transcode-{asset_id}", ("active",), timeout=60)
            own_seaweed.stop()  # mid-transcode: its variants cannot be stored
            down_at = time.monotonic()

            refused = client.post("/v1/uploads", files={"file": ("b.png", png_bytes(), "image/png")})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_unavailable"
            assert client.get("/readyz").status_code == 503
            waiting = server.wait_job(f"transcode-{asset_id}", ("retrying",), timeout=60)
            assert waiting["error"].startswith("waiting for storage")
            time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
            job = client.get(f"/v1/jobs/transcode-{asset_id}").json()
            assert job["state"] in ("retrying", "active"), job  # still waiting, not dead
            assert client.get("/v1/dlq").json()["items"] == []

            own_seaweed.start()
            done = server.wait_job(f"transcode-{asset_id}", ("completed",), timeout=180)
            assert done["attempts"] <= 2
            variants = client.get(f"/v1/assets/{asset_id}").json()["variants"]
            assert variants["720p"]["state"] == "completed" and variants["preview"]["state"] == "completed"
            assert httpx.get(variants["720p"]["url"], timeout=30).status_code == 200
            assert client.post("/v1/uploads", files={"file": ("c.png", png_bytes(), "image/png")}).status_code == 202
        pending = own_seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert pending == []
    finally:
        server.kill()


def test_kill_9_during_a_concurrent_webhook_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    import threading

    from appliance.webhooks.verify import github_signature
    from tests.support.receiver import start_receiver

    receiver = start_receiver()
    hooks = f'[webhooks.github]\nsecrets = ["s3cret"]\nforward_to = "{receiver.url}/hook"\n'
    server = write_config(tmp_path, extra=hooks)
    server.start()
    acked: list[str] = []
    lock = threading.Lock()
    body = b'{"action": "created"}'
    headers = {"X-Hub-Signature-256": github_signature(body, "s3cret"), "X-GitHub-Event": "star",
               "Content-Type": "application/json"}

    def sender(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for n in range(10_000):
                delivery = f"burst-{index}-{n}"
                try:
                    answer = client.post("/webhooks/github", content=body,
                                         headers={**headers, "X-GitHub-Delivery": delivery})
                except httpx.HTTPError:
                    return  # the server is gone: this one was never acknowledged
                if answer.status_code == 200:
                    with lock:
                        acked.append(delivery)

    try:
        threads = [threading.Thread(target=sender, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < 1500 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # mid-burst, with requests in flight on every connection
        for thread in threads:
            thread.join(30)
        assert len(acked) >= 1500
        server.start()
        deadline = time.monotonic() + 120
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = {r.headers["X-Ingestbox-Event-Id"] for r in receiver.on("/hook")}
            if got >= set(acked):
                break
            time.sleep(0.2)
        assert set(acked) - got == set()  # every acknowledged delivery was forwarded
    finally:
        server.kill()
        receiver.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (the test command runs as root)")
def test_a_full_disk_is_a_clear_507_and_the_database_stays_intact(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    server = write_config(mount)
    try:
        server.start()
        with server.client(timeout=60) as client:
            before = client.post("/v1/uploads", files={"file": ("a.png", png_bytes(), "image/png")})
            assert before.status_code == 202
            server.wait_job(before.json()["job_id"], ("completed",))
        boundary = uuid.uuid4().hex
        with server.client(timeout=60) as client:
            full = client.post("/v1/uploads", content=multipart_body(boundary, "big.png", 80 * MiB, lambda _: None),
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            assert full.status_code == 507, full.text
            assert full.json()["error"]["code"] == "disk_full"
            assert "free disk space" in full.json()["error"]["message"]
            # The partial file is gone, so the next upload has room again, and earlier data is all there.
            assert not list((server.data_dir / "objects" / ".incoming").glob("*.part"))
            after = client.post("/v1/uploads", files={"file": ("b.png", png_bytes(), "image/png")})
            assert after.status_code == 202
            server.wait_job(after.json()["job_id"], ("completed",))
            assert client.get(f"/v1/assets/{before.json()['asset_id']}").status_code == 200
        assert db_rows(server, "PRAGMA integrity_check") == [("ok",)]
    finally:
        server.kill()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_kill_9_while_a_mail_is_being_sent_sends_it_after_restart(tmp_path: Path) -> None:
    from tests.support.smtp import smtp_inbox

    with smtp_inbox() as inbox:
        inbox.data_delay = 30.0  # the first conversation hangs in DATA until the sender is killed
        server = write_config(tmp_path, extra=f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {inbox.port}\n'
                                              'starttls = false\nsender = "box@example.com"\n')
        server.start()
        try:
            with server.client() as client:
                answer = client.post("/v1/uploads", files={"file": ("a.png", png_bytes(), "image/png")},
                                     data={"notify_email": "user@example.com"})
            assert answer.status_code == 202
            deadline = time.monotonic() + 30
            while inbox.data_started == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert inbox.data_started == 1
            server.kill()
            inbox.data_delay = 0.0
            server.start()
            (mail, *_) = inbox.wait(1, timeout=60)
            assert mail.rcpt_tos == ["user@example.com"]
            job = server.wait_job(f"notify-completed-{answer.json()['asset_id']}", ("completed",))
            assert job["attempts"] == 1  # the interrupted attempt is not counted
        finally:
            server.kill()


def test_only_the_object_store_being_down_counts_as_an_outage() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError
    from urllib3.exceptions import NewConnectionError

    from appliance.errors import StorageUnavailable
    from appliance.storage.outage import is_storage_outage, storage_failure
    from appliance.webhooks.forward import ForwardFailed

    down = storage_failure("s3 read of k failed", EndpointConnectionError(endpoint_url="http://s3"))
    assert isinstance(down, StorageUnavailable) and is_storage_outage(down)
    server_error = ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Get")
    assert is_storage_outage(storage_failure("s3 read", server_error))
    denied = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Get")
    assert not is_storage_outage(storage_failure("s3 read", denied))  # wrong credentials do not pass by waiting
    try:
        try:
            raise NewConnectionError(None, "connection refused")  # type: ignore[arg-type]
        except NewConnectionError as exc:
            raise ForwardFailed("POST http://app/hook failed") from exc
    except ForwardFailed as forwarded:
        assert not is_storage_outage(forwarded)  # the application being down is not our store being down


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    server = write_config(tmp_path)
    server.start()
    try:
        second = server.cli("serve", timeout=60)
        assert second.returncode == 2
        assert "another ingestbox serve is running with this data directory" in second.stderr
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.kill()
