"""The HTTP API on an in-process app: health, readiness, metrics, queues, system, auth, error shape."""

from __future__ import annotations

import re

from sanic import Sanic

from appliance.app import create_app
from appliance.auth import token_matches
from appliance.runtime import Runtime
from tests.conftest import ApiClient


def test_healthz_is_open(api: ApiClient) -> None:
    response = api.get("/healthz", token=None)
    assert response.status == 200
    assert response.json == {"ok": True}


def test_readyz_checks_database_storage_and_scanner(api: ApiClient) -> None:
    response = api.get("/readyz", token=None)
    assert response.status == 200
    assert set(response.json["checks"]) == {"database", "storage", "scanner"}
    assert response.json["ready"] is True


def test_readyz_fails_when_a_required_scanner_is_down(runtime: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime.settings.uploads.clamd.address = f"unix://{tmp_path}/no-clamd.ctl"
    runtime.settings.uploads.clamd.required = True
    api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
    response = api.get("/readyz", token=None)
    assert response.status == 503
    assert response.json["checks"]["scanner"]["ok"] is False
    assert "not reachable" in response.json["checks"]["scanner"]["error"]


def test_queues_lists_the_four_queues_with_default_concurrency(api: ApiClient, runtime: Runtime) -> None:
    response = api.get("/v1/queues")
    assert response.status == 200
    items = {item["name"]: item for item in response.json["items"]}
    assert list(items) == ["file-processing", "media-transcoding", "webhook-handling", "email-sending"]
    assert items["file-processing"]["concurrency"] == 3
    assert items["webhook-handling"]["concurrency"] == 10
    assert items["email-sending"]["concurrency"] == 5
    assert items["media-transcoding"]["concurrency"] == runtime.scheduler.transcode_concurrency >= 1
    for item in items.values():
        assert set(item) >= {"name", "concurrency", "active", "waiting", "completed_24h", "failed_24h", "dead"}


def test_system_reports_hwaccel_cores_scheduler_versions(api: ApiClient) -> None:
    body = api.get("/v1/system").json
    assert body["hwaccel"]["chosen"] == "libx264"
    names = [b["name"] for b in body["hwaccel"]["backends"]]
    assert names == ["nvenc", "qsv", "vaapi", "libx264"]
    assert all(isinstance(b["reason"], str) and b["reason"] for b in body["hwaccel"]["backends"])
    assert body["cores"] >= 1
    assert body["scheduler"]["transcode_concurrency"] >= 1
    assert "cores" in body["scheduler"]["reason"]
    assert set(body["versions"]) >= {"ingestbox", "python", "pyav", "ffmpeg"}


def test_metrics_is_prometheus_text(api: ApiClient) -> None:
    api.post("/v1/jobs", json={"queue": "email-sending"})
    response = api.get("/metrics", token=None)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'ingestbox_queue_concurrency{queue="webhook-handling"} 10.0' in response.text
    assert 'ingestbox_jobs_enqueued_total{queue="email-sending"} 1.0' in response.text


# Routes open without a token, each for a stated reason; every other route must refuse.
PUBLIC_ROUTES = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),  # probes and scrapers (SPEC.md), no secrets
    ("POST", "/webhooks/stripe"), ("POST", "/webhooks/github"),  # authenticated by their signatures
    ("GET", "/files/<key:path>"),  # authenticated by the URL's own signature
    ("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),  # the login form
    ("GET", "/static/<name:str>"),  # the page's own JS and CSS
}


def test_every_route_is_closed_without_a_token_unless_listed_public(runtime: Runtime) -> None:
    """Enumerates the app's routes: a new route is closed, or it is added to PUBLIC_ROUTES with its reason."""
    app = create_app(runtime, manage_runtime=False)
    api = ApiClient(app, runtime.tokens[0])
    app.router.finalize() if not app.router.finalized else None
    found = set()
    v1_checked = 0
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        for method in route.methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
            if (method, path) in PUBLIC_ROUTES:
                continue
            for token in (None, "wrong-token"):
                response = api.request(method, re.sub(r"<[^>]+>", "x", path), token=token)
                assert response.status == 401, (method, path, token, response.status)
                assert response.json["error"]["code"] == "unauthorized"
            v1_checked += path.startswith("/v1")
    assert v1_checked >= 7
    assert found >= PUBLIC_ROUTES  # the list names real routes
    assert api.get("/v1/queues").status == 200  # and the token does open them
    # What the public ones give away without a token: a login form, not the data.
    page = api.get("/", token=None)
    assert page.status == 303 and page.headers["location"] == "/login"
    assert api.get("/", token=None, headers={"Cookie": "ingestbox_session=forged"}).status == 303
    assert api.get("/files/assets/x/original", token=None).status == 401
    assert api.post("/webhooks/github", token=None, content=b"{}").status in (400, 503)


def test_error_shape_is_pinned(api: ApiClient) -> None:
    response = api.get("/v1/jobs/does-not-exist")
    assert response.status == 404
    assert response.json == {"error": {"code": "not_found", "message": "no job 'does-not-exist'"}}
    response = api.get("/no/such/route", token=None)
    assert response.status == 404
    assert set(response.json["error"]) == {"code", "message"}
    response = api.post("/v1/jobs", content="not json", headers={"content-type": "application/json"})
    assert response.status == 400
    assert response.json["error"]["code"] == "bad_request"


def test_token_comparison() -> None:
    assert token_matches("abc", ["x", "abc"])
    assert not token_matches("abd", ["abc"])
    assert not token_matches("", [""])


def test_apps_do_not_share_state(runtime: Runtime) -> None:
    first = create_app(runtime, manage_runtime=False)
    second = create_app(runtime, manage_runtime=False)
    assert first is not second
    assert isinstance(first, Sanic)


def test_start_removes_partial_files_left_by_a_dead_process(settings) -> None:  # type: ignore[no-untyped-def]
    from appliance.runtime import build_runtime
    from appliance.storage.local import LocalStore

    runtime = build_runtime(settings, probe_hardware=False)
    assert isinstance(runtime.store, LocalStore)
    leftover = runtime.store.temp_dir / "cut-by-kill-9.part"
    leftover.write_bytes(b"half an upload")
    runtime.start()
    try:
        assert not leftover.exists()
    finally:
        runtime.stop()
