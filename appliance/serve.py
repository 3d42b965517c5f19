"""`ingestbox serve`: build the runtime, print the banner, run Sanic and the workers in one process."""

from __future__ import annotations

import fcntl
import ipaddress
import logging
from pathlib import Path
from typing import TextIO

from appliance.app import create_app
from appliance.config import Settings
from appliance.errors import ConfigError
from appliance.runtime import build_runtime
from appliance.storage.factory import public_base_url

log = logging.getLogger("ingestbox")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(runtime_settings: Settings, storage: str, encoder: str, token_where: str, decision: str) -> str:
    server = runtime_settings.server
    return "\n".join(
        [
            f"ingestbox listening on {public_base_url(runtime_settings)} (bind {server.listen})",
            f"  config:   {runtime_settings.source}",
            f"  data dir: {server.data_dir.resolve()}",
            f"  storage:  {storage}",
            f"  encoder:  {encoder}",
            f"  scheduler: {decision}",
            f"  API token: {token_where}",
        ]
    )


def hold_data_dir(data_dir: Path) -> TextIO:
    """Lock the data directory for this process's life: at start the janitor removes what looks unfinished
    in storage, which is only safe when no other ingestbox writes there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "serve.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError([f"{data_dir}: another ingestbox serve is running with this data directory"]) from None
    return handle


def serve(settings: Settings) -> int:
    logging.getLogger("huey").setLevel(logging.CRITICAL)  # our engine logs each outcome itself
    lock = hold_data_dir(settings.server.data_dir)  # released when the process ends, however it ends
    runtime = build_runtime(settings)
    if runtime.token_file is not None:
        token_where = f"{runtime.token_file.resolve()} (send it as Authorization: Bearer <token>)"
    else:
        token_where = "from the config ([server] api_tokens) or $CREDENTIALS_DIRECTORY/api-token"
    print(
        banner(settings, runtime.store.describe(), runtime.hwaccel.chosen, token_where, runtime.scheduler.reason),
        flush=True,
    )
    if not is_loopback(settings.server.host):
        log.warning(
            "listening on %s, beyond loopback: every /v1 route needs the token, but traffic is plain HTTP; "
            "put a TLS reverse proxy in front",
            settings.server.host,
        )
    app = create_app(runtime)
    app.run(
        host=settings.server.host,
        port=settings.server.port,
        single_process=True,
        access_log=False,
        motd=False,
    )
    lock.close()
    return 0
