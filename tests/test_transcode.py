"""Transcoding: the ladder from one decode, checked with Debian's ffprobe; crashes and encoder fallback."""

from __future__ import annotations

import itertools
import json
import os
import signal
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.media import make_video
from transcode.child import TranscodeCrashed, run_in_child
from transcode.describe import MediaError, describe_video
from transcode.ladder import plan
from transcode.pipeline import EncoderChoice, Output, transcode

pytestmark = pytest.mark.slow


def ffprobe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def stream(probe: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in probe["streams"] if s["codec_type"] == kind), None)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level atoms in file order (faststart puts moov before mdat)."""
    names, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        names.append(name.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return names


def ladder(source: Path, out: Path) -> dict[str, Output]:
    meta = describe_video(str(source))
    rungs = plan(meta["width"], meta["height"], meta["rotation"], meta["duration"])
    out.mkdir(exist_ok=True)
    outputs = transcode(source, out, rungs.targets, EncoderChoice(threads=2))
    return {o.name: o for o in outputs} | {name: None for name in rungs.skipped}  # type: ignore[dict-item]


def check_mp4(path: Path, width: int, height: int, audio: bool) -> dict[str, Any]:
    probe = ffprobe(path)
    video = stream(probe, "video")
    assert video is not None
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert (video["width"], video["height"]) == (width, height)
    sound = stream(probe, "audio")
    assert (sound is not None) == audio
    if sound is not None:
        assert (sound["codec_name"], sound["channels"]) == ("aac", 2)
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    # Debian's ffmpeg decodes it without a single complaint.
    check = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True,
                           text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr
    return probe


def test_1080p_source_gets_every_rung(tmp_path: Path) -> None:
    source = make_video(tmp_path / "landscape.mp4", 2.0, 1920, 1080, 30)
    outputs = ladder(source, tmp_path / "out")
    assert set(outputs) == {"1080p", "720p", "preview", "thumbnail"}
    check_mp4(Path(outputs["1080p"].path), 1920, 1080, audio=True)
    probe = check_mp4(Path(outputs["720p"].path), 1280, 720, audio=True)
    assert abs(float(probe["format"]["duration"]) - 2.0) < 0.1
    check_mp4(Path(outputs["preview"].path), 1280, 720, audio=True)
    with Image.open(outputs["thumbnail"].path) as still:
        assert (still.format, still.size) == ("JPEG", (1280, 720))


def test_portrait_phone_video_comes_out_upright(tmp_path: Path) -> None:
    # Stored landscape with a display matrix saying "turn 90 degrees clockwise", as phones write it.
    source = make_video(tmp_path / "portrait.mp4", 1.0, 640, 360, 25, rotation=-90)
    outputs = ladder(source, tmp_path / "out")
    probe = check_mp4(Path(outputs["720p"].path), 360, 640, audio=True)
    assert not stream(probe, "video").get("side_data_list")  # type: ignore[union-attr]
    with Image.open(outputs["thumbnail"].path) as still:
        assert still.size == (360, 640)
        # The red marker drawn top-left in the stored frame is top-right once turned clockwise.
        red, green, _ = still.convert("RGB").getpixel((still.width - 10, 10))  # type: ignore[misc]
        assert red > 200 and green < 80
        assert still.convert("RGB").getpixel((10, still.height - 10))[0] < 200  # type: ignore[index]


def test_sd_source_skips_1080p_and_keeps_its_size_for_720p(tmp_path: Path) -> None:
    source = make_video(tmp_path / "sd.mp4", 1.0, 720, 480, 25, audio=False)
    outputs = ladder(source, tmp_path / "out")
    assert outputs["1080p"] is None  # skipped, never upscaled
    check_mp4(Path(outputs["720p"].path), 720, 480, audio=False)
    check_mp4(Path(outputs["preview"].path), 720, 480, audio=False)


def test_hevc_10bit_mov_becomes_8bit_420_h264(tmp_path: Path) -> None:
    source = make_video(tmp_path / "hdr.mov", 1.0, 640, 360, 25, codec="libx265", pix_fmt="yuv420p10le")
    outputs = ladder(source, tmp_path / "out")
    check_mp4(Path(outputs["720p"].path), 640, 360, audio=True)


def test_444_odd_size_without_audio(tmp_path: Path) -> None:
    source = make_video(tmp_path / "odd.mp4", 1.0, 321, 241, 25, pix_fmt="yuv444p", audio=False)
    outputs = ladder(source, tmp_path / "out")
    check_mp4(Path(outputs["720p"].path), 320, 240, audio=False)


def test_variable_frame_rate_keeps_its_timing(tmp_path: Path) -> None:
    source = make_video(tmp_path / "vfr.mp4", 3.0, 320, 240, 25, vfr=True)
    outputs = ladder(source, tmp_path / "out")
    before, after = ffprobe(source), check_mp4(Path(outputs["720p"].path), 320, 240, audio=True)
    assert stream(after, "video")["nb_read_frames"] == stream(before, "video")["nb_read_frames"]  # type: ignore[index]
    assert abs(float(after["format"]["duration"]) - float(before["format"]["duration"])) < 0.1
    times = sorted(float(t.strip(",")) for t in subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0",
         outputs["720p"].path], capture_output=True, text=True, check=True,
    ).stdout.split())
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert gaps == {0.04, 0.08}  # 1/25 s and 2/25 s, as in the source: not resampled to one rate


def test_preview_is_the_first_15_seconds(tmp_path: Path) -> None:
    source = make_video(tmp_path / "long.mp4", 17.0, 320, 240, 10)
    outputs = ladder(source, tmp_path / "out")
    preview = check_mp4(Path(outputs["preview"].path), 320, 240, audio=True)
    assert abs(float(stream(preview, "video")["duration"]) - 15.0) < 0.15  # type: ignore[index]
    full = check_mp4(Path(outputs["720p"].path), 320, 240, audio=True)
    assert abs(float(full["format"]["duration"]) - 17.0) < 0.15


def test_truncated_file_is_a_media_error(tmp_path: Path) -> None:
    source = make_video(tmp_path / "whole.mp4", 2.0, 320, 240, 25)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(MediaError, match="cannot be opened"):
        transcode(truncated, tmp_path, plan(320, 240).targets)


def test_a_killed_transcoder_child_is_a_failed_attempt_not_a_dead_server(tmp_path: Path) -> None:
    source = make_video(tmp_path / "long.mp4", 12.0, 640, 360, 25)
    pids: list[int] = []

    def kill_on_progress(fraction: float) -> None:
        if pids and fraction > 0:
            os.kill(pids[0], signal.SIGKILL)

    with pytest.raises(TranscodeCrashed, match="killed by SIGKILL"):
        run_in_child(source, tmp_path, plan(640, 360, 0, 12.0).targets, EncoderChoice(threads=1),
                     on_progress=kill_on_progress, on_start=pids.append)
    # This process is fine and can run the next one.
    outputs = run_in_child(make_video(tmp_path / "short.mp4", 1.0), tmp_path, plan(320, 240).targets,
                           EncoderChoice(threads=1))
    assert {o.name for o in outputs} == {"720p", "preview", "thumbnail"}


def test_child_reports_outputs_as_they_finish(tmp_path: Path) -> None:
    """The preview of a long clip is reported before the full-length rung is done."""
    source = make_video(tmp_path / "long.mp4", 17.0, 320, 240, 10)
    order: list[str] = []
    lock = threading.Lock()

    def seen(output: Output) -> None:
        with lock:
            order.append(output.name)

    run_in_child(source, tmp_path, plan(320, 240, 0, 17.0).targets, EncoderChoice(threads=1), on_output=seen)
    assert order.index("preview") < order.index("720p")
