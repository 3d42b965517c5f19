"""Hardware detection on simulated machines, the per-job fallback chain, and a mid-stream encoder failure."""

from __future__ import annotations

import subprocess
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from appliance.app import create_app
from appliance.config import ServerSettings, Settings
from appliance.doctor import render_doctor
from appliance.processing.transcoding import TranscodePolicy
from appliance.runtime import build_runtime
from hwaccel.probe import HwaccelReport, ProbeEnv, probe_all
from tests.conftest import ApiClient
from tests.media import make_video
from transcode.pipeline import EncoderChoice, EncoderFailed, Output, transcode

NO_NVENC = "Operation not permitted: avcodec_open2(h264_nvenc): No capable devices found"


def machine(devices: list[str], libraries: set[str], encode_errors: dict[str, str] | None = None,
            decode_errors: dict[str, str] | None = None, codecs: set[str] | None = None,
            hwdevices: tuple[str, ...] = ("cuda", "qsv", "drm")) -> ProbeEnv:
    """A simulated machine: its device nodes, loadable driver libraries and how trial encodes and decodes end."""
    encode_errors, decode_errors = encode_errors or {}, decode_errors or {}
    return ProbeEnv(
        devices=lambda pattern: [d for d in devices if fnmatch(d, pattern)],
        loadable=lambda sonames: next((s for s in sonames if s in libraries), None),
        encoders=lambda: codecs if codecs is not None else {"h264_nvenc", "h264_qsv", "libx264"},
        hwdevices=lambda: list(hwdevices),
        encode=lambda codec, pix_fmt: encode_errors.get(codec),
        decode=lambda device_type: decode_errors.get(device_type),
    )


def by_name(report: HwaccelReport) -> dict[str, Any]:
    return {b.name: b for b in report.backends} | {f"dec:{d.name}": d for d in report.decoders}


def test_h200_has_nvdec_but_no_nvenc_and_says_so() -> None:
    env = machine(["/dev/nvidia0", "/dev/nvidiactl"], {"libcuda.so.1"}, encode_errors={"h264_nvenc": NO_NVENC})
    report = probe_all("auto", None, env)
    found = by_name(report)
    assert not found["nvenc"].usable and "No capable devices found" in found["nvenc"].reason
    assert found["dec:nvdec"].usable and found["dec:nvdec"].reason == "test decode succeeded"
    assert report.chosen == "libx264"
    # Hybrid: decode on the GPU, encode with libx264 (when asked); else plain software.
    assert [c.label for c in TranscodePolicy(report, hybrid_decode=True).encoder_chain()] == [
        "cuda+libx264", "libx264"]
    assert [c.label for c in TranscodePolicy(report).encoder_chain()] == ["libx264"]


def test_intel_qsv_box_chooses_qsv_and_falls_back_in_order() -> None:
    env = machine(["/dev/dri/renderD128", "/dev/dri/card0"], {"libvpl.so.2", "libva.so.2"})
    report = probe_all("auto", None, env)
    found = by_name(report)
    assert found["qsv"].usable and found["qsv"].devices == ["/dev/dri/renderD128"]
    assert not found["nvenc"].usable and found["nvenc"].reason.startswith("no device node")
    assert "no h264_vaapi encoder" in found["vaapi"].reason and "--no-binary av" in found["vaapi"].reason
    assert report.chosen == "qsv"
    chain = TranscodePolicy(report).encoder_chain()
    assert [c.label for c in chain] == ["qsv+qsv", "qsv", "libx264"]
    assert chain[1].backend.pix_fmt == "nv12"  # QSV wants nv12 surfaces


def test_device_without_driver_library_is_unusable_with_the_reason() -> None:
    report = probe_all("auto", None, machine(["/dev/nvidia0"], set()))
    assert by_name(report)["nvenc"].reason == "driver library not loadable (libcuda.so.1)"
    assert report.chosen == "libx264"


