"""Thumbnails: EXIF orientation applied, metadata (GPS included) left behind, never upscaled."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from transcode.describe import MediaError

# (variant name, longest side in px, Pillow format, MIME type)
THUMBNAILS = (
    ("thumbnail", 320, "JPEG", "image/jpeg"),
    ("thumbnail_webp", 320, "WEBP", "image/webp"),
    ("large", 1280, "JPEG", "image/jpeg"),
    ("large_webp", 1280, "WEBP", "image/webp"),
)


@dataclass(frozen=True, slots=True)
class Thumbnail:
    name: str
    data: bytes
    mime: str
    width: int
    height: int


def thumbnails_of(image: Image.Image) -> list[Thumbnail]:
    """Each size from one upright RGB copy; a size above the source keeps the source's size."""
    upright = ImageOps.exif_transpose(image)
    upright = upright.convert("RGB")
    out = []
    for name, side, kind, mime in THUMBNAILS:
        copy = upright.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        # No exif= argument: nothing of the original's metadata (GPS included) is written.
        copy.save(buffer, kind, quality=82)
        out.append(Thumbnail(name, buffer.getvalue(), mime, copy.width, copy.height))
    return out


def image_thumbnails(path: str) -> list[Thumbnail]:
    try:
        with Image.open(path) as image:
            image.load()
            return thumbnails_of(image)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"image cannot be decoded: {exc}") from None


def pdf_thumbnails(path: str) -> list[Thumbnail]:
    """The first page, rendered at about 1280 px on its longest side."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    try:
        page = document[0]
        width, height = page.get_size()
        scale = 1280 / max(width, height, 1)
        image = page.render(scale=scale).to_pil()
        return thumbnails_of(image)
    except pypdfium2.PdfiumError as exc:
        raise MediaError(f"PDF page cannot be rendered: {exc}") from None
    finally:
        document.close()
