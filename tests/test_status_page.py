"""The status page in Debian's headless Chromium (selenium + chromium-driver) against the real server."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media import make_video, png_bytes
from tests.support.server import ServeProcess, write_config

pytestmark = pytest.mark.slow
ARTIFACTS = Path(os.environ.get("INGESTBOX_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
XSS_NAME = "<img src=x onerror=window.pwned=1>.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = write_config(
        tmp_path_factory.mktemp("page"),
        extra="[queues.webhook-handling]\nbackoff_base_seconds = 0.05\nbackoff_factor = 1\n"
        '[webhooks.github]\nsecrets = ["page-secret"]\n',
    )
    process.start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        raise RuntimeError("apt-get install chromium chromium-driver (scripts/test.sh does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2200",
                 "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver: Any, condition: Any, timeout: float = 20.0, message: str = "") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def log_in(driver: Any, server: ServeProcess) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/login")
    driver.delete_all_cookies()
    driver.get(server.url + "/")
    assert driver.current_url.endswith("/login")  # no session: the page is not shown
    driver.find_element(By.ID, "token").send_keys(server.token)
    driver.find_element(By.ID, "login").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue-rows tr")) == 4, message="queue table")


def cell(driver: Any, queue: str, column: str) -> str:
    """Read in one script call: the table is re-rendered on every event, so element handles go stale."""
    selector = f'#queue-rows tr[data-queue="{queue}"] td.{column}'
    return str(driver.execute_script(f"const c = document.querySelector('{selector}'); return c && c.textContent"))


def click(driver: Any, selector: str) -> bool:
    """A real click; False (try again) when a re-render replaced the element between finding and clicking it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        driver.find_element(By.CSS_SELECTOR, selector).click()
        return True
    except StaleElementReferenceException:
        return False


def enqueue(server: ServeProcess, queue: str, **payload: Any) -> str:
    with server.client() as client:
        answer = client.post("/v1/jobs", json={"queue": queue, "kind": "selftest", "payload": payload})
    assert answer.status_code in (200, 201, 202), answer.text
    return str(answer.json()["job"]["id"])


def test_queue_table_follows_jobs_live(server: ServeProcess, browser: Any) -> None:
    log_in(browser, server)
    assert cell(browser, "email-sending", "active") == "0/5"
    for _ in range(3):
        enqueue(server, "email-sending", seconds=4)
    # The page polls every 15 s; this changes within a few seconds only through WS /v1/events.
    wait(browser, lambda d: cell(d, "email-sending", "active") == "3/5", timeout=6, message="live update")
    browser.save_screenshot(str(ARTIFACTS / "status-page-queues.png"))
    wait(browser, lambda d: cell(d, "email-sending", "completed") == "3", timeout=15, message="completions")
    assert "Retry policy:" in browser.find_element("id", "retry-policy").text


def test_dead_job_is_retried_with_a_click(server: ServeProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server)
    job_id = enqueue(server, "webhook-handling", fail_until=time.time() + 3)
    row = f'#dlq-rows tr[data-job="{job_id}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row), message="DLQ row")
    error = browser.execute_script(f"return document.querySelector('{row} td.error').textContent")
    assert "fail" in error.lower()
    time.sleep(3.2)  # past fail_until: the retried attempt succeeds
    browser.save_screenshot(str(ARTIFACTS / "status-page-dlq.png"))
    wait(browser, lambda d: click(d, f"{row} button.retry"), message="retry button")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, row), message="row gone after retry")
    assert server.wait_job(job_id, ("completed",), timeout=20)["state"] == "completed"


def test_720p_variant_plays_inline(server: ServeProcess, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    source = make_video(tmp_path / "lecture.mp4", 3.0, 320, 240, 25)
    with server.client(timeout=60) as client:
        answer = client.post("/v1/uploads", files={"file": ("lecture.mp4", source.read_bytes(), "video/mp4")}).json()
    server.wait_job(f"transcode-{answer['asset_id']}", ("completed",), timeout=120)
    log_in(browser, server)
    video = f'video[data-asset="{answer["asset_id"]}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, video), message="video element")
    browser.execute_script(f"const v = document.querySelector('{video}'); v.muted = true; v.play();")
    wait(browser, lambda d: d.execute_script(f"return document.querySelector('{video}').currentTime") > 0.3,
         timeout=20, message="playback")
    assert browser.execute_script(f"return document.querySelector('{video}').videoWidth") == 320
    card = browser.find_element(By.CSS_SELECTOR, f'article[data-asset="{answer["asset_id"]}"]')
    assert card.find_element(By.CSS_SELECTOR, '[data-variant="720p"]').text == "completed"
    assert card.find_element(By.CSS_SELECTOR, '[data-variant="1080p"]').text == "skipped"
    browser.save_screenshot(str(ARTIFACTS / "status-page-video.png"))


def test_file_names_are_shown_as_text_never_as_html(server: ServeProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with server.client() as client:
        answer = client.post("/v1/uploads", files={"file": (XSS_NAME, png_bytes(), "image/png")}).json()
    server.wait_job(answer["job_id"], ("completed",), timeout=60)
    log_in(browser, server)
    card = f'article[data-asset="{answer["asset_id"]}"] .name'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, card), message="asset card")
    assert browser.find_element(By.CSS_SELECTOR, card).text == XSS_NAME
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, 'img[src="x"]')


def test_session_cookie_needs_the_csrf_token_to_change_anything(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        assert client.get("/").status_code == 303  # no session: to the login form
        assert client.post("/login", data={"token": "wrong"}).status_code == 401
        login = client.post("/login", data={"token": server.token})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert client.get("/v1/queues").status_code == 200  # reading with the cookie is fine
        forged = client.post("/v1/jobs", json={"queue": "email-sending", "kind": "selftest", "payload": {}})
        assert forged.status_code == 401  # changing state without X-CSRF-Token is not
        page = client.get("/").text
        token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        allowed = client.post("/v1/jobs", json={"queue": "email-sending", "kind": "selftest", "payload": {}},
                              headers={"X-CSRF-Token": token})
        assert allowed.status_code in (200, 201, 202), allowed.text


def test_webhook_headers_are_shown_as_text_never_as_html(server: ServeProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    from appliance.webhooks.verify import github_signature

    event, delivery = "<img src=x onerror=window.pwned=2>", "<svg onload=window.pwned=3>"
    body = b'{"action": "<script>window.pwned=4</script>"}'
    answer = httpx.post(f"{server.url}/webhooks/github", content=body, timeout=10, headers={
        "X-Hub-Signature-256": github_signature(body, "page-secret"), "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    log_in(browser, server)
    wait(browser, lambda d: event in d.find_element(By.ID, "webhook-rows").text, message="webhook row")
    assert delivery in browser.find_element(By.ID, "webhook-rows").text
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "#webhook-rows img, #webhook-rows svg")
