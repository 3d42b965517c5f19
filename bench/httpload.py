"""A small, fast HTTP/1.1 load client on asyncio streams: keep-alive connections, no parsing beyond need.

httpx spends about 4 ms of CPU per request; on a 2-core box the client would be the bottleneck.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Connection:
    """One keep-alive connection; `post` sends a request and reads the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = [f"POST {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
        head += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Connections handed out one request at a time."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def __aenter__(self) -> Pool:
        for _ in range(self.size):
            self.idle.put_nowait(await Connection.open(self.host, self.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        connection = await self.idle.get()
        try:
            status = await connection.post(path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            connection.close()
            connection = await Connection.open(self.host, self.port)
            status = 0
        self.idle.put_nowait(connection)
        return status


async def steady(pool: Pool, path: str, body: bytes, make_headers: Callable[[], dict[str, str]],
                 rate: float, seconds: float) -> tuple[list[float], int]:
    """Open loop: requests leave on schedule whatever the answers do; returns latencies (ms) and failures."""
    latencies: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        started = time.perf_counter()
        status = await pool.post(path, body, make_headers())
        if status == 200:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failed += 1

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, failed


async def saturate(pool: Pool, path: str, body: bytes, make_headers: Callable[[], dict[str, str]],
                   seconds: float) -> tuple[float, int]:
    """Closed loop, one request in flight per connection; returns answered req/s and how many."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if await pool.post(path, body, make_headers()) == 200:
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(pool.size)))
    return done / (time.perf_counter() - started), done
