"""The baseline of bench.webhooks: a bare Sanic route that answers 200, nothing else."""

from __future__ import annotations

import sys

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json


def main() -> None:
    app = Sanic("bare")

    @app.post("/webhooks/github")
    async def hook(request: Request) -> HTTPResponse:
        return json({"received": True, "duplicate": False})

    @app.get("/healthz")
    async def health(request: Request) -> HTTPResponse:
        return json({"ok": True})

    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
