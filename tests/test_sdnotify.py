"""The real server tells systemd READY, pings the watchdog from its event loop, and says STOPPING."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.server import write_config

pytestmark = pytest.mark.slow


def test_ready_watchdog_and_stopping_reach_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    server = write_config(tmp_path)
    # As systemd sets them for Type=notify with WatchdogSec=1 (pings every 0.5 s).
    server.env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    server.start()
    try:
        messages: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(m == "WATCHDOG=1" for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
        ready = [m for m in messages if m.startswith("READY=1")]
        assert ready and "STATUS=listening on" in ready[0]
        assert sum(m == "WATCHDOG=1" for m in messages) >= 3
        os.kill(server.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        while "STOPPING=1" not in messages:
            messages.append(sock.recv(4096).decode())
        server.process.wait(60)  # type: ignore[union-attr]
    finally:
        server.kill()
        sock.close()
