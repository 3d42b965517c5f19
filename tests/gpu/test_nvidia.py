"""On an NVIDIA machine: NVENC reported truthfully, NVDEC decodes, the hybrid path's outputs pass ffprobe.

Run on a GPU machine with: pytest -m gpu tests/gpu -s  (prints decode speed GPU vs CPU).
"""

from __future__ import annotations

import glob
import json
import subprocess
import time
from pathlib import Path

import av
import pytest

from hwaccel.probe import probe_all, trial_decode, trial_encode
from tests.media import make_video
from transcode.describe import describe_video
from transcode.ladder import plan
from transcode.pipeline import EncoderChoice, transcode

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not glob.glob("/dev/nvidia[0-9]*"), reason="no NVIDIA device node on this machine"),
]


def test_nvenc_is_reported_as_it_really_is() -> None:
    report = probe_all("auto")
    nvenc = next(b for b in report.backends if b.name == "nvenc")
    error = trial_encode("h264_nvenc", "yuv420p")
    print(f"\nnvenc: usable={nvenc.usable}, reason={nvenc.reason}")
    assert nvenc.usable == (error is None)
    if not nvenc.usable:
        assert report.chosen in ("qsv", "vaapi", "libx264")
        assert nvenc.reason.startswith(("test encode failed", "driver library"))


def test_nvdec_decodes() -> None:
    assert trial_decode("cuda") is None
    nvdec = next(d for d in probe_all("auto").decoders if d.name == "nvdec")
    assert nvdec.usable, nvdec.reason


def decode_seconds(path: Path, hw: str | None) -> float:
    from av.codec.hwaccel import HWAccel

    start = time.perf_counter()
    options = {"hwaccel": HWAccel(device_type=hw, allow_software_fallback=False)} if hw else {}
    with av.open(str(path), **options) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = sum(1 for _ in container.decode(stream))
    assert frames > 0
    return time.perf_counter() - start


def test_hybrid_path_outputs_pass_ffprobe_and_decode_speed_is_compared(tmp_path: Path) -> None:
    source = make_video(tmp_path / "src.mp4", 10.0, 1920, 1080, 30)
    cpu = decode_seconds(source, None)
    gpu = decode_seconds(source, "cuda")
    print(f"\ndecode 10 s 1080p30: CPU {cpu:.2f} s, NVDEC {gpu:.2f} s (ratio {gpu / cpu:.2f})")
    meta = describe_video(str(source))
    targets = plan(meta["width"], meta["height"], meta["rotation"], meta["duration"]).targets
    out = tmp_path / "out"
    out.mkdir()
    start = time.perf_counter()
    outputs = transcode(source, out, targets, EncoderChoice(hw_decode="cuda"))
    print(f"hybrid ladder (NVDEC + libx264): {time.perf_counter() - start:.2f} s")
    for output in outputs:
        if output.mime != "video/mp4":
            continue
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", output.path],
            capture_output=True, text=True, check=True).stdout)
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
        assert (video["width"], video["height"]) == (output.width, output.height)
