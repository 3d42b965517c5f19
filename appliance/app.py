"""create_app(runtime): the Sanic app with its routes, middleware, error renderer and lifecycle."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import disable_created_metrics
from sanic import Sanic
from sanic.config import Config
from sanic.log import LOGGING_CONFIG_DEFAULTS

from appliance import frozen, sdnotify
from appliance import sanic_patches as _sanic_patches  # noqa: F401 (applies its fixes on import)
from appliance.auth import require_token
from appliance.errors import render_error
from appliance.routes import dlq, files, health, jobs, page, system
from appliance.runtime import Runtime
from appliance.storage.factory import data_secret
from appliance.uploads import routes as upload_routes
from appliance.web.session import SessionSigner
from appliance.webhooks import routes as webhook_routes

log = logging.getLogger("ingestbox")
disable_created_metrics()  # the *_created series only double what a scraper already knows


def _log_config() -> dict[str, object]:
    """Sanic's logging, without propagating to the root logger (which would print each line twice)."""
    config = dict(LOGGING_CONFIG_DEFAULTS)
    loggers = config.get("loggers", {})
    assert isinstance(loggers, dict)
    config["loggers"] = {name: {**logger, "propagate": False} for name, logger in loggers.items()}
    return config


def create_app(runtime: Runtime, name: str = "ingestbox", manage_runtime: bool = True) -> Sanic:
    """A fresh app per call: no global state, so tests build one each.

    With `manage_runtime` the server start starts the job engine and the server stop
    stops it; in-process test clients, which start and stop per request, pass False
    and drive `runtime.start()` / `runtime.stop()` themselves.
    """
    config = Config()
    config.ACCESS_LOG = False
    config.MOTD = False
    config.KEEP_ALIVE_TIMEOUT = 75
    config.GRACEFUL_SHUTDOWN_TIMEOUT = max(1.0, runtime.settings.server.shutdown_grace_seconds)
    config.FALLBACK_ERROR_FORMAT = "json"
    config.WEBSOCKET_PING_INTERVAL = 20
    config.TOUCHUP = not frozen.FROZEN  # TOUCHUP rewrites handlers from their source, which a frozen build lacks
    app = Sanic(name, config=config, log_config=_log_config())
    app.ctx.runtime = runtime
    app.ctx.sessions = SessionSigner(data_secret(runtime.settings.server.data_dir, "session-secret"))

    app.error_handler.add(Exception, render_error)
    app.on_request(require_token)

    for blueprint in (health.bp, system.bp, jobs.bp, dlq.bp, files.bp, webhook_routes.bp, upload_routes.bp,
                      page.bp):
        app.blueprint(blueprint)

    @app.before_server_start
    async def bind_events(app: Sanic) -> None:
        runtime.events.bind(asyncio.get_running_loop())

    if manage_runtime:

        @app.before_server_start
        async def start_engine(app: Sanic) -> None:
            await asyncio.get_running_loop().run_in_executor(None, runtime.start)

        @app.after_server_start
        async def tell_systemd_ready(app: Sanic) -> None:
            app.ctx.watchdog = sdnotify.start_watchdog(asyncio.get_running_loop())
            sdnotify.notify(f"READY=1\nSTATUS=listening on {runtime.settings.server.listen}")

        @app.before_server_stop
        async def tell_systemd_stopping(app: Sanic) -> None:
            sdnotify.notify("STOPPING=1")
            sdnotify.stop_watchdog(getattr(app.ctx, "watchdog", None))

        @app.after_server_stop
        async def stop_engine(app: Sanic) -> None:
            await asyncio.get_running_loop().run_in_executor(None, runtime.stop)

    return app