def test_prefer_order_and_forced_modes() -> None:
    env = machine(["/dev/nvidia0", "/dev/dri/renderD128"], {"libcuda.so.1", "libvpl.so.2"})
    assert probe_all("auto", None, env).chosen == "nvenc"
    assert probe_all("auto", ["qsv", "nvenc"], env).chosen == "qsv"
    assert probe_all("qsv", None, env).chosen == "qsv"
    no_gpu = machine([], set())
    assert probe_all("nvenc", None, no_gpu).chosen == "libx264"  # forced but unusable: software, logged
    off = probe_all("off", None, env)
    assert off.chosen == "libx264" and all("not probed" in b.reason for b in off.backends if b.name != "libx264")


def test_report_shape_on_this_machine_and_in_doctor() -> None:
    report = probe_all("auto").to_dict()
    assert {b["name"] for b in report["backends"]} == {"nvenc", "qsv", "vaapi", "libx264"}
    assert {d["name"] for d in report["decoders"]} == {"nvdec", "qsv", "vaapi"}
    assert all(set(b) >= {"name", "usable", "reason"} for b in report["backends"] + report["decoders"])
    libx264 = next(b for b in report["backends"] if b["name"] == "libx264")
    assert libx264["usable"] and report["chosen"] in {"nvenc", "qsv", "vaapi", "libx264"}
    text = render_doctor(report | {name: {"ok": True, "detail": "-"} for name in
                                   ("libmagic", "clamd", "storage", "database")})
    assert "Hardware decoders:" in text and "nvdec" in text


@pytest.mark.slow
def test_encoder_failing_mid_stream_falls_back_and_the_job_completes(tmp_path: Path) -> None:
    """NVENC chosen and proven, then the device is lost half-way through: libx264 finishes the job."""
    failures: list[str] = []

    def flaky_runner(source: Any, out_dir: Any, targets: Any, choice: EncoderChoice, on_progress: Any = None,
                     on_output: Any = None) -> list[Output]:
        if choice.backend.name != "nvenc":
            return transcode(source, out_dir, targets, choice, on_progress, on_output)

        def progress(fraction: float) -> None:
            if fraction > 0.3:
                failures.append(choice.label)
                raise EncoderFailed("nvenc", "simulated: the device was lost mid-stream")

        software = EncoderChoice(threads=1)  # really encodes up to the failure
        return transcode(source, out_dir, targets, software, progress, on_output)

    nvenc_box = HwaccelReport([], "nvenc", "auto")
    settings = Settings(server=ServerSettings(data_dir=tmp_path / "data", shutdown_grace_seconds=2))
    runtime = build_runtime(settings, hwaccel=nvenc_box, transcode_runner=flaky_runner)
    runtime.start()
    try:
        api = ApiClient(create_app(runtime, manage_runtime=False), runtime.tokens[0])
        source = make_video(tmp_path / "clip.mp4", 4.0, 320, 240, 25)
        response = api.post("/v1/uploads", files={"file": ("clip.mp4", source.read_bytes(), "video/mp4")})
        asset_id = response.json["asset_id"]
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline:
            job = runtime.engine.records.get(f"transcode-{asset_id}")
            if job is not None and job.state in ("completed", "dead"):
                break
            time.sleep(0.1)
        assert job is not None and job.state == "completed" and job.attempts == 1, job
        assert failures == ["nvenc"]
        variants = {v["name"]: v for v in runtime.assets.variants(asset_id)}
        assert variants["720p"]["state"] == "completed" and variants["720p"]["detail"]["encoder"] == "libx264"
        path = runtime.settings.server.data_dir / "objects" / variants["720p"]["key"]
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                                "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)],
                               capture_output=True, text=True, check=True).stdout.split()
        assert probe[0] == "h264,100"  # every frame, from the software encoder
        metrics = api.get("/metrics").text
        assert 'ingestbox_encoder_fallbacks_total{from_encoder="nvenc",to_encoder="libx264"} 1.0' in metrics
    finally:
        runtime.stop()
