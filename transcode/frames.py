"""A video's still frame, upright, as a Pillow image (the thumbnail's source)."""

from __future__ import annotations

import av
from av.video.frame import VideoFrame
from PIL import Image

from transcode.describe import MediaError
from transcode.ladder import THUMBNAIL_AT_SECONDS
from transcode.pipeline import Uprighter


def still_time(duration: float | None) -> float:
    """At 5 s, or mid-clip when the clip is not longer than that."""
    return THUMBNAIL_AT_SECONDS if duration is None or duration > THUMBNAIL_AT_SECONDS else duration / 2


def frame_image(path: str, at_seconds: float) -> Image.Image:
    """Seek to the keyframe before `at_seconds` and decode forward to the first frame at or after it."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if at_seconds > 0 and stream.time_base:
                container.seek(int(at_seconds / stream.time_base), stream=stream, backward=True)
            upright = Uprighter()
            last: VideoFrame | None = None
            for frame in container.decode(stream):
                last = frame
                if frame.time is not None and frame.time >= at_seconds:
                    break
            if last is None:
                raise MediaError("the video has no frame to make a thumbnail from")
            return upright(last).to_image()
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(f"video frame cannot be decoded: {exc}") from None
