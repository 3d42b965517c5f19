"""What a file is, decided by libmagic on its first bytes; the name's extension must agree."""

from __future__ import annotations

import os

import magic

from appliance.errors import IngestboxError

SNIFF_BYTES = 8192
# The extensions that agree with each allowed type (a name without an extension agrees with all).
EXTENSIONS = {
    "image/jpeg": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "image/png": {".png"},
    "image/webp": {".webp"},
    "video/mp4": {".mp4", ".m4v"},
    "video/quicktime": {".mov", ".qt"},
    "application/pdf": {".pdf"},
}
KINDS = {"image": "image", "video": "video", "application/pdf": "pdf"}


class UnsupportedType(IngestboxError):
    status, code, quiet = 415, "unsupported_type", True


def sniff(head: bytes) -> str:
    return str(magic.from_buffer(head, mime=True))


def kind_of(mime: str) -> str:
    return KINDS.get(mime) or KINDS.get(mime.split("/")[0], "file")


def check_type(mime: str, filename: str | None, allowed: list[str]) -> None:
    """Raise UnsupportedType unless the sniffed type is allowed and the name's extension agrees."""
    if mime not in allowed:
        raise UnsupportedType(f"{mime} is not an allowed type", sniffed=mime, allowed=allowed)
    extension = os.path.splitext(filename or "")[1].lower()
    expected = EXTENSIONS.get(mime)
    if extension and expected is not None and extension not in expected:
        raise UnsupportedType(
            f"the file is {mime} but its name ends in {extension}", sniffed=mime, extension=extension
        )
