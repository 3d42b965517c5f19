"""Talking to clamd: addresses (unix:// or tcp://), the PING health check, INSTREAM scans."""

from __future__ import annotations

import contextlib
import socket
import struct

from appliance.errors import IngestboxError, ServiceUnavailable


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


class Infected(IngestboxError):
    status, code, quiet = 422, "infected", True


class ScanFailed(ServiceUnavailable):
    code = "scanner_unavailable"


class InstreamScan:
    """One INSTREAM session: chunks go to clamd as they pass; `verdict` says clean or names the find."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.sock = connect(address, timeout)
        try:
            self.sock.sendall(b"zINSTREAM\0")
        except OSError as exc:
            self.close()
            raise ScanFailed(f"clamd at {address} refused the scan: {exc}") from exc

    def feed(self, data: bytes) -> None:
        try:
            self.sock.sendall(struct.pack("!I", len(data)) + data)
        except OSError as exc:
            # clamd hangs up when a stream passes its StreamMaxLength; its answer says so
            raise ScanFailed(f"clamd stopped reading the stream: {self._answer() or exc}") from exc

    def verdict(self) -> str | None:
        """None when clean, else the signature name; raise ScanFailed on any other answer."""
        try:
            self.sock.sendall(struct.pack("!I", 0))
        except OSError as exc:
            raise ScanFailed(f"clamd stopped reading the stream: {self._answer() or exc}") from exc
        answer = self._answer()
        if answer.endswith(" FOUND"):
            return answer.removeprefix("stream: ").removesuffix(" FOUND")
        if answer == "stream: OK":
            return None
        raise ScanFailed(f"clamd answered {answer!r}")

    def _answer(self) -> str:
        chunks: list[bytes] = []
        try:
            while not chunks or not chunks[-1].endswith(b"\0"):
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks).rstrip(b"\0\n").decode("utf-8", "replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
