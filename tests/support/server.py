"""The real `ingestbox serve` as a subprocess: start, wait ready, kill -9, SIGTERM, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port


@dataclass
class ServeProcess:
    config_path: Path
    data_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "api-token").read_text().strip()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args, "--config", str(self.config_path)],
            capture_output=True, text=True, timeout=timeout, env={**os.environ, **self.env},
        )

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ingestbox serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"ingestbox serve did not answer /healthz in {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """kill -9: no cleanup of any kind runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_job(self, job_id: str, states: tuple[str, ...], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        with self.client() as client:
            while time.monotonic() < deadline:
                answer = client.get(f"/v1/jobs/{job_id}")
                if answer.status_code == 200:
                    job = answer.json()
                    if job["state"] in states:
                        return job
                time.sleep(0.05)
        raise AssertionError(f"job {job_id} not in {states} after {timeout}s: {job}")


def write_config(directory: Path, extra: str = "", port: int | None = None) -> ServeProcess:
    port = port or free_port()
    data_dir = directory / "data"
    config = directory / "ingestbox.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data_dir}"\nshutdown_grace_seconds = 5\n'
        f'[hwaccel]\nmode = "off"\n{extra}'
    )
    return ServeProcess(config, data_dir, port, directory / "serve.log")
