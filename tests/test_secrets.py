"""No secret reaches a log, an API answer, `doctor` or `config check`, whatever fails along the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stripe

from appliance.webhooks.verify import github_signature
from tests.media import png_bytes
from tests.support.receiver import Receiver
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3
from tests.support.server import write_config
from tests.support.smtp import smtp_inbox

pytestmark = pytest.mark.slow
STRIPE = "whsec_SECRET_7d2e"
GITHUB = "gh-SECRET-91ab"
FORWARD = "fw-SECRET-c3d4"
SMTP = "smtp-SECRET-e5f6"
CALLBACK = "cb-SECRET-0a1b"
WRONG_TOKEN = "tok-SECRET-wrong-guess"


def test_secrets_stay_out_of_logs_answers_and_reports(seaweed: SeaweedS3, receiver: Receiver, tmp_path: Path) -> None:
    secrets = [STRIPE, GITHUB, FORWARD, SMTP, CALLBACK, SECRET_KEY, WRONG_TOKEN]
    bucket = seaweed.make_bucket()
    receiver.fail_next(100)  # forwarding and callbacks fail: their errors are logged
    with smtp_inbox() as inbox:
        server = write_config(tmp_path, extra=(
            f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "{seaweed.endpoint_url}"\nbucket = "{bucket}"\n'
            f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\npart_size_mb = 5\n'
            f'[webhooks.stripe]\nsecrets = ["{STRIPE}"]\nforward_to = "{receiver.url}/stripe"\n'
            f'[webhooks.github]\nsecrets = ["{GITHUB}"]\nforward_to = "{receiver.url}/github"\n'
            f'forward_secret = "{FORWARD}"\n'
            f'[uploads]\ncallback_secret = "{CALLBACK}"\n'
            f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {inbox.port}\nstarttls = false\n'
            f'username = "box"\npassword = "{SMTP}"\n'
            "[queues.webhook-handling]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n"
            "[queues.email-sending]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n"
        ))
        server.start()
        secrets.append(server.token)  # the generated API token
        try:
            with server.client() as client:
                # Wrong credentials of every kind.
                assert client.get("/v1/queues", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 401
                assert client.post("/login", data={"token": WRONG_TOKEN}).status_code in (303, 401, 403)
                event = json.dumps({"id": "evt_s1", "object": "event", "type": "charge.succeeded",
                                    "data": {"object": {"id": "ch_1"}}}).encode()
                now = int(time.time())
                wrong = stripe.WebhookSignature.generate_signature_header(event.decode(), "whsec_wrong", now)
                assert client.post("/webhooks/stripe", content=event,
                                   headers={"Stripe-Signature": wrong}).status_code == 400
                good = stripe.WebhookSignature.generate_signature_header(event.decode(), STRIPE, now)
                assert client.post("/webhooks/stripe", content=event,
                                   headers={"Stripe-Signature": good}).status_code == 200
                body = b'{"action": "created"}'
                for signature in (github_signature(body, "not-it"), github_signature(body, GITHUB)):
                    client.post("/webhooks/github", content=body, headers={
                        "X-Hub-Signature-256": signature, "X-GitHub-Event": "star", "X-GitHub-Delivery": "d-1",
                        "Content-Type": "application/json"})
                # An upload whose callback fails and whose mail cannot be sent (the server has no AUTH).
                answer = client.post("/v1/uploads", files={"file": ("a.png", png_bytes(), "image/png")},
                                     data={"callback_url": f"{receiver.url}/cb", "notify_email": "a@example.com"})
                assert answer.status_code == 202
                server.wait_job(answer.json()["job_id"], ("completed",))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and "email" not in server.log().lower():
                    time.sleep(0.2)
                system = client.get("/v1/system").text
                metrics = client.get("/metrics").text
                dlq = client.get("/v1/dlq").text
            doctor = server.cli("doctor", "--json", timeout=120)
            check = server.cli("config", "check")
            version = subprocess.run([sys.executable, "-m", "appliance", "version"], capture_output=True, text=True,
                                     env={**os.environ}, timeout=60)
        finally:
            server.terminate()
    log = server.log()
    places = {"serve log": log, "/v1/system": system, "/metrics": metrics, "/v1/dlq": dlq,
              "doctor": doctor.stdout + doctor.stderr, "config check": check.stdout + check.stderr,
              "version": version.stdout}
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} found in {place}"
    assert "SECRET" not in log  # not even a fragment of one
