"""A client's file name made safe to keep and show: its last segment, without control or bidi characters."""

from __future__ import annotations

import os
import re
import unicodedata

MAX_NAME = 255
FALLBACK = "upload"
# Directional overrides and isolates make "evil\u202egnp.exe" display as "evilexe.png".
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_filename(raw: str) -> str:
    """The name as users see it; it is never used as a path (storage keys are made by the server)."""
    last = re.split(r"[/\\]", raw)[-1]
    kept = "".join(ch for ch in last if unicodedata.category(ch) != "Cc" and ch not in _BIDI).strip()
    if kept in ("", ".", ".."):
        return FALLBACK
    if len(kept) > MAX_NAME:
        stem, extension = os.path.splitext(kept)
        kept = stem[: MAX_NAME - len(extension)] + extension
    return kept
