"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from tests.support.ports import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.port = 0
        self.data_delay = 0.0  # seconds before answering DATA: a slow server to kill a sender against
        self.data_started = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started += 1
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.messages.append(envelope)
        return "250 OK"

    def wait(self, count: int = 1, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= count, f"{len(self.messages)} mail(s) after {timeout}s, wanted {count}"
        return self.messages

    @staticmethod
    def parsed(envelope: Any) -> EmailMessage:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()
