"""Test media made on the spot: images with Pillow, videos with PyAV, PDFs by hand."""

from __future__ import annotations

import array
import io
import math
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image


def jpeg_bytes(width: int = 640, height: int = 480) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jpeg_with_exif(width: int, height: int, orientation: int = 6, gps: bool = True) -> bytes:
    """A phone-like JPEG: stored sideways with an orientation tag, a camera name and a GPS position."""
    image = Image.new("RGB", (width, height), (30, 160, 60))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestCam"  # Make
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 30.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def png_bomb(side: int = 40_000) -> bytes:
    """A PNG whose header claims side x side pixels (1.6 billion) in a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))

    header = struct.pack("!IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def pdf_bytes(pages: int = 2) -> bytes:
    """A minimal valid PDF with `pages` empty pages and a title."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + n} 0 R" for n in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
    objects += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"] * pages
    objects.append("<< /Title (Test document) /Author (ingestbox) >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    info = len(objects)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def mp4_file(path: Path, seconds: float = 1.0, width: int = 320, height: int = 240, fps: int = 25) -> bytes:
    make_video(path, seconds, width, height, fps, audio=False)
    return path.read_bytes()


ENCODER_QUIET = {
    "libx264": {"preset": "ultrafast"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
}


def marker_frame(width: int, height: int, index: int) -> Image.Image:
    """A moving shade with a red square in the top-left corner: where it lands shows the output's orientation."""
    shade = (index * 8) % 255
    image = Image.new("RGB", (width, height), (shade, 255 - shade, 90))
    side = max(2, min(width, height) // 4)
    image.paste((255, 0, 0), (0, 0, side, side))
    return image


def tone(index: int, samples: int, rate: int) -> bytes:
    """Stereo s16 samples of a 440 Hz tone."""
    values = array.array("h")
    for n in range(samples):
        value = int(8000 * math.sin(2 * math.pi * 440 * (index * samples + n) / rate))
        values.extend((value, value))
    return values.tobytes()


def make_video(
    path: Path, seconds: float = 1.0, width: int = 320, height: int = 240, fps: int = 25, *,
    codec: str = "libx264", pix_fmt: str = "yuv420p", audio: bool = True, rotation: int = 0, vfr: bool = False,
) -> Path:
    """A clip with a marker and an optional 440 Hz tone; `rotation` is the display matrix (-90: a phone's portrait),
    `vfr` alternates 1/fps and 2/fps gaps between frames."""
    container_format = "mov" if path.suffix == ".mov" else "mp4"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps, options=ENCODER_QUIET.get(codec, {}))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        time_base = Fraction(1, fps * 2)
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48000, layout="stereo") if audio else None
        assert sound is None or isinstance(sound, av.AudioStream)
        base = [marker_frame(width, height, index) for index in range(8)]
        pts, index = 0, 0
        while pts < seconds * fps * 2:
            frame = av.VideoFrame.from_image(base[index % 8]).reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, time_base
            container.mux(stream.encode(frame))
            pts += 2 if not vfr or index % 2 == 0 else 4
            index += 1
        container.mux(stream.encode(None))
        if sound is not None:
            samples = 1024
            for chunk in range(int(seconds * 48000 / samples)):
                frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
                frame.planes[0].update(tone(chunk, samples, 48000))
                frame.sample_rate, frame.pts, frame.time_base = 48000, chunk * samples, Fraction(1, 48000)
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path
