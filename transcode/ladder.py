"""The variant ladder: which outputs a video gets, at what size, and which are skipped."""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_SECONDS = 15.0
THUMBNAIL_AT_SECONDS = 5.0
LADDER_NAMES = ("1080p", "720p", "preview", "thumbnail")


@dataclass(frozen=True, slots=True)
class Target:
    """One output: a video rung (optionally cut at `max_seconds`) or a still frame at `at_seconds`."""

    name: str
    kind: str  # "video" | "image"
    width: int
    height: int
    max_seconds: float | None = None
    at_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class LadderPlan:
    targets: list[Target]
    skipped: dict[str, str]  # name -> why


def upright_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The displayed size: a quarter-turn swaps width and height."""
    return (height, width) if rotation % 180 == 90 else (width, height)


def even(value: float) -> int:
    """Encoders want even dimensions for 4:2:0; never below 2."""
    return max(2, int(value) // 2 * 2)


def fit_short_side(width: int, height: int, short: int) -> tuple[int, int]:
    """Scale so that the short side is `short`, keeping the aspect ratio, both sides even."""
    if width <= height:
        return even(short), even(round(height * short / width))
    return even(round(width * short / height)), even(short)


def plan(width: int, height: int, rotation: int = 0, duration: float | None = None,
         names: tuple[str, ...] = LADDER_NAMES) -> LadderPlan:
    """1080p and 720p bound the short side; 1080p is skipped rather than upscaled, 720p is always made."""
    shown_w, shown_h = upright_size(width, height, rotation)
    short = min(shown_w, shown_h)
    mobile = fit_short_side(shown_w, shown_h, min(720, short))
    thumb_at = THUMBNAIL_AT_SECONDS if duration is None or duration > THUMBNAIL_AT_SECONDS else duration / 2
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name == "1080p":
            if short < 1080:
                skipped[name] = f"the source's short side is {short} px: 1080p would upscale it"
            else:
                targets.append(Target(name, "video", *fit_short_side(shown_w, shown_h, 1080)))
        elif name == "720p":
            targets.append(Target(name, "video", *mobile))
        elif name == "preview":
            targets.append(Target(name, "video", *mobile, max_seconds=PREVIEW_SECONDS))
        elif name == "thumbnail":
            targets.append(Target(name, "image", *mobile, at_seconds=thumb_at))
        else:
            raise ValueError(f"unknown variant {name!r}")
    return LadderPlan(targets, skipped)
