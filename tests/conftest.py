"""Fixtures: settings in a temp dir, an in-process app, SeaweedFS, and the real server as a subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from appliance.app import create_app
from appliance.config import ServerSettings, Settings
from appliance.runtime import Runtime, build_runtime
from tests.support.clamd import Clamd, start_clamd
from tests.support.receiver import Receiver, start_receiver
from tests.support.seaweed import SeaweedS3, start_seaweed
from tests.support.server import ServeProcess, write_config

Sanic.test_mode = True  # one fresh app per test may reuse the name


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, probe_hardware=False)
    rt.start()
    yield rt
    rt.stop()


class ApiClient:
    """Calls the in-process app through ASGI, synchronously, with the token set."""

    def __init__(self, app: Sanic, token: str) -> None:
        self.app = app
        self.token = token

    def request(self, method: str, path: str, token: str | None = "default", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        call = getattr(self.app.asgi_client, method.lower())
        _, response = asyncio.run(call(path, headers=headers, **kwargs))
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(runtime: Runtime) -> ApiClient:
    return ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP server that records what is POSTed to it."""
    server = start_receiver()
    yield server
    server.close()


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """Debian's clamd with a one-line EICAR signature database (no internet needed)."""
    daemon = start_clamd(tmp_path_factory.mktemp("clamd"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    """The real `ingestbox serve`, started; killed at the end whatever the test did."""
    server = write_config(tmp_path)
    server.start()
    yield server
    server.kill()
