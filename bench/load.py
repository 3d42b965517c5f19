"""Load: signed webhooks as fast as they are answered and concurrent 50 MB uploads, while a transcode runs.

    python -m bench.load --json

One `ingestbox serve` (local storage) forwarding GitHub webhooks to a loopback receiver. First a
1080p clip is uploaded and its transcode is left running; then, at the same time, WEBHOOKS signed
deliveries go out on CONNECTIONS keep-alive connections and UPLOADS files of UPLOAD_MB each are
posted concurrently. The baseline, in the same run and on the same server, is the same
webhook burst alone, before anything else starts. Afterwards every acknowledged delivery must
reach the receiver and every accepted upload's job must complete: `lost` counts what did not.
Memory is the peak RSS of the server process (its transcode child apart) above what it used at
the start of the combined load. The last line is JSON.
tests/test_load.py runs the same scenario and asserts nothing is lost and memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from appliance.webhooks.verify import github_signature
from bench.httpload import Pool
from bench.queue import machine
from bench.upload import RssSampler
from tests.media import jpeg_bytes, make_video
from tests.support.receiver import Receiver, start_receiver
from tests.support.server import ServeProcess, write_config

SECRET = "load-secret"
MiB = 1024 * 1024


def padded_jpeg(total: int) -> Iterator[bytes]:
    """A small real JPEG followed by filler up to `total` bytes: a big upload whose processing is cheap."""
    head = jpeg_bytes(640, 480)
    yield head
    block = b"\0" * MiB
    left = total - len(head)
    while left > 0:
        yield block[: min(left, MiB)]
        left -= MiB


def upload_one(server: ServeProcess, size: int, results: list[tuple[int, str]]) -> None:
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
               "Content-Type: image/jpeg\r\n\r\n").encode()
        yield from padded_jpeg(size)
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        with server.client(timeout=300) as client:
            answer = client.post("/v1/uploads", content=body(),
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        results.append((answer.status_code, answer.json().get("job_id", "") if answer.status_code == 202 else ""))
    except httpx.HTTPError as exc:
        results.append((0, str(exc)))


async def send_webhooks(port: int, count: int, connections: int, prefix: str) -> tuple[list[str], list[float], int]:
    """Post `count` signed deliveries; return the acknowledged ids, ack latencies, and failures."""
    body = json.dumps({"action": "created", "repository": {"full_name": "octo/repo"}}).encode()
    base = {"X-Hub-Signature-256": github_signature(body, SECRET), "X-GitHub-Event": "star",
            "Content-Type": "application/json"}
    ids = iter(f"{prefix}-{n}" for n in range(count))
    acked: list[str] = []
    latencies: list[float] = []
    failed = 0

    async def worker(pool: Pool) -> None:
        nonlocal failed
        for delivery in ids:
            connection = await pool.idle.get()
            started = time.perf_counter()
            try:
                status = await connection.post("/webhooks/github", body, {**base, "X-GitHub-Delivery": delivery})
            finally:
                pool.idle.put_nowait(connection)
            latencies.append(time.perf_counter() - started)
            if status == 200:
                acked.append(delivery)
            else:
                failed += 1

    async with Pool("127.0.0.1", port, connections) as pool:
        await asyncio.gather(*(worker(pool) for _ in range(connections)))
    return acked, latencies, failed


def start_transcode(server: ServeProcess, workdir: Path) -> str:
    source = make_video(workdir / "load.mp4", 20.0, 1920, 1080, 30, audio=False)
    with server.client(timeout=120) as client:
        answer = client.post("/v1/uploads", files={"file": ("load.mp4", source.read_bytes(), "video/mp4")})
    answer.raise_for_status()
    job_id = f"transcode-{answer.json()['asset_id']}"
    server.wait_job(job_id, ("active",), timeout=120)
    return job_id


def wait_forwarded(receiver: Receiver, acked: set[str], timeout: float) -> set[str]:
    deadline = time.monotonic() + timeout
    got: set[str] = set()
    while time.monotonic() < deadline:
        got = {r.headers.get("X-Ingestbox-Event-Id", "") for r in receiver.on("/hook")}
        if got >= acked:
            break
        time.sleep(0.2)
    return got


def run(workdir: Path, webhooks: int = 10_000, uploads: int = 20, upload_mb: int = 50,
        connections: int = 32) -> dict[str, Any]:
    receiver = start_receiver()
    hooks = f'[webhooks.github]\nsecrets = ["{SECRET}"]\nforward_to = "{receiver.url}/hook"\n'
    server = write_config(workdir, extra=hooks)
    server.start()
    try:
        # Baseline, same server, same run: the webhooks alone, with nothing else going on.
        started = time.monotonic()
        alone, alone_latencies, alone_failed = asyncio.run(send_webhooks(server.port, webhooks, connections, "alone"))
        alone_rps = len(alone) / (time.monotonic() - started)
        wait_forwarded(receiver, set(alone), timeout=600)
        alone_latencies.sort()
        transcode_job = start_transcode(server, workdir)
        assert server.process is not None
        baseline_rss = psutil.Process(server.process.pid).memory_info().rss
        sampler = RssSampler(server.process.pid, children=False)  # the transcode child is not the server
        sampler.start()
        upload_results: list[tuple[int, str]] = []
        threads = [threading.Thread(target=upload_one, args=(server, upload_mb * MiB, upload_results))
                   for _ in range(uploads)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        acked, latencies, failed = asyncio.run(send_webhooks(server.port, webhooks, connections, "load"))
        webhook_seconds = time.monotonic() - started
        for thread in threads:
            thread.join()
        burst_seconds = time.monotonic() - started
        forwarded = wait_forwarded(receiver, set(acked) | set(alone), timeout=600)
        drained_seconds = time.monotonic() - started
        sampler.running = False
        accepted = [job for status, job in upload_results if status == 202]
        upload_jobs = [server.wait_job(job, ("completed", "dead"), timeout=300)["state"] for job in accepted]
        transcode = server.wait_job(transcode_job, ("completed", "dead"), timeout=600)["state"]
        latencies.sort()
        return {
            "webhooks_sent": webhooks, "webhooks_acked": len(acked), "webhooks_refused": failed,
            "webhooks_lost": len((set(acked) | set(alone)) - forwarded),
            "webhooks_refused_alone": alone_failed,
            "webhook_rps": round(len(acked) / webhook_seconds, 1),
            "webhook_rps_alone": round(alone_rps, 1),
            "ratio_vs_alone": round(len(acked) / webhook_seconds / alone_rps, 2),
            "ack_p99_ms_alone": round(1000 * alone_latencies[int(0.99 * (len(alone_latencies) - 1))], 2),
            "ack_p50_ms": round(1000 * statistics.median(latencies), 2),
            "ack_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
            "uploads": uploads, "upload_mb": upload_mb, "uploads_accepted": len(accepted),
            "upload_statuses": sorted({status for status, _ in upload_results}),
            "uploads_lost": sum(1 for state in upload_jobs if state != "completed") + uploads - len(accepted),
            "upload_mb_per_s": round(uploads * upload_mb / burst_seconds, 1),
            "burst_seconds": round(burst_seconds, 1), "forwarded_all_after_s": round(drained_seconds, 1),
            "transcode": transcode,
            "rss_start_mb": round(baseline_rss / MiB, 1), "rss_peak_mb": round(sampler.peak / MiB, 1),
            "rss_growth_mb": round((sampler.peak - baseline_rss) / MiB, 1),
        }
    finally:
        server.kill()
        receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--upload-mb", type=int, default=50)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingestbox-load-") as workdir:
        result = run(Path(workdir), args.webhooks, args.uploads, args.upload_mb, args.connections)
    result["machine"] = machine()
    if not args.json:
        for key, value in result.items():
            print(f"{key:>24}: {value}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
