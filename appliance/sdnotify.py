"""systemd's notify protocol without libsystemd: READY=1, WATCHDOG=1 from the event loop, STOPPING=1."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("ingestbox")


def notify(message: str) -> bool:
    """Send one datagram to $NOTIFY_SOCKET; False when not under systemd (or the socket is gone)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
            return True
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)
            return False


def watchdog_seconds() -> float | None:
    """Half of WatchdogSec, or None without a watchdog. A one-file binary runs as the child of its
    bootloader, which systemd knows as the main PID: that parent counts as us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid.isdigit() and int(pid) not in (os.getpid(), os.getppid()):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog_pings(interval: float) -> None:
    """Pings from the event loop itself: a loop that hangs stops them, and systemd restarts the service."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def start_watchdog(loop: asyncio.AbstractEventLoop) -> asyncio.Task[None] | None:
    interval = watchdog_seconds()
    return loop.create_task(watchdog_pings(interval)) if interval else None


def stop_watchdog(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
