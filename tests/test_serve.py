"""End to end against the real `ingestbox serve` subprocess: status, kill -9 recovery, WebSocket, DLQ CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow


def test_queues_and_status_table(serve: ServeProcess) -> None:
    with serve.client() as client:
        assert client.get("/v1/queues", headers={"Authorization": ""}).status_code == 401
        items = client.get("/v1/queues").json()["items"]
    assert (items[0]["name"], items[0]["concurrency"]) == ("file-processing", 3)
    assert [i["concurrency"] for i in items][2:] == [10, 5]
    token_file = serve.data_dir / "api-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert f"API token: {token_file}" in serve.log()
    result = serve.cli("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Queue               Active    Waiting    Completed (24h)    Failed (24h)    DLQ"
    assert lines[1].startswith("file-processing     0/3       0          0")
    assert lines[3].startswith("webhook-handling    0/10")
    assert lines[4].startswith("email-sending       0/5")


def test_status_says_when_the_server_is_down(tmp_path: Path) -> None:
    server = write_config(tmp_path)
    server.data_dir.mkdir(parents=True)
    (server.data_dir / "api-token").write_text("t\n")
    result = server.cli("status")
    assert result.returncode == 1
    assert "is not answering" in result.stderr and "ingestbox serve" in result.stderr


def test_kill_9_with_jobs_active_and_waiting_then_restart_completes_all(serve: ServeProcess) -> None:
    ids = [f"k9-{n}" for n in range(12)]
    with serve.client() as client:
        for job_id in ids:
            answer = client.post("/v1/jobs", json={"queue": "file-processing", "id": job_id,
                                                   "payload": {"seconds": 2}})
            assert answer.status_code == 201
        # three run at once (concurrency 3): wait until they are mid-run
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = [client.get(f"/v1/jobs/{i}").json()["state"] for i in ids]
            if states.count("active") == 3:
                break
            time.sleep(0.05)
        assert states.count("active") == 3 and states.count("waiting") == 9, states
    serve.kill()
    serve.start()
    for job_id in ids:
        job = serve.wait_job(job_id, ("completed",), timeout=60)
        assert job["attempts"] == 1  # the interrupted attempt was not held against it
    assert "interrupted by a restart" in serve.log()


def test_websocket_sees_waiting_active_progress_completed(serve: ServeProcess) -> None:
    url = serve.url.replace("http", "ws") + "/v1/events?job_id=ws-1"
    headers = {"Authorization": f"Bearer {serve.token}"}
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        time.sleep(0.2)
        with serve.client() as client:
            client.post("/v1/jobs", json={"queue": "email-sending", "id": "ws-1", "payload": {"seconds": 1}})
            client.post("/v1/jobs", json={"queue": "email-sending", "id": "ws-other"})
        seen = []
        while True:
            event = json.loads(ws.recv(timeout=15))
            assert event["type"] == "job" and event["job"]["id"] == "ws-1"
            seen.append((event["job"]["state"], event["job"]["progress"]))
            if event["job"]["state"] == "completed":
                break
    assert seen[0] == ("waiting", 0)
    assert ("active", 0) in seen
    progress = [p for s, p in seen if s == "active" and p > 0]
    assert progress == sorted(progress) and len(progress) >= 3 and progress[-1] == 100
    assert seen[-1] == ("completed", 100)


def test_websocket_needs_a_token(serve: ServeProcess) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as caught:
        connect(serve.url.replace("http", "ws") + "/v1/events", open_timeout=10)
    assert caught.value.response.status_code == 401


def test_dlq_list_retry_purge_from_the_cli(tmp_path: Path) -> None:
    server = write_config(tmp_path, extra='[queues.email-sending]\nmax_attempts = 2\nbackoff_base_seconds = 0.2\n')
    server.start()
    try:
        with server.client() as client:
            down_until = time.time() + 3  # the "SMTP server" is down for 3 s
            client.post("/v1/jobs", json={"queue": "email-sending", "id": "mail-dead-1",
                                          "payload": {"fail_until": down_until}})
            client.post("/v1/jobs", json={"queue": "email-sending", "id": "mail-dead-2",
                                          "payload": {"fail_times": 9}})
        server.wait_job("mail-dead-1", ("dead",))
        server.wait_job("mail-dead-2", ("dead",))
        listing = server.cli("dlq", "list")
        assert listing.returncode == 0, listing.stderr
        assert "mail-dead-1" in listing.stdout and "mail-dead-2" in listing.stdout
        assert "SelftestFailure: selftest asked to fail attempt 2" in listing.stdout
        time.sleep(max(0.0, down_until - time.time()))
        retried = server.cli("dlq", "retry", "mail-dead-1")
        assert retried.returncode == 0 and "mail-dead-1 is waiting again" in retried.stdout
        job = server.wait_job("mail-dead-1", ("completed",))
        assert job["result"]["attempt"] == 1  # a fresh set of attempts; the first passes now
        assert server.cli("dlq", "retry", "no-such-job").returncode == 1
        kept = server.cli("dlq", "purge", "--older-than", "7d")
        assert kept.returncode == 0 and "purged 0" in kept.stdout
        purged = server.cli("dlq", "purge")
        assert "purged 1" in purged.stdout
        assert "empty" in server.cli("dlq", "list").stdout
        with server.client() as client:
            rows = {r["name"]: r for r in client.get("/v1/queues").json()["items"]}
        assert rows["email-sending"]["dead"] == 0
        assert rows["email-sending"]["failed_24h"] == 4
        assert rows["email-sending"]["completed_24h"] == 1
    finally:
        server.kill()


def test_sigterm_lets_running_jobs_finish(serve: ServeProcess) -> None:
    with serve.client() as client:
        client.post("/v1/jobs", json={"queue": "webhook-handling", "id": "term-1", "payload": {"seconds": 1.5}})
    serve.wait_job("term-1", ("active",))
    assert serve.terminate() == 0
    serve.start()
    job = serve.wait_job("term-1", ("completed",))
    assert job["attempts"] == 1
    assert "interrupted by a restart" not in serve.log()


def test_duplicate_job_id_over_the_api(serve: ServeProcess) -> None:
    with serve.client() as client:
        first = client.post("/v1/jobs", json={"queue": "webhook-handling", "id": "evt_1"})
        second = client.post("/v1/jobs", json={"queue": "webhook-handling", "id": "evt_1"})
    assert first.status_code == 201 and first.json()["duplicate"] is False
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert second.json()["job"]["id"] == "evt_1"


def test_kill_9_after_100_acknowledged_webhooks_all_are_forwarded_after_restart(tmp_path: Path) -> None:
    from appliance.webhooks.verify import github_signature
    from tests.support.receiver import start_receiver

    receiver = start_receiver()
    receiver.delay = 0.2  # a slow downstream: most events are still queued when the process dies
    server = write_config(
        tmp_path, extra=f'[webhooks.github]\nsecrets = ["s3cret"]\nforward_to = "{receiver.url}/hook"\n'
    )
    server.start()
    try:
        body = b'{"action": "created"}'
        headers = {"X-Hub-Signature-256": github_signature(body, "s3cret"), "X-GitHub-Event": "star",
                   "Content-Type": "application/json"}
        acked = []
        with server.client() as client:
            for n in range(100):
                delivery = {**headers, "X-GitHub-Delivery": f"d-{n}"}
                answer = client.post("/webhooks/github", content=body, headers=delivery)
                assert answer.status_code == 200 and answer.json() == {"received": True, "duplicate": False}
                acked.append(f"d-{n}")
        server.kill()
        before = {r.headers["X-Ingestbox-Event-Id"] for r in receiver.on("/hook")}
        assert len(before) < 100, "the test needs events still pending at the kill"
        server.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = {r.headers["X-Ingestbox-Event-Id"] for r in receiver.on("/hook")}
            if got >= set(acked):
                break
            time.sleep(0.1)
        assert got == set(acked)
    finally:
        server.kill()
        receiver.close()
