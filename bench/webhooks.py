"""Webhook benchmark: signed GitHub webhooks against `ingestbox serve`, and a bare Sanic route as baseline.

    python -m bench.webhooks --json

Acknowledgement latency p50/p99 at a steady rate (open loop: requests leave on schedule
whatever the answers do), then the highest sustained rate with CONNECTIONS requests in flight,
for ingestbox and, in the same run, for a bare Sanic route that only answers 200. `lost`
counts acknowledged webhooks whose job did not complete. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from appliance.webhooks.verify import github_signature
from bench.httpload import Pool, saturate, steady
from bench.queue import free_port, machine

SECRET = "bench-secret"
PATH = "/webhooks/github"
BODY = json.dumps({"action": "created", "starred_at": "2026-11-27T00:00:00Z",
                   "repository": {"id": 1, "full_name": "octo/repo"}, "sender": {"login": "octocat"}}).encode()
HEADERS = {"X-Hub-Signature-256": github_signature(BODY, SECRET), "X-GitHub-Event": "star",
           "Content-Type": "application/json"}


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy")


def delivery_headers() -> dict[str, str]:
    return {**HEADERS, "X-GitHub-Delivery": str(uuid.uuid4())}


async def measure_steady(port: int, args: argparse.Namespace) -> tuple[list[float], int]:
    async with Pool("127.0.0.1", port, 64) as pool:
        return await steady(pool, PATH, BODY, delivery_headers, args.rate, args.seconds)


async def measure(port: int, args: argparse.Namespace) -> tuple[list[float], int, float, int]:
    """Steady-rate latencies and failures, then max req/s and how many were answered."""
    latencies, failed = await measure_steady(port, args)
    async with Pool("127.0.0.1", port, args.connections) as pool:
        max_rps, answered = await saturate(pool, PATH, BODY, delivery_headers, args.max_seconds)
    return latencies, failed, max_rps, answered


def completed_webhooks(url: str, token: str, expected: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    completed = 0
    while time.monotonic() < deadline:
        rows = httpx.get(f"{url}/v1/queues", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        row = next(r for r in rows["items"] if r["name"] == "webhook-handling")
        completed = row["completed_24h"]
        if completed >= expected or (row["waiting"] == 0 and row["active"] == 0):
            return int(completed)
        time.sleep(0.5)
    return int(completed)


def run_ingestbox(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    config = workdir / "ingestbox.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{workdir / "data"}"\n'
        f'[hwaccel]\nmode = "off"\n[webhooks.github]\nsecrets = ["{SECRET}"]\n'
    )
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        token = (workdir / "data" / "api-token").read_text().strip()
        latencies, failed, max_rps, answered = asyncio.run(measure(port, args))
        acked = len(latencies) + answered
        under: list[float] = []
        if args.under_transcode:
            start_transcode(url, token, workdir)
            under, failed_under = asyncio.run(measure_steady(port, args))
            failed += failed_under
            acked += len(under)
        completed = completed_webhooks(url, token, acked, timeout=600)
        return {"latencies": latencies, "failed": failed, "max_rps": max_rps, "acked": acked,
                "lost": max(0, acked - completed), "under_transcode": under}
    finally:
        process.terminate()
        process.wait(60)


def start_transcode(url: str, token: str, workdir: Path) -> None:
    """Upload a 1080p clip and wait until its media-transcoding job is running: the load to ack under."""
    source = workdir / "load.mp4"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=60",
                    "-c:v", "libx264", "-preset", "ultrafast", str(source)], check=True)
    headers = {"Authorization": f"Bearer {token}"}
    with source.open("rb") as handle:
        answer = httpx.post(f"{url}/v1/uploads", files={"file": ("load.mp4", handle, "video/mp4")},
                            headers=headers, timeout=120).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/transcode-{answer['asset_id']}", headers=headers, timeout=10)
        if job.status_code == 200 and job.json()["state"] == "active" and job.json()["progress"] > 2:
            return
        time.sleep(0.2)
    raise SystemExit("the transcode did not start")


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.bare_sanic", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        latencies, failed, max_rps, _ = asyncio.run(measure(port, args))
        return {"latencies": latencies, "failed": failed, "max_rps": max_rps}
    finally:
        process.terminate()
        process.wait(30)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="signed GitHub webhooks against ingestbox serve")
    parser.add_argument("--rate", type=float, default=200.0, help="req/s of the steady run")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady run")
    parser.add_argument("--connections", type=int, default=32, help="requests in flight for max req/s")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="length of the max req/s run")
    parser.add_argument("--under-transcode", action="store_true",
                        help="also measure the steady run while a 1080p transcode runs in the same server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        ours = run_ingestbox(Path(tmp), args)
    base = run_baseline(args)
    report = {
        "ack_p50_ms": round(statistics.median(ours["latencies"]), 3),
        "ack_p99_ms": round(pct(ours["latencies"], 99), 3),
        "max_rps": round(ours["max_rps"], 1),
        "baseline_rps": round(base["max_rps"], 1),
        "ratio": round(ours["max_rps"] / base["max_rps"], 2),
        "lost": ours["lost"],
        "failed_requests": ours["failed"],
        "acknowledged": ours["acked"],
        "baseline_ack_p50_ms": round(statistics.median(base["latencies"]), 3),
        "baseline_ack_p99_ms": round(pct(base["latencies"], 99), 3),
        "rate": args.rate,
        **({"ack_p50_under_transcode_ms": round(statistics.median(ours["under_transcode"]), 3),
            "ack_p99_under_transcode_ms": round(pct(ours["under_transcode"], 99), 3)}
           if ours["under_transcode"] else {}),
        "seconds": args.seconds,
        "machine": machine(),
        "cpu_count": os.cpu_count(),
    }
    print(f"ack at {args.rate:g}/s: p50 {report['ack_p50_ms']} ms, p99 {report['ack_p99_ms']} ms "
          f"(bare Sanic: {report['baseline_ack_p50_ms']} / {report['baseline_ack_p99_ms']} ms)")
    if ours["under_transcode"]:
        print(f"ack at {args.rate:g}/s under a 1080p transcode: p50 {report['ack_p50_under_transcode_ms']} ms, "
              f"p99 {report['ack_p99_under_transcode_ms']} ms")
    print(f"max: {report['max_rps']} req/s, bare Sanic {report['baseline_rps']} req/s, ratio {report['ratio']}")
    print(f"acknowledged {report['acknowledged']}, lost {report['lost']}, failed requests {report['failed_requests']}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
