"""Probing: device nodes, driver libraries, this FFmpeg build, then a short test encode or decode that proves it."""

from __future__ import annotations

import ctypes
import glob
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext

from hwaccel.backends import BACKENDS, DECODERS, DEFAULT_PREFERENCE, DecoderBackend, EncoderBackend

log = logging.getLogger("ingestbox.hwaccel")
TRIAL_TIMEOUT = 10.0


@dataclass(slots=True)
class BackendReport:
    name: str
    codec: str
    usable: bool
    reason: str
    devices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class DecoderReport:
    name: str
    device_type: str
    usable: bool
    reason: str
    devices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class HwaccelReport:
    backends: list[BackendReport]
    chosen: str
    mode: str
    decoders: list[DecoderReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"backends": [b.to_dict() for b in self.backends], "chosen": self.chosen, "mode": self.mode,
                "decoders": [d.to_dict() for d in self.decoders]}

    def usable_decoder(self, device_type: str) -> bool:
        return any(d.device_type == device_type and d.usable for d in self.decoders)


def _loadable(sonames: tuple[str, ...]) -> str | None:
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
            return soname
        except OSError:
            continue
    return None


def _with_timeout(name: str, work: Callable[[], None], timeout: float) -> str | None:
    """Run `work` on a thread; None when it finished cleanly, else the error text (a hung driver is a timeout)."""
    outcome: list[str | None] = []

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except Exception as exc:  # any failure is the reason this backend is unusable
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name=f"trial-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"did not finish within {timeout:g}s"
    return outcome[0] if outcome else "ended without a result"


def trial_encode(codec_name: str, pix_fmt: str, timeout: float = TRIAL_TIMEOUT) -> str | None:
    """Encode a few generated frames; None when it worked, else the error text."""

    def work() -> None:
        context = cast(VideoCodecContext, av.CodecContext.create(codec_name, "w"))
        context.width, context.height = 256, 144
        context.pix_fmt = pix_fmt
        context.time_base = Fraction(1, 25)
        context.framerate = Fraction(25, 1)
        context.open()
        for index in range(5):
            frame = av.VideoFrame(256, 144, "yuv420p").reformat(format=pix_fmt)
            frame.pts = index
            context.encode(frame)
        context.encode(None)

    return _with_timeout(codec_name, work, timeout)


def tiny_h264() -> bytes:
    """A 10-frame H.264 clip made in memory with libx264: what a trial decode decodes."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame(256, 144, "yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def trial_decode(device_type: str, timeout: float = TRIAL_TIMEOUT) -> str | None:
    """Decode a tiny H.264 clip on the hardware, software fallback disallowed; None when it worked."""

    def work() -> None:
        from av.codec.hwaccel import HWAccel

        hwaccel = HWAccel(device_type=device_type, allow_software_fallback=False)
        with av.open(io.BytesIO(tiny_h264()), "r", hwaccel=hwaccel) as container:
            frames = len(list(container.decode(video=0)))
        if frames == 0:
            raise RuntimeError("no frame came back")

    return _with_timeout(f"decode-{device_type}", work, timeout)


@dataclass
class ProbeEnv:
    """What the probe looks at; tests give it a simulated machine (device tree, libraries, outcomes)."""

    devices: Callable[[str], list[str]] = glob.glob
    loadable: Callable[[tuple[str, ...]], str | None] = _loadable
    encoders: Callable[[], set[str]] = lambda: set(av.codecs_available)
    hwdevices: Callable[[], list[str]] = lambda: list(av.codec.hwaccel.hwdevices_available())
    encode: Callable[[str, str], str | None] = trial_encode
    decode: Callable[[str], str | None] = trial_decode


def _devices(env: ProbeEnv, patterns: tuple[str, ...]) -> list[str]:
    return sorted({path for pattern in patterns for path in env.devices(pattern)})


def probe_backend(backend: EncoderBackend, env: ProbeEnv | None = None) -> BackendReport:
    env = env or ProbeEnv()
    report = BackendReport(backend.name, backend.codec, False, "")
    if backend.codec not in env.encoders():
        report.reason = f"this FFmpeg build has no {backend.codec} encoder" + (
            f"; {backend.missing_hint}" if backend.missing_hint else "")
        return report
    if backend.hardware:
        report.devices = _devices(env, backend.devices)
        if not report.devices:
            report.reason = f"no device node ({', '.join(backend.devices)})"
            return report
        if env.loadable(backend.libraries) is None:
            report.reason = f"driver library not loadable ({', '.join(backend.libraries)})"
            return report
    error = env.encode(backend.codec, backend.pix_fmt)
    if error is not None:
        # NVDEC-only GPUs (H100, H200) land here: h264_nvenc says "No capable devices found".
        report.reason = f"test encode failed: {error}"
        return report
    report.usable = True
    report.reason = "test encode succeeded"
    return report


def probe_decoder(decoder: DecoderBackend, env: ProbeEnv | None = None) -> DecoderReport:
    env = env or ProbeEnv()
    report = DecoderReport(decoder.name, decoder.device_type, False, "")
    if decoder.device_type not in env.hwdevices():
        report.reason = f"this FFmpeg build has no {decoder.device_type} hardware device type" + (
            f"; {decoder.missing_hint}" if decoder.missing_hint else "")
        return report
    report.devices = _devices(env, decoder.devices)
    if not report.devices:
        report.reason = f"no device node ({', '.join(decoder.devices)})"
        return report
    if env.loadable(decoder.libraries) is None:
        report.reason = f"driver library not loadable ({', '.join(decoder.libraries)})"
        return report
    error = env.decode(decoder.device_type)
    if error is not None:
        report.reason = f"test decode failed: {error}"
        return report
    report.usable = True
    report.reason = "test decode succeeded"
    return report


def choose(reports: list[BackendReport], mode: str, prefer: list[str] | None) -> str:
    """A forced mode when it is usable, else the first usable of `prefer`, else libx264."""
    usable = {r.name for r in reports if r.usable}
    chosen = "libx264" if "libx264" in usable else "none"
    if mode == "off":
        return chosen
    if mode != "auto":
        if mode in usable:
            return mode
        log.warning("hwaccel mode %s is not usable here; falling back to libx264", mode)
        return chosen
    for name in prefer or DEFAULT_PREFERENCE:
        if name in usable:
            return name
    return chosen


def probe_all(mode: str = "auto", prefer: list[str] | None = None, env: ProbeEnv | None = None) -> HwaccelReport:
    """Probe every encoder and hardware decoder and choose; `off` probes libx264 alone."""
    env = env or ProbeEnv()
    if mode == "off":
        skipped = [BackendReport(b.name, b.codec, False, "not probed: [hwaccel] mode = \"off\"")
                   for b in BACKENDS if b.hardware]
        software = [probe_backend(b, env) for b in BACKENDS if not b.hardware]
        decoders = [DecoderReport(d.name, d.device_type, False, "not probed: [hwaccel] mode = \"off\"")
                    for d in DECODERS]
        return HwaccelReport([*skipped, *software], choose(software, mode, prefer), mode, decoders)
    reports = [probe_backend(backend, env) for backend in BACKENDS]
    decoders = [probe_decoder(decoder, env) for decoder in DECODERS]
    for name, usable, reason in [(r.name, r.usable, r.reason) for r in reports] + [
        (f"{d.name} decode", d.usable, d.reason) for d in decoders
    ]:
        if name != "libx264" and not usable:
            log.info("hwaccel %s not usable: %s", name, reason)
    return HwaccelReport(reports, choose(reports, mode, prefer), mode, decoders)
