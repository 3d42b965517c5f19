"""What a stored file holds: image, PDF and video metadata, with a readable error when it lies."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import pypdfium2
from PIL import ExifTags, Image


class MediaError(ValueError):
    """The body is not what its header claims (truncated, corrupt, a decompression bomb)."""


def describe_image(path: str) -> dict[str, Any]:
    try:
        with Image.open(path) as image:
            image.load()  # decode it all: a truncated body fails here, not later
            info: dict[str, Any] = {"width": image.width, "height": image.height, "format": image.format,
                                    "mode": image.mode}
            exif = image.getexif()
            names = {ExifTags.Base.Make: "camera_make", ExifTags.Base.Model: "camera_model",
                     ExifTags.Base.DateTime: "taken_at", ExifTags.Base.Orientation: "orientation"}
            for tag, name in names.items():
                if tag in exif:
                    info[name] = str(exif[tag]) if name != "orientation" else int(exif[tag])
            return info
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"image cannot be decoded: {exc}") from None


def describe_pdf(path: str) -> dict[str, Any]:
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise MediaError(f"PDF cannot be opened: {exc}") from None
    try:
        meta = document.get_metadata_dict(skip_empty=True)
        return {"pages": len(document), "title": meta.get("Title"), "author": meta.get("Author")}
    finally:
        document.close()


def describe_video(path: str) -> dict[str, Any]:
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError("the file has no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            rate = video.average_rate or video.guessed_rate
            # decode a first frame: a header over a broken body is caught here
            frame = next(container.decode(video=0))
            return {
                "duration": float(container.duration / av.time_base) if container.duration else None,
                "video_codec": video.codec_context.name,
                "width": video.codec_context.width,
                "height": video.codec_context.height,
                "fps": round(float(rate), 3) if isinstance(rate, Fraction) and rate else None,
                "pix_fmt": video.codec_context.pix_fmt,
                "rotation": int(getattr(frame, "rotation", 0) or 0),
                "audio_codec": audio.codec_context.name if audio is not None else None,
            }
    except MediaError:
        raise
    except (av.FFmpegError, StopIteration, OSError) as exc:
        raise MediaError(f"video cannot be decoded: {exc or 'no frames'}") from None


def describe(kind: str, path: str) -> dict[str, Any]:
    if kind == "image":
        return describe_image(path)
    if kind == "pdf":
        return describe_pdf(path)
    if kind == "video":
        return describe_video(path)
    return {}
