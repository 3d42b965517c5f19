"""A client's file name made safe to keep and show: its last segment, without control or invisible characters."""

from __future__ import annotations

import os
import re
import unicodedata

MAX_NAME = 255
MAX_EXTENSION = 16
FALLBACK = "upload"
# Control characters, line and paragraph separators, and invisible format characters: directional
# overrides make "evil\u202egnp.exe" display as "evilexe.png", zero-width ones hide in plain sight.
# The zero-width joiner stays: emoji sequences need it.
_DROPPED = frozenset({"Cc", "Cf", "Zl", "Zp"})
_KEPT = frozenset("\u200d")


def clean_filename(raw: str) -> str:
    """The name as users see it; it is never used as a path (storage keys are made by the server)."""
    last = re.split(r"[/\\]", raw)[-1]
    kept = "".join(ch for ch in last if ch in _KEPT or unicodedata.category(ch) not in _DROPPED).strip()
    if kept in ("", ".", ".."):
        return FALLBACK
    if len(kept) > MAX_NAME:
        stem, extension = os.path.splitext(kept)
        if len(extension) > MAX_EXTENSION:  # no real extension is that long
            stem, extension = kept, ""
        kept = stem[: MAX_NAME - len(extension)] + extension
    return kept
