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
    # What to do when this FFmpeg build lacks the codec.
    missing_hint: str = ""

    def encoder_options(self, quality: Quality) -> dict[str, str]:
        return {key: value.format(crf=quality.crf, preset=quality.preset) for key, value in self.options}


# PyAV's wheel bundles an FFmpeg without VAAPI, and PyAV 18 builds only against FFmpeg 8 or newer,
# which no Debian release ships yet (12 has 5.1, 13 has 7.1): the path is a self-built FFmpeg 8.
VAAPI_HINT = (
    "PyAV's bundled FFmpeg is built without VAAPI, and PyAV 18 builds only against FFmpeg 8 or newer "
    "(Debian 12 ships 5.1, Debian 13 7.1): build FFmpeg 8 with --enable-shared --enable-gpl --enable-libx264 "
    "--enable-vaapi (apt-get install libva-dev libdrm-dev libx264-dev nasm pkg-config), install PyAV against it "
    "(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pip install --no-binary av 'av>=18,<19'), and the VA driver "
    "(mesa-va-drivers for AMD, intel-media-va-driver for Intel; on Intel, QSV works with the bundled FFmpeg)"
)


@dataclass(frozen=True, slots=True)
class DecoderBackend:
    """A hardware decoder: an FFmpeg hwdevice type, its device nodes and driver libraries."""

    name: str
    device_type: str
    devices: tuple[str, ...]
    libraries: tuple[str, ...]
    missing_hint: str = ""


DECODERS: tuple[DecoderBackend, ...] = (
    DecoderBackend("nvdec", "cuda", ("/dev/nvidia0", "/dev/nvidia[0-9]*"), ("libcuda.so.1",)),
    DecoderBackend("qsv", "qsv", ("/dev/dri/renderD*",), ("libvpl.so.2", "libmfx.so.1")),
    DecoderBackend("vaapi", "vaapi", ("/dev/dri/renderD*",), ("libva.so.2",), VAAPI_HINT),
)
# The hardware decoder that pairs with each hardware encoder (decode and encode on one device).
DECODER_FOR = {"nvenc": "cuda", "qsv": "qsv", "vaapi": "vaapi"}


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
        VAAPI_HINT,
    ),
    EncoderBackend(
        "libx264", "libx264", "yuv420p", (), (), False,
        (("preset", "{preset}"), ("crf", "{crf}"), ("profile", "high")),
    ),
)
BACKENDS_BY_NAME = {backend.name: backend for backend in BACKENDS}
SOFTWARE = BACKENDS_BY_NAME["libx264"]

DEFAULT_PREFERENCE = ("nvenc", "qsv", "vaapi")
