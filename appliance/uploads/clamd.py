"""Talking to clamd: addresses (unix:// or tcp://) and the PING health check."""

from __future__ import annotations

import socket

from appliance.errors import ServiceUnavailable


class ClamdUnavailable(ServiceUnavailable):
    code = "scanner_unavailable"


def connect(address: str, timeout: float) -> socket.socket:
    try:
        if address.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address[len("unix://") :])
            return sock
        host, _, port = address[len("tcp://") :].rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as exc:
        raise ClamdUnavailable(f"clamd at {address} is not reachable: {exc.strerror or exc}") from exc


def ping(address: str, timeout: float = 5.0) -> None:
    """Raise ClamdUnavailable unless clamd answers PONG."""
    with connect(address, timeout) as sock:
        try:
            sock.sendall(b"zPING\0")
            answer = sock.recv(64)
        except OSError as exc:
            raise ClamdUnavailable(f"clamd at {address} did not answer: {exc}") from exc
    if answer.rstrip(b"\0\n") != b"PONG":
        raise ClamdUnavailable(f"clamd at {address} answered {answer!r} to PING")
