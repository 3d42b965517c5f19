"""Webhooks on the in-process app: Stripe signatures made by the stripe library, every GitHub example
payload of @octokit/webhooks-examples, forwarding to a real loopback receiver, the log, replay, alerts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from appliance.app import create_app
from appliance.config import (
    AlertSettings,
    GithubSettings,
    QueueSettings,
    QueuesSettings,
    ServerSettings,
    Settings,
    StripeSettings,
    WebhookSettings,
)
from appliance.runtime import Runtime, build_runtime
from appliance.webhooks.verify import github_signature
from tests.conftest import ApiClient
from tests.support.receiver import Receiver
from tests.support.smtp import smtp_inbox

EXAMPLES = Path(__file__).parent / "npm" / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com"
STRIPE_OLD, STRIPE_NEW = "whsec_old_secret", "whsec_new_secret"
GITHUB_SECRET = "gh-webhook-secret"


@pytest.fixture
def hooks(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[Runtime, ApiClient]]:
    settings = Settings(
        server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2),
        webhooks=WebhookSettings(
            stripe=StripeSettings(secrets=[STRIPE_OLD, STRIPE_NEW], forward_to=f"{receiver.url}/stripe"),
            github=GithubSettings(secrets=[GITHUB_SECRET], forward_to=f"{receiver.url}/github",
                                  forward_secret="our-own-secret"),
        ),
        alerts=AlertSettings(url=f"{receiver.url}/alerts"),
        queues=QueuesSettings(**{"webhook-handling": QueueSettings(backoff_base_seconds=0.05)}),
    )
    runtime = build_runtime(settings, probe_hardware=False)
    runtime.start()
    yield runtime, ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
    runtime.stop()


def stripe_event(event_type: str = "payment_intent.succeeded", event_id: str | None = None) -> bytes:
    event = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "pi_123", "object": "payment_intent", "amount": 4200, "currency": "eur",
                            "status": "succeeded", "customer": "cus_9"}},
    }
    return json.dumps(event).encode()


def stripe_headers(body: bytes, secret: str = STRIPE_NEW, timestamp: int | None = None) -> dict[str, str]:
    """Signed by the stripe library itself."""
    ts = int(time.time()) if timestamp is None else timestamp
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, ts)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def github_headers(body: bytes, event: str, delivery: str, secret: str = GITHUB_SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": github_signature(body, secret),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def wait_status(runtime: Runtime, event_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = runtime.webhook_log.get(event_id)
        if event is not None and event.status == status:
            return event.to_dict()
        time.sleep(0.02)
    raise AssertionError(f"{event_id} not {status}: {runtime.webhook_log.get(event_id)}")


def test_stripe_event_is_verified_stored_answered_forwarded_and_recorded(hooks, receiver) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    body = stripe_event("payment_intent.succeeded", "evt_pay_1")
    sent = stripe_headers(body)
    response = api.post("/webhooks/stripe", token=None, content=body, headers=sent)
    assert response.status == 200
    assert response.json == {"received": True, "duplicate": False}
    (forwarded,) = receiver.wait_for("/stripe", 1)
    assert forwarded.body == body
    assert forwarded.headers["X-Ingestbox-Event-Id"] == "evt_pay_1"
    assert forwarded.headers["X-Ingestbox-Source"] == "stripe"
    assert forwarded.headers["X-Ingestbox-Event-Type"] == "payment_intent.succeeded"
    assert forwarded.headers["Stripe-Signature"] == sent["Stripe-Signature"]
    assert forwarded.headers["Content-Type"] == "application/json"
    logged = wait_status(runtime, "evt_pay_1", "processed")
    assert logged["source"] == "stripe" and logged["attempts"] == 1
    payment = runtime.webhook_log.payments()[0]
    assert (payment["event_id"], payment["amount"], payment["currency"], payment["customer"]) == \
        ("evt_pay_1", 4200, "eur", "cus_9")
    job = runtime.engine.records.get("evt_pay_1")
    assert job is not None and job.queue == "webhook-handling" and job.state == "completed"


def test_stripe_signature_from_either_rotated_secret(hooks) -> None:  # type: ignore[no-untyped-def]
    _, api = hooks
    for secret in (STRIPE_OLD, STRIPE_NEW):
        body = stripe_event()
        response = api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body, secret))
        assert response.status == 200


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "stale", "tampered", "missing header", "future"],
)
def test_stripe_bad_signatures_are_400_and_nothing_kept(hooks, receiver, case: str) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    body = stripe_event(event_id="evt_bad")
    headers = stripe_headers(body)
    if case == "wrong secret":
        headers = stripe_headers(body, "whsec_attacker")
    elif case == "stale":
        headers = stripe_headers(body, timestamp=int(time.time()) - 301)
    elif case == "future":
        headers = stripe_headers(body, timestamp=int(time.time()) + 3600)
    elif case == "tampered":
        body = body.replace(b"4200", b"1")
    else:
        headers.pop("Stripe-Signature")
    response = api.post("/webhooks/stripe", token=None, content=body, headers=headers)
    assert response.status == 400
    assert response.json["error"]["code"] == "invalid_signature"
    assert runtime.webhook_log.get("evt_bad") is None
    assert runtime.engine.records.get("evt_bad") is None
    metrics = api.get("/metrics", token=None).text
    assert 'ingestbox_webhooks_total{outcome="rejected",source="stripe",type=""} 1.0' in metrics
    time.sleep(0.1)
    assert receiver.on("/stripe") == []


def test_stripe_within_tolerance_is_accepted(hooks) -> None:  # type: ignore[no-untyped-def]
    _, api = hooks
    body = stripe_event()
    headers = stripe_headers(body, timestamp=int(time.time()) - 290)
    assert api.post("/webhooks/stripe", token=None, content=body, headers=headers).status == 200


def test_duplicate_event_is_acknowledged_but_processed_once(hooks, receiver) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    body = stripe_event(event_id="evt_dup")
    first = api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body))
    second = api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body))
    assert first.json == {"received": True, "duplicate": False}
    assert second.json == {"received": True, "duplicate": True}
    wait_status(runtime, "evt_dup", "processed")
    time.sleep(0.3)
    assert len(receiver.on("/stripe")) == 1
    assert runtime.webhook_log.get("evt_dup").duplicates == 1  # type: ignore[union-attr]
    metrics = api.get("/metrics", token=None).text
    for outcome in ("accepted", "duplicate"):
        series = f'ingestbox_webhooks_total{{outcome="{outcome}",source="stripe",type="payment_intent.succeeded"}}'
        assert f"{series} 1.0" in metrics


def test_bodies_that_are_not_json_objects(hooks) -> None:  # type: ignore[no-untyped-def]
    _, api = hooks
    for body in (b"[1, 2]", b"not json", b'{"id": 5, "type": "x"}'):
        response = api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body))
        assert response.status == 400 and response.json["error"]["code"] == "bad_request"
    # invalid UTF-8, signed byte for byte the way Stripe signs
    body = b'{"id": "evt_\xff"}'
    ts = int(time.time())
    mac = hmac.new(STRIPE_NEW.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    response = api.post("/webhooks/stripe", token=None, content=body, headers={"Stripe-Signature": f"t={ts},v1={mac}"})
    assert response.status == 400 and "not UTF-8" in response.json["error"]["message"]
    gh = b"\xff\xfe"
    response = api.post("/webhooks/github", token=None, content=gh, headers=github_headers(gh, "push", "utf"))
    assert response.status == 400 and response.json["error"]["code"] == "bad_request"


def test_every_octokit_example_is_accepted_logged_and_forwarded_once(hooks, receiver) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    index = json.loads((EXAMPLES / "index.json").read_text())
    sent: dict[str, str] = {}
    for event_type in index:
        for example in event_type["examples"]:
            body = json.dumps(example).encode()
            delivery = str(uuid.uuid4())
            response = api.post(
                "/webhooks/github", token=None, content=body, headers=github_headers(body, event_type["name"], delivery)
            )
            assert response.status == 200, (event_type["name"], response.json)
            assert response.json == {"received": True, "duplicate": False}
            sent[delivery] = event_type["name"]
    assert len(sent) == 329 and len(set(sent.values())) == 58
    forwarded = receiver.wait_for("/github", len(sent), timeout=120)
    time.sleep(0.5)
    forwarded = receiver.on("/github")
    ids = [r.headers["X-Ingestbox-Event-Id"] for r in forwarded]
    assert sorted(ids) == sorted(sent), "each delivery forwarded exactly once"
    for request in forwarded:
        delivery = request.headers["X-Ingestbox-Event-Id"]
        assert request.headers["X-Ingestbox-Event-Type"] == sent[delivery]
        assert request.headers["X-Hub-Signature-256"] == github_signature(request.body, GITHUB_SECRET)
        assert request.headers["X-Ingestbox-Signature"] == github_signature(request.body, "our-own-secret")
    statuses = {e.status for e in runtime.webhook_log.find(source="github", limit=1000)}
    assert statuses == {"processed"}


def test_github_bad_signature_and_missing_headers(hooks) -> None:  # type: ignore[no-untyped-def]
    _, api = hooks
    body = b'{"zen": "Keep it logically awesome."}'
    bad = api.post("/webhooks/github", token=None, content=body,
                   headers=github_headers(body, "ping", "d-1", secret="wrong"))
    assert bad.status == 400 and bad.json["error"]["code"] == "invalid_signature"
    headers = github_headers(body, "ping", "d-2")
    headers.pop("X-GitHub-Delivery")
    missing = api.post("/webhooks/github", token=None, content=body, headers=headers)
    assert missing.status == 400 and "X-GitHub-Delivery" in missing.json["error"]["message"]
    ping = api.post("/webhooks/github", token=None, content=body, headers=github_headers(body, "ping", "d-3"))
    assert ping.status == 200 and ping.json["received"] is True


def test_failing_receiver_retries_dead_letters_alerts_once_and_dlq_retry_delivers(hooks, receiver) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    receiver.fail_next(3)
    body = stripe_event("charge.failed", "evt_fail")
    assert api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body)).status == 200
    logged = wait_status(runtime, "evt_fail", "dead")
    assert logged["attempts"] == 3 and "503" in logged["error"]
    # a fourth failure of the type within the hour raises the alert; the receiver fails it too
    receiver.fail_next(1)
    body2 = stripe_event("charge.failed", "evt_fail_2")
    api.post("/webhooks/stripe", token=None, content=body2, headers=stripe_headers(body2))
    (alert,) = receiver.wait_for("/alerts", 1)
    payload = json.loads(alert.body)
    assert (payload["source"], payload["type"]) == ("stripe", "charge.failed")
    assert payload["failures_last_hour"] == 4
    wait_status(runtime, "evt_fail_2", "processed")
    # more failures in the same hour: no second alert
    receiver.fail_next(2)
    body3 = stripe_event("charge.failed", "evt_fail_3")
    api.post("/webhooks/stripe", token=None, content=body3, headers=stripe_headers(body3))
    wait_status(runtime, "evt_fail_3", "processed")
    time.sleep(0.3)
    assert len(receiver.on("/alerts")) == 1
    assert len(api.get("/v1/alerts").json["items"]) == 1
    # the dead one, retried from the DLQ, is delivered
    dlq = api.get("/v1/dlq").json["items"]
    assert [item["id"] for item in dlq] == ["evt_fail"]
    assert api.post("/v1/dlq/evt_fail/retry").status == 200
    wait_status(runtime, "evt_fail", "processed")
    delivered = [r for r in receiver.on("/stripe") if r.headers["X-Ingestbox-Event-Id"] == "evt_fail"]
    assert len(delivered) == 1


def test_unreachable_application_is_a_failed_attempt_not_a_storage_wait(tmp_path: Path) -> None:
    """Forwarding to an application that is down follows the retry policy to the DLQ (only the object store's
    outages make a job wait without spending attempts)."""
    from tests.support.ports import free_port

    settings = Settings(
        server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2),
        webhooks=WebhookSettings(github=GithubSettings(secrets=[GITHUB_SECRET],
                                                       forward_to=f"http://127.0.0.1:{free_port()}/down")),
        queues=QueuesSettings(**{"webhook-handling": QueueSettings(backoff_base_seconds=0.05)}),
    )
    runtime = build_runtime(settings, probe_hardware=False)
    runtime.start()
    try:
        api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
        body = b'{"action": "created"}'
        assert api.post("/webhooks/github", token=None, content=body,
                        headers=github_headers(body, "star", "refused-1")).status == 200
        logged = wait_status(runtime, "refused-1", "dead")
        assert logged["attempts"] == 3
        assert "waiting for storage" not in logged["error"] and "refused" in logged["error"].lower()
    finally:
        runtime.stop()


def test_log_filters_and_replay(hooks, receiver) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    body = stripe_event("invoice.paid", "evt_inv")
    api.post("/webhooks/stripe", token=None, content=body, headers=stripe_headers(body))
    gh = b'{"action": "opened"}'
    api.post("/webhooks/github", token=None, content=gh, headers=github_headers(gh, "issues", "gh-1"))
    wait_status(runtime, "evt_inv", "processed")
    wait_status(runtime, "gh-1", "processed")
    assert [i["id"] for i in api.get("/v1/webhooks?source=github").json["items"]] == ["gh-1"]
    assert [i["id"] for i in api.get("/v1/webhooks?type=invoice.paid").json["items"]] == ["evt_inv"]
    assert len(api.get("/v1/webhooks?status=processed").json["items"]) == 2
    assert api.get("/v1/webhooks?source=nothing").json["items"] == []
    page = api.get("/v1/webhooks?limit=1").json
    assert len(page["items"]) == 1 and "next" in page
    replay = api.post("/v1/webhooks/evt_inv/replay")
    assert replay.status == 202
    assert replay.json["job"]["id"].startswith("evt_inv:replay:")
    receiver.wait_for("/stripe", 2)
    assert [r.headers["X-Ingestbox-Event-Id"] for r in receiver.on("/stripe")] == ["evt_inv", "evt_inv"]
    wait_status(runtime, "evt_inv", "processed")
    assert api.post("/v1/webhooks/nope/replay").status == 404


def test_oversized_body_is_413(hooks) -> None:  # type: ignore[no-untyped-def]
    runtime, api = hooks
    runtime.settings.webhooks.max_body_bytes = 1000
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    response = api.post("/webhooks/github", token=None, content=body, headers=github_headers(body, "push", "big"))
    assert response.status == 413 and response.json["error"]["code"] == "too_large"


def test_unconfigured_source_is_503(tmp_path: Path) -> None:
    runtime = build_runtime(Settings(server=ServerSettings(data_dir=tmp_path / "d")), probe_hardware=False)
    try:
        api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
        response = api.post("/webhooks/github", token=None, content=b"{}", headers=github_headers(b"{}", "ping", "x"))
        assert response.status == 503 and response.json["error"]["code"] == "not_configured"
    finally:
        runtime.db.close()


def test_alert_email_goes_out_through_email_sending(tmp_path: Path, receiver: Receiver) -> None:
    """A real SMTP server (aiosmtpd) receives the alert mail."""
    from appliance.config import EmailSettings

    with smtp_inbox() as inbox:
        settings = Settings(
            server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2),
            webhooks=WebhookSettings(github=GithubSettings(secrets=[GITHUB_SECRET], forward_to=f"{receiver.url}/gh")),
            alerts=AlertSettings(email_to=["ops@example.com"]),
            email=EmailSettings(smtp_host="127.0.0.1", smtp_port=inbox.port, starttls=False,
                                sender="box@example.com"),
            queues=QueuesSettings(**{"webhook-handling": QueueSettings(backoff_base_seconds=0.05, max_attempts=4)}),
        )
        runtime = build_runtime(settings, probe_hardware=False)
        runtime.start()
        try:
            api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
            receiver.fail_next(4)
            body = b'{"ref": "refs/heads/main"}'
            api.post("/webhooks/github", token=None, content=body, headers=github_headers(body, "push", "mail-1"))
            wait_status(runtime, "mail-1", "dead")
            (mail,) = inbox.wait(1, timeout=20)
            assert mail.rcpt_tos == ["ops@example.com"] and mail.mail_from == "box@example.com"
            message = inbox.parsed(mail)
            assert message["Subject"] == "[ingestbox] github webhook push is failing"
            assert "failed 4 times in the last hour" in message.get_body(("plain",)).get_content()
        finally:
            runtime.stop()
