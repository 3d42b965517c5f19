"""Bad input against the real server: hostile names, polyglots, oversized headers, huge or odd webhooks, and fuzzing.

Each gets a clear 4xx (or a job that ends dead with a reason), nothing escapes the storage root,
and the server keeps serving.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.webhooks.verify import github_signature
from tests.media import jpeg_bytes, pdf_bytes, png_bytes
from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow
GITHUB_SECRET = "gh-fuzz-secret"
STRIPE_SECRET = "whsec_fuzz_secret"
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("bad-input")
    process = write_config(
        directory,
        extra=f'[webhooks.github]\nsecrets = ["{GITHUB_SECRET}"]\n[webhooks.stripe]\nsecrets = ["{STRIPE_SECRET}"]\n'
        "[queues.file-processing]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n",
    )
    process.start()
    yield process
    process.kill()


def alive(server: ServeProcess) -> None:
    assert server.process is not None and server.process.poll() is None, server.log()[-3000:]
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def raw_upload(server: ServeProcess, disposition: bytes, body: bytes,
               content_type: bytes = b"image/png") -> httpx.Response:
    """A form built by hand, so names can carry bytes no client library would send."""
    boundary = uuid.uuid4().hex
    form = (f"--{boundary}\r\n".encode() + b"Content-Disposition: form-data; " + disposition + b"\r\n"
            + b"Content-Type: " + content_type + b"\r\n\r\n" + body + f"\r\n--{boundary}--\r\n".encode())
    with server.client(timeout=30) as client:
        return client.post("/v1/uploads", content=form,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def stored_files(server: ServeProcess) -> set[Path]:
    """Objects in local storage (not the temporary files of writes under way)."""
    objects = server.data_dir / "objects"
    return {p for p in objects.rglob("*") if p.is_file() and objects / ".incoming" not in p.parents}


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        (b"../../../../../tmp/ingestbox-escape.png", "ingestbox-escape.png"),
        (b"..\\..\\windows\\evil.png", "evil.png"),
        (b"/etc/passwd.png", "passwd.png"),
        (b"bell\x07and\x1bescape\x7f.png", "bellandescape.png"),
        (b"tab\there.png", "tabhere.png"),
        ("f\u00fcr \u00e9t\u00e9 \U0001f389.png".encode(), "f\u00fcr \u00e9t\u00e9 \U0001f389.png"),
        (b"bad-\xff\xfe-utf8.png", "bad-\ufffd\ufffd-utf8.png"),
        ("\u202eevil.png".encode(), "evil.png"),  # a right-to-left override reorders what is shown
        ("zero\u200bwidth\u2028sep.png".encode(), "zerowidthsep.png"),
        (("n" * 300 + ".png").encode(), "n" * 251 + ".png"),
    ],
)
def test_hostile_file_names_are_kept_as_text_never_as_paths(server: ServeProcess, raw_name: bytes, shown: str) -> None:
    before = stored_files(server)
    answer = raw_upload(server, b'name="file"; filename="' + raw_name + b'"', png_bytes())
    assert answer.status_code == 202, answer.text
    asset_id = answer.json()["asset_id"]
    server.wait_job(answer.json()["job_id"], ("completed",))  # its thumbnails are stored too
    with server.client() as client:
        asset = client.get(f"/v1/assets/{asset_id}").json()
    assert asset["filename"] == shown
    new = stored_files(server) - before
    # Every object is under the server's own key for this asset; the name was never part of a path.
    asset_dir = server.data_dir / "objects" / "assets" / asset_id
    assert new and all(asset_dir in p.parents for p in new)
    assert not Path("/tmp/ingestbox-escape.png").exists()
    alive(server)


def test_a_file_name_of_only_control_characters_or_slashes_gets_a_neutral_name(server: ServeProcess) -> None:
    for raw in (b"\x01\x02", b"../..", b"/"):
        answer = raw_upload(server, b'name="file"; filename="' + raw + b'"', png_bytes())
        assert answer.status_code == 202, answer.text
        with server.client() as client:
            assert client.get(f"/v1/assets/{answer.json()['asset_id']}").json()["filename"] == "upload"


def test_polyglot_is_judged_by_its_first_bytes_and_served_as_that_type(server: ServeProcess) -> None:
    # A JPEG with a PDF and a script after its end: it is a JPEG, and it is only ever served as one.
    body = jpeg_bytes(320, 240) + pdf_bytes(1) + b"<html><script>alert(1)</script></html>"
    with server.client(timeout=30) as client:
        answer = client.post("/v1/uploads", files={"file": ("poly.jpg", body, "application/pdf")})
        assert answer.status_code == 202, answer.text
        job = server.wait_job(answer.json()["job_id"], ("completed", "dead"))
        asset = client.get(f"/v1/assets/{answer.json()['asset_id']}").json()
    assert asset["mime"] == "image/jpeg"
    fetched = httpx.get(asset["url"], timeout=10)
    assert fetched.headers["content-type"] == "image/jpeg"
    assert fetched.headers.get("x-content-type-options") == "nosniff"
    assert "sandbox" in fetched.headers["content-security-policy"]  # never script on this origin
    assert job["state"] == "completed"
    # The same bytes named .pdf: the name disagrees with what the bytes are.
    with server.client() as client:
        named_pdf = client.post("/v1/uploads", files={"file": ("poly.pdf", body, "application/pdf")})
    assert named_pdf.status_code == 415
    alive(server)


def test_oversized_header_and_bad_request_lines_are_refused(server: ServeProcess) -> None:
    with server.client() as client:
        answer = client.get("/v1/queues", headers={"X-Huge": "a" * 200_000})
        assert 400 <= answer.status_code < 500
    bad_heads = (b"GET /\x00 HTTP/1.1\r\n\r\n", b"NOT-HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    for head in bad_heads:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head)
            reply = sock.recv(200)
        assert reply.startswith(b"HTTP/1.1 4"), reply
    alive(server)


def test_malformed_multipart_bodies_are_400(server: ServeProcess) -> None:
    before = stored_files(server)
    png = png_bytes()
    cases = [
        ("multipart/form-data", b"--x\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=abc", b"--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"),
        ("multipart/form-data; boundary=abc",  # never closed
         b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + png),
        ("multipart/form-data; boundary=abc", b"--abc\r\nno-colon-header\r\n\r\n" + png + b"\r\n--abc--\r\n"),
        ("multipart/form-data; boundary=" + "b" * 300, b"--" + b"b" * 300 + b"\r\n"),
        ("text/plain", png),
    ]
    with server.client() as client:
        for content_type, body in cases:
            answer = client.post("/v1/uploads", content=body, headers={"Content-Type": content_type})
            assert answer.status_code == 400, (content_type, body[:60], answer.text)
            assert answer.json()["error"]["code"] == "bad_request"
    time.sleep(0.2)
    assert stored_files(server) == before
    alive(server)


def test_webhook_bodies_that_are_not_utf8_or_are_10_mb(server: ServeProcess) -> None:
    with server.client(timeout=60) as client:
        bad = b'{"zen": "\xff\xfe"}'
        answer = client.post("/webhooks/github", content=bad, headers={
            "X-Hub-Signature-256": github_signature(bad, GITHUB_SECRET), "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "bad-utf8", "Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"

        big = json.dumps({"action": "edited", "blob": "x" * (10 * 1024 * 1024)}).encode()
        answer = client.post("/webhooks/github", content=big, headers={
            "X-Hub-Signature-256": github_signature(big, GITHUB_SECRET), "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": "ten-mb", "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["duplicate"] is False
        logged = {item["id"]: item for item in client.get("/v1/webhooks", params={"type": "issues"}).json()["items"]}
        assert logged["ten-mb"]["size"] == len(big)
    alive(server)


def test_stale_and_replayed_stripe_signatures(server: ServeProcess) -> None:
    event = json.dumps({"id": "evt_replayed", "object": "event", "type": "charge.succeeded",
                        "data": {"object": {"id": "ch_1"}}}).encode()
    old = int(time.time()) - 3600
    with server.client() as client:
        stale = client.post("/webhooks/stripe", content=event, headers={
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(event.decode(), STRIPE_SECRET, old)})
        assert stale.status_code == 400 and stale.json()["error"]["code"] == "invalid_signature"
        fresh = stripe.WebhookSignature.generate_signature_header(event.decode(), STRIPE_SECRET, int(time.time()))
        first = client.post("/webhooks/stripe", content=event, headers={"Stripe-Signature": fresh})
        replay = client.post("/webhooks/stripe", content=event, headers={"Stripe-Signature": fresh})
        assert first.json() == {"received": True, "duplicate": False}
        assert replay.status_code == 200 and replay.json()["duplicate"] is True  # acknowledged, not processed twice
    alive(server)


@FUZZ
@given(
    boundary=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=0, max_size=80),
    preamble=st.binary(max_size=300),
    disposition=st.binary(max_size=120),
    body=st.one_of(st.binary(max_size=4000), st.sampled_from([png_bytes(), jpeg_bytes(64, 48), b""])),
    close=st.booleans(),
)
def test_fuzz_the_upload_entry_point(server: ServeProcess, boundary: str, preamble: bytes, disposition: bytes,
                                     body: bytes, close: bool) -> None:
    form = (preamble + f"--{boundary}\r\n".encode() + b"Content-Disposition: form-data; " + disposition
            + b"\r\n\r\n" + body + (f"\r\n--{boundary}--\r\n".encode() if close else b""))
    with server.client() as client:
        answer = client.post("/v1/uploads", content=form,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code in (202, 400, 413, 415), answer.text
    assert "error" in answer.json() or answer.status_code == 202


@FUZZ
@given(
    payload=st.one_of(
        st.binary(max_size=2000),
        st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                     lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                                        max_size=5),
                     max_leaves=20).map(lambda value: json.dumps(value).encode()),
    ),
    event=st.text(max_size=40),
    delivery=st.text(max_size=60),
    signed=st.booleans(),
)
def test_fuzz_the_github_webhook_entry_point(server: ServeProcess, payload: bytes, event: str, delivery: str,
                                             signed: bool) -> None:
    signature = github_signature(payload, GITHUB_SECRET) if signed else "sha256=" + "0" * 64
    headers = {"X-Hub-Signature-256": signature.encode(), "X-GitHub-Event": event.encode(),
               "X-GitHub-Delivery": delivery.encode(), "Content-Type": b"application/json"}
    try:
        with server.client() as client:
            answer = client.post("/webhooks/github", content=payload, headers=headers)
    except httpx.LocalProtocolError:
        return  # a header value httpx itself will not send (a newline): nothing reached the server
    assert answer.status_code in (200, 400, 413), answer.text
    if answer.status_code == 200:
        assert signed and answer.json()["received"] is True
