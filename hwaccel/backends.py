"""The encoder table: one row per backend, as data (codec, pixel format, devices, libraries, options)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quality:
    """Our quality target: one CRF-like number and the x264 speed preset it was tuned with."""

    crf: int = 23
    preset: str = "veryfast"


@dataclass(frozen=True, slots=True)
class EncoderBackend:
    name: str
    codec: str
    pix_fmt: str
    devices: tuple[str, ...]  # glob patterns; any match counts
    libraries: tuple[str, ...]  # sonames; any loadable counts
    hardware: bool
    # Encoder options; "{crf}" and "{preset}" are filled from the Quality target.
    options: tuple[tuple[str, str], ...] = ()

    def encoder_options(self, quality: Quality) -> dict[str, str]:
        return {key: value.format(crf=quality.crf, preset=quality.preset) for key, value in self.options}


BACKENDS: tuple[EncoderBackend, ...] = (
    EncoderBackend(
        "nvenc", "h264_nvenc", "yuv420p", ("/dev/nvidia0", "/dev/nvidia[0-9]*"), ("libcuda.so.1",), True,
        (("preset", "p4"), ("tune", "hq"), ("rc", "vbr"), ("cq", "{crf}"), ("b", "0"), ("profile", "high")),
    ),
    # QSV wants nv12 surfaces; the driver is oneVPL (libvpl) over the iHD VA driver.
    EncoderBackend(
        "qsv", "h264_qsv", "nv12", ("/dev/dri/renderD*",), ("libvpl.so.2", "libmfx.so.1"), True,
        (("preset", "medium"), ("global_quality", "{crf}"), ("profile", "high")),
    ),
    EncoderBackend(
        "vaapi", "h264_vaapi", "nv12", ("/dev/dri/renderD*",), ("libva.so.2",), True,
        (("rc_mode", "CQP"), ("qp", "{crf}"), ("profile", "high")),
    ),
    EncoderBackend(
        "libx264", "libx264", "yuv420p", (), (), False,
        (("preset", "{preset}"), ("crf", "{crf}"), ("profile", "high")),
    ),
)
BACKENDS_BY_NAME = {backend.name: backend for backend in BACKENDS}
SOFTWARE = BACKENDS_BY_NAME["libx264"]

DEFAULT_PREFERENCE = ("nvenc", "qsv", "vaapi")
