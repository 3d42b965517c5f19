"""A loopback HTTP receiver for forwarded webhooks and alerts: records requests, fails on demand."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    failures_left: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, count: int) -> None:
        with self.lock:
            self.failures_left = count

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{len(self.on(path))} requests on {path} after {timeout}s, wanted {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver: Receiver = holder["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                failing = receiver.failures_left > 0
                if failing:
                    receiver.failures_left -= 1
                else:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no" if failing else b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    holder["receiver"] = receiver
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
