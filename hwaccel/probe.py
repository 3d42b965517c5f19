"""EncoderProbe: device nodes, driver libraries, codec in this FFmpeg build, then a short test encode."""

from __future__ import annotations

import ctypes
import glob
import logging
import threading
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext

from hwaccel.backends import BACKENDS, DEFAULT_PREFERENCE, EncoderBackend

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
class HwaccelReport:
    backends: list[BackendReport]
    chosen: str
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return {"backends": [b.to_dict() for b in self.backends], "chosen": self.chosen, "mode": self.mode}


def _loadable(sonames: tuple[str, ...]) -> str | None:
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
            return soname
        except OSError:
            continue
    return None


def trial_encode(codec_name: str, pix_fmt: str, timeout: float = TRIAL_TIMEOUT) -> str | None:
    """Encode a few generated frames; None when it worked, else the error text."""
    outcome: list[str | None] = []

    def run() -> None:
        try:
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
            outcome.append(None)
        except Exception as exc:  # any failure is the reason this backend is unusable
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name=f"trial-{codec_name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"test encode did not finish within {timeout:g}s"
    return outcome[0] if outcome else "test encode ended without a result"


def probe_backend(backend: EncoderBackend) -> BackendReport:
    report = BackendReport(backend.name, backend.codec, False, "")
    if backend.codec not in av.codecs_available:
        report.reason = f"this FFmpeg build has no {backend.codec} encoder"
        return report
    if backend.hardware:
        devices = sorted({path for pattern in backend.devices for path in glob.glob(pattern)})
        report.devices = devices
        if not devices:
            report.reason = f"no device node ({', '.join(backend.devices)})"
            return report
        if _loadable(backend.libraries) is None:
            report.reason = f"driver library not loadable ({', '.join(backend.libraries)})"
            return report
    error = trial_encode(backend.codec, backend.pix_fmt)
    if error is not None:
        report.reason = f"test encode failed: {error}"
        return report
    report.usable = True
    report.reason = "test encode succeeded"
    return report


def probe_all(mode: str = "auto", prefer: list[str] | None = None) -> HwaccelReport:
    """Probe every backend and choose: a forced mode, else the first usable of `prefer`, else libx264."""
    reports = [probe_backend(backend) for backend in BACKENDS]
    usable = {r.name for r in reports if r.usable}
    chosen = "libx264" if "libx264" in usable else "none"
    if mode == "off":
        pass
    elif mode != "auto":
        if mode in usable:
            chosen = mode
        else:
            log.warning("hwaccel mode %s is not usable here; falling back to libx264", mode)
    else:
        for name in prefer or DEFAULT_PREFERENCE:
            if name in usable:
                chosen = name
                break
    for report in reports:
        if report.name != "libx264" and not report.usable:
            log.info("hwaccel %s not usable: %s", report.name, report.reason)
    return HwaccelReport(reports, chosen, mode)
