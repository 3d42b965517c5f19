"""Queue benchmark: no-op jobs through the real engine (durable records) against BullMQ on Redis.

    python -m bench.queue --json

Throughput: JOBS no-op jobs, concurrency 10, from the first enqueue until the last one
completed, with producers that wait for each enqueue to be durable (as a request handler
does before it answers). Pickup latency: enqueue call to handler start, at a steady low
rate. BullMQ 5 on a local redis-server runs the same schedule in the same run
(bench/bullmq/bench.mjs). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from appliance.db import Database
from appliance.jobs.engine import JobContext, JobEngine, QueueSpec
from appliance.jobs.retry import RetryPolicy

HERE = Path(__file__).resolve().parent
BULLMQ_DIR = HERE / "bullmq"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def make_engine(path: Path, concurrency: int) -> JobEngine:
    return JobEngine(Database(path), {"bench": QueueSpec("bench", concurrency, RetryPolicy())})


def ingestbox_throughput(workdir: Path, jobs: int, concurrency: int, producers: int) -> float:
    engine = make_engine(workdir / f"throughput-{producers}.db", concurrency)
    done = threading.Event()
    completed = [0]

    def count(job: Any) -> None:
        if job.state == "completed":
            completed[0] += 1
            if completed[0] == jobs:
                done.set()

    engine.listeners.append(count)
    engine.register("bench", "noop")(lambda payload, ctx: None)
    engine.start()
    time.sleep(0.2)

    def produce(offset: int) -> None:
        for n in range(offset, jobs, producers):
            engine.enqueue("bench", "noop", {"n": n})

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.wait()
    elapsed = time.perf_counter() - started
    engine.stop(5)
    engine.records.db.close()
    return jobs / elapsed


def ingestbox_pickup(workdir: Path, count: int, rate: float, concurrency: int) -> tuple[float, float]:
    engine = make_engine(workdir / "pickup.db", concurrency)
    latencies: list[float] = []
    finished = threading.Event()

    def mark(payload: dict[str, Any], ctx: JobContext) -> None:
        latencies.append((time.perf_counter() - payload["t"]) * 1000)
        if len(latencies) == count:
            finished.set()

    engine.register("bench", "noop")(mark)
    engine.start()
    time.sleep(0.2)
    for _ in range(count):
        engine.enqueue("bench", "noop", {"t": time.perf_counter()})
        time.sleep(1 / rate)
    finished.wait(60)
    engine.stop(5)
    engine.records.db.close()
    return percentile(latencies, 50), percentile(latencies, 99)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bullmq(jobs: int, concurrency: int, producers: int, latency_jobs: int, rate: float) -> dict[str, Any]:
    """Run bench/bullmq/bench.mjs against a fresh redis-server (no persistence, as Debian ships it minus RDB)."""
    redis = shutil.which("redis-server")
    node = shutil.which("node")
    if redis is None or node is None:
        raise SystemExit("the BullMQ baseline needs redis-server and node: apt-get install redis-server nodejs npm")
    if not (BULLMQ_DIR / "node_modules" / "bullmq").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BULLMQ_DIR, check=True)
    port = free_port()
    server = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        result = subprocess.run(
            [node, "bench.mjs", "--port", str(port), "--jobs", str(jobs), "--concurrency", str(concurrency),
             "--producers", str(producers), "--latency-jobs", str(latency_jobs), "--rate", str(rate)],
            cwd=BULLMQ_DIR, capture_output=True, text=True, check=True, timeout=600,
        )
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer
    finally:
        server.terminate()
        server.wait(10)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--producers", type=int, default=8, help="producers of the second throughput run")
    parser.add_argument("--latency-jobs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="jobs/s of the pickup-latency run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per side; medians reported")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    logging.getLogger("huey").setLevel(logging.CRITICAL)

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        workdir = Path(tmp)
        ours_seq = [ingestbox_throughput(workdir, args.jobs, args.concurrency, 1) for _ in range(args.repeat)]
        ours_par = [
            ingestbox_throughput(workdir, args.jobs, args.concurrency, args.producers) for _ in range(args.repeat)
        ]
        for path in workdir.glob("throughput-*"):
            path.unlink()
        p50, p99 = ingestbox_pickup(workdir, args.latency_jobs, args.rate, args.concurrency)
    base_seq = [bullmq(args.jobs, args.concurrency, 1, 0, args.rate)["jobs_per_s"] for _ in range(args.repeat)]
    base_par = [
        bullmq(args.jobs, args.concurrency, args.producers, 0, args.rate)["jobs_per_s"] for _ in range(args.repeat)
    ]
    base_latency = bullmq(1000, args.concurrency, 1, args.latency_jobs, args.rate)

    report = {
        "jobs_per_s": round(statistics.median(ours_seq), 1),
        "pickup_p50_ms": round(p50, 3),
        "pickup_p99_ms": round(p99, 3),
        "baseline_jobs_per_s": round(statistics.median(base_seq), 1),
        "ratio": round(statistics.median(ours_seq) / statistics.median(base_seq), 2),
        "baseline_pickup_p50_ms": round(base_latency["pickup_p50_ms"], 3),
        "baseline_pickup_p99_ms": round(base_latency["pickup_p99_ms"], 3),
        f"jobs_per_s_{args.producers}_producers": round(statistics.median(ours_par), 1),
        f"baseline_jobs_per_s_{args.producers}_producers": round(statistics.median(base_par), 1),
        f"ratio_{args.producers}_producers": round(statistics.median(ours_par) / statistics.median(base_par), 2),
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "runs": args.repeat,
        "machine": machine(),
    }
    print(f"ingestbox, 1 producer:  {report['jobs_per_s']:>8} jobs/s  (runs: {[round(x) for x in ours_seq]})")
    print(f"BullMQ,    1 producer:  {report['baseline_jobs_per_s']:>8} jobs/s  (runs: {[round(x) for x in base_seq]})")
    many = f"{args.producers} producers"
    print(f"ingestbox, {many}: {report[f'jobs_per_s_{args.producers}_producers']:>8} jobs/s")
    print(f"BullMQ,    {many}: {report[f'baseline_jobs_per_s_{args.producers}_producers']:>8} jobs/s")
    print(f"pickup p50/p99: ingestbox {p50:.2f}/{p99:.2f} ms, BullMQ "
          f"{base_latency['pickup_p50_ms']:.2f}/{base_latency['pickup_p99_ms']:.2f} ms")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
