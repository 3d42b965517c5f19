"""The command line: doctor and version (serve, status and dlq run against a real server in test_serve)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_doctor_reports_every_backend_with_a_reason(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "d"}"\n[uploads.clamd]\naddress = "unix://{tmp_path}/none.ctl"\n'
    )
    result = run("doctor", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [b["name"] for b in report["backends"]] == ["nvenc", "qsv", "vaapi", "libx264"]
    assert all(b["reason"] for b in report["backends"])
    libx264 = report["backends"][3]
    assert libx264["usable"] is True and libx264["reason"] == "test encode succeeded"
    assert report["chosen"] in ("nvenc", "qsv", "vaapi", "libx264")
    assert report["libmagic"]["ok"] is True
    assert report["clamd"]["ok"] is False and "not reachable" in report["clamd"]["detail"]
    assert report["storage"]["ok"] is True
    assert report["database"]["ok"] is True
    text = run("doctor", "--config", str(config))
    assert "libx264  usable" in text.stdout and "chosen:" in text.stdout


def test_version_names_python_ffmpeg_and_pyav() -> None:
    result = run("version")
    assert result.returncode == 0
    first, second = result.stdout.splitlines()
    assert first.startswith("ingestbox ")
    assert f"PyAV {av.__version__}" in second and "FFmpeg " in second and "Python 3." in second
