"""The built artefacts: the one-file binary under `env -i`, and the .deb installed, checked, removed and purged.

packaging/build.sh makes them; the README's test command runs it before pytest.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance import __version__
from tests.media import make_video, png_bytes
from tests.support.ports import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "dist" / "ingestbox"
DEB = REPO / "dist" / f"ingestbox_{__version__}_amd64.deb"


def built() -> None:
    if not BINARY.is_file() or not DEB.is_file():
        raise AssertionError("run packaging/build.sh first (./scripts/test.sh does)")


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]


def test_binary_runs_without_python(tmp_path: Path) -> None:
    built()
    answer = run("env", "-i", str(BINARY), "version", cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert __version__ in answer.stdout and "FFmpeg" in answer.stdout and "PyAV" in answer.stdout


@pytest.fixture
def frozen_server(tmp_path: Path) -> Iterator[str]:
    """`env -i dist/ingestbox serve` from an empty directory: embedded defaults plus a free port."""
    built()
    port = free_port()
    (tmp_path / "ingestbox.toml").write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n[hwaccel]\nmode = "off"\n')
    log = (tmp_path / "serve.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(["env", "-i", str(BINARY), "serve", "--config", "ingestbox.toml"], cwd=tmp_path,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while time.monotonic() - started < 120:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"time to first 200: {time.monotonic() - started:.2f} s")
        yield url
    finally:
        process.terminate()
        process.wait(60)


def test_frozen_server_takes_an_image_and_a_video(frozen_server: str, tmp_path: Path) -> None:
    token = next((tmp_path / "ingestbox-data").glob("api-token")).read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    video = make_video(tmp_path / "clip.mp4", 2.0, 320, 240, 25)
    uploads = [("photo.png", png_bytes(640, 480), "image/png"), ("clip.mp4", video.read_bytes(), "video/mp4")]
    answers = []
    for name, body, mime in uploads:
        response = httpx.post(f"{frozen_server}/v1/uploads", files={"file": (name, body, mime)}, headers=headers,
                              timeout=60)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    deadline = time.monotonic() + 180
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        image = httpx.get(f"{frozen_server}/v1/assets/{answers[0]['asset_id']}", headers=headers).json()
        clip = httpx.get(f"{frozen_server}/v1/assets/{answers[1]['asset_id']}", headers=headers).json()
        states = {f"image {k}": v["state"] for k, v in image["variants"].items()}
        states |= {f"video {k}": v["state"] for k, v in clip["variants"].items()}
        if states.get("image thumbnail") == "completed" and states.get("video 720p") == "completed":
            break
        time.sleep(0.5)
    assert states.get("image thumbnail") == "completed", states
    # The transcode ran in a child process started by the frozen program itself.
    assert states.get("video 720p") == "completed" and states.get("video preview") == "completed", states


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    return run("dpkg", *args)


@pytest.fixture
def installed() -> Iterator[None]:
    built()
    if os.geteuid() != 0:
        raise AssertionError("installing the .deb needs root (the README's test command runs as root)")
    answer = dpkg("-i", str(DEB))
    assert answer.returncode == 0, answer.stdout + answer.stderr
    try:
        yield
    finally:
        dpkg("--purge", "ingestbox")


def test_deb_metadata_and_contents() -> None:
    built()
    info = dpkg("-I", str(DEB)).stdout
    for field in ("Package: ingestbox", f"Version: {__version__}", "Architecture: amd64", "Installed-Size:",
                  "Recommends: clamav-daemon"):
        assert field in info, info
    assert re.search(r"\bmd5sums\b", info) and re.search(r"\bconffiles\b", info)
    contents = dpkg("-c", str(DEB)).stdout
    for path in ("./usr/lib/ingestbox/ingestbox", "./usr/bin/ingestbox -> ../lib/ingestbox/ingestbox",
                 "./etc/ingestbox/ingestbox.toml", "./lib/systemd/system/ingestbox.service"):
        assert path in contents, path


def test_deb_installs_a_hardened_service_and_purges_cleanly(installed: None) -> None:
    user = pwd.getpwnam("ingestbox")
    groups = {g.gr_name for g in grp.getgrall() if "ingestbox" in g.gr_mem}
    assert {"render", "video"} <= groups
    assert Path("/var/lib/ingestbox").stat().st_uid == user.pw_uid
    assert Path("/etc/ingestbox/credentials/api-token").stat().st_mode & 0o077 == 0
    assert run("/usr/bin/ingestbox", "version").returncode == 0
    assert run("/usr/bin/ingestbox", "config", "check", "--config", "/etc/ingestbox/ingestbox.toml").returncode == 0
    if shutil.which("systemd-analyze"):
        verify = run("systemd-analyze", "verify", "/lib/systemd/system/ingestbox.service")
        assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr
        security = run("systemd-analyze", "security", "--offline=true", "/lib/systemd/system/ingestbox.service")
        match = re.search(r"Overall exposure level for ingestbox.service: ([0-9.]+) (\w+)", security.stdout)
        assert match, security.stdout + security.stderr
        print(f"systemd-analyze security: {match.group(1)} {match.group(2)}")
        assert float(match.group(1)) < 2.0 and match.group(2) == "OK"
    # remove keeps config and data; purge takes them and the user away.
    assert dpkg("--remove", "ingestbox").returncode == 0
    assert Path("/etc/ingestbox/ingestbox.toml").exists() and Path("/var/lib/ingestbox").exists()
    assert not Path("/usr/bin/ingestbox").exists()
    assert dpkg("--purge", "ingestbox").returncode == 0
    assert not Path("/etc/ingestbox").exists() and not Path("/var/lib/ingestbox").exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("ingestbox")
