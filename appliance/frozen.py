"""Fixes for the PyInstaller build: libmagic's database inside the bundle, Sanic without its source rewriting."""

from __future__ import annotations

import os
import sys
from pathlib import Path

FROZEN = bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path | None:
    base = getattr(sys, "_MEIPASS", None)
    return Path(base) if FROZEN and base else None


def prepare() -> None:
    """Call before libmagic is loaded: point it at the magic.mgc shipped in the bundle (none on the host)."""
    bundle = bundle_dir()
    if bundle is None:
        return
    database = bundle / "magic.mgc"
    if database.is_file():
        os.environ.setdefault("MAGIC", str(database))
