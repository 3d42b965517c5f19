"""The encoder table: one row per backend, as data (codec, pixel format, devices, libraries)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EncoderBackend:
    name: str
    codec: str
    pix_fmt: str
    devices: tuple[str, ...]  # glob patterns; any match counts
    libraries: tuple[str, ...]  # sonames; any loadable counts
    hardware: bool


BACKENDS: tuple[EncoderBackend, ...] = (
    EncoderBackend("nvenc", "h264_nvenc", "yuv420p", ("/dev/nvidia0", "/dev/nvidia[0-9]*"), ("libcuda.so.1",), True),
    # QSV wants nv12 surfaces; the driver is oneVPL (libvpl) over the iHD VA driver.
    EncoderBackend("qsv", "h264_qsv", "nv12", ("/dev/dri/renderD*",), ("libvpl.so.2", "libmfx.so.1"), True),
    EncoderBackend("vaapi", "h264_vaapi", "nv12", ("/dev/dri/renderD*",), ("libva.so.2",), True),
    EncoderBackend("libx264", "libx264", "yuv420p", (), (), False),
)

DEFAULT_PREFERENCE = ("nvenc", "qsv", "vaapi")
