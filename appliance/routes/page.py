"""GET / (the status page), its token login and logout, and its static files: nothing fetched from elsewhere."""

from __future__ import annotations

import html
from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, redirect
from sanic.response import html as html_response

from appliance.auth import token_matches
from appliance.errors import NotFound
from appliance.web.session import COOKIE

bp = Blueprint("page")
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    # Only this origin's scripts and styles; media and images may come from presigned storage URLs.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' http: https: data:; media-src 'self' http: https:;"
    " connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ingestbox: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/style.css">
</head><body class="login"><main><h1>ingestbox</h1>
<form method="post" action="/login"><label>API token <input type="password" name="token" id="token"
autocomplete="current-password" required autofocus></label><button type="submit" id="login">Log in</button></form>
<p class="error">{error}</p><p class="hint">The token is in <code>&lt;data_dir&gt;/api-token</code>, or
<code>[server] api_tokens</code>.</p></main></body></html>
"""


def with_headers(response: HTTPResponse) -> HTTPResponse:
    response.headers.update(SECURITY_HEADERS)
    return response


def logged_in(request: Request) -> str | None:
    cookie = request.cookies.get(COOKIE)
    return cookie if request.app.ctx.sessions.valid(cookie) else None


@bp.get("/")
async def status_page(request: Request) -> HTTPResponse:
    cookie = logged_in(request)
    if cookie is None:
        return redirect("/login", status=303)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{csrf}}", html.escape(request.app.ctx.sessions.csrf(cookie)))
    response = html_response(page)
    response.headers["Cache-Control"] = "no-store"
    return with_headers(response)


@bp.get("/login")
async def login_form(request: Request) -> HTTPResponse:
    return with_headers(html_response(LOGIN_PAGE.format(error="")))


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    form = request.form
    token = str(form.get("token") or "") if form is not None else ""
    if not token_matches(token, request.app.ctx.runtime.tokens):
        return with_headers(html_response(LOGIN_PAGE.format(error="That token is not valid."), status=401))
    response = redirect("/", status=303)
    response.add_cookie(
        COOKIE, request.app.ctx.sessions.issue(), path="/", httponly=True, samesite="Strict",
        secure=request.scheme == "https", max_age=request.app.ctx.sessions.seconds,
    )
    return response


@bp.post("/logout")
async def logout(request: Request) -> HTTPResponse:
    response = redirect("/login", status=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.get("/static/<name:str>")
async def static(request: Request, name: str) -> HTTPResponse:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return with_headers(await file(path, mime_type=STATIC_TYPES[path.suffix]))
