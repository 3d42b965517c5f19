"""One decode feeding every variant's encoder (PyAV): each output is finished and reported as soon as it can be."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from hwaccel.backends import SOFTWARE, EncoderBackend, Quality
from transcode.describe import MediaError
from transcode.ladder import Target

AUDIO_RATE = 48000
AUDIO_BIT_RATE = 128_000
THUMBNAIL_QUALITY = 85
# A body whose decoded frames stop well short of the duration its header claims is truncated.
TRUNCATION_TOLERANCE = 0.9


class EncoderFailed(RuntimeError):
    """The video encoder refused to open or failed mid-stream: the caller may fall back to another."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend} encoder failed: {message}")
        self.backend = backend


@dataclass(frozen=True, slots=True)
class EncoderChoice:
    """Which encoder, at what quality, with how many threads; `hw_decode` names an FFmpeg hwdevice type."""

    backend: EncoderBackend = SOFTWARE
    quality: Quality = field(default_factory=Quality)
    threads: int = 0  # 0: the encoder decides
    hw_decode: str | None = None

    @property
    def label(self) -> str:
        """How this choice is named in logs, metrics and variant details: "cuda+nvenc", "libx264"."""
        return f"{self.hw_decode}+{self.backend.name}" if self.hw_decode else self.backend.name


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    path: str
    mime: str
    width: int
    height: int
    size: int
    duration: float | None
    codec: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[float], None]
OutputCallback = Callable[[Output], None]


def clockwise_rotation(frame: VideoFrame) -> int:
    """Degrees to turn a decoded frame clockwise to show it upright (FFmpeg's display matrix is counter-clockwise)."""
    return (-round(frame.rotation / 90) * 90) % 360


class Uprighter:
    """Turns frames upright with FFmpeg's transpose/flip filters, as the ffmpeg CLI's autorotate does."""

    def __init__(self) -> None:
        self.graph: av.filter.Graph | None = None
        self.theta = 0

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        theta = clockwise_rotation(frame)
        if theta == 0:
            return frame
        if self.graph is None or theta != self.theta:
            self.graph, self.theta = self._build(frame, theta), theta
        self.graph.push(frame)
        return cast(VideoFrame, self.graph.pull())

    @staticmethod
    def _build(frame: VideoFrame, theta: int) -> av.filter.Graph:
        graph = av.filter.Graph()
        chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=frame.time_base or Fraction(1, 1000))]
        if theta == 90:
            chain.append(graph.add("transpose", "clock"))
        elif theta == 270:
            chain.append(graph.add("transpose", "cclock"))
        else:
            chain += [graph.add("hflip"), graph.add("vflip")]
        chain.append(graph.add("buffersink"))
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link_to(downstream)
        graph.configure()
        return graph


def copy_packet(packet: av.Packet) -> av.Packet:
    """Muxing takes a packet's data away: a second container gets its own copy."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    copy.duration, copy.is_keyframe = packet.duration, packet.is_keyframe
    return copy


def seconds(packet: av.Packet) -> float:
    return float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0


class PreviewTap:
    """The preview as the first seconds of the 720p rung's own packets: the same pictures without a second encode.

    The 720p encoder is made to start a closed GOP (an IDR frame) at the cut, so every packet before that
    keyframe decodes on its own; audio packets are taken up to the cut.
    """

    def __init__(self, target: Target, path: str) -> None:
        self.target, self.path = target, path
        self.cut = target.max_seconds or 0.0
        self.container: OutputContainer = av.open(path, "w", format="mp4", options={"movflags": "+faststart"})
        self.video: Any = None
        self.audio: Any = None
        self.video_done = False
        self.audio_done = False
        self.closed = False

    def attach(self, video: VideoStream, audio: AudioStream | None) -> None:
        """After the 720p header is written (its encoders are open and have their extradata)."""
        if self.video is None:
            self.video = self.container.add_stream_from_template(video)
            self.audio = self.container.add_stream_from_template(audio) if audio is not None else None
            self.audio_done = audio is None

    def video_packet(self, packet: av.Packet) -> av.Packet | None:
        """A copy to mux once the 720p container has taken the original, or None past the cut."""
        if self.video_done or (packet.is_keyframe and seconds(packet) >= self.cut):
            self.video_done = True
            return None
        return copy_packet(packet)

    def audio_packet(self, packet: av.Packet) -> av.Packet | None:
        if self.audio_done or seconds(packet) >= self.cut:
            self.audio_done = True
            return None
        return copy_packet(packet)

    def mux(self, packet: av.Packet, stream: Any) -> None:
        packet.stream = stream
        self.container.mux(packet)

    @property
    def ready_to_close(self) -> bool:
        return self.video_done and self.audio_done

    def close(self) -> Output:
        self.closed = True
        self.container.close()
        return written_output(self.target, self.path, 0.0)

    def discard(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(av.FFmpegError):
                self.container.close()


def written_output(target: Target, path: str, fallback_duration: float) -> Output:
    with av.open(path) as written:  # the header says what was really written
        duration = float(written.duration / av.time_base) if written.duration else fallback_duration
    return Output(target.name, path, "video/mp4", target.width, target.height, os.path.getsize(path),
                  round(duration, 3), "h264")


class VideoSink:
    """One MP4 rung: H.264 (High, 8-bit 4:2:0) plus AAC stereo when the source has sound, moov first."""

    def __init__(self, target: Target, path: str, source: VideoStream, has_audio: bool, choice: EncoderChoice,
                 tap: PreviewTap | None = None) -> None:
        self.target, self.path, self.choice, self.tap = target, path, choice, tap
        self.backend = choice.backend
        self.container: OutputContainer = av.open(path, "w", format="mp4", options={"movflags": "+faststart"})
        rate = source.average_rate or source.guessed_rate or Fraction(30, 1)
        options = self.backend.encoder_options(choice.quality)
        if tap is not None:
            options["forced-idr"] = "1"  # the frame forced at the preview's cut starts a closed GOP
        try:
            self.video: VideoStream = cast(
                VideoStream, self.container.add_stream(self.backend.codec, rate=rate, options=options)
            )
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderFailed(self.backend.name, str(exc)) from exc
        self.video.width, self.video.height = target.width, target.height
        self.video.pix_fmt = self.backend.pix_fmt
        # Frames keep the source's timestamps: variable frame rate stays variable.
        self.video.codec_context.time_base = source.time_base or Fraction(1, 90000)
        if not self.backend.hardware:
            self.video.codec_context.thread_type = "FRAME"
            self.video.codec_context.thread_count = choice.threads
        try:
            # Open now: an encoder that cannot work here (no device, no session) says so before any frame.
            self.video.codec_context.open()
        except av.FFmpegError as exc:
            self.container.close()
            raise EncoderFailed(self.backend.name, str(exc)) from exc
        self.audio: AudioStream | None = None
        if has_audio:
            self.audio = self.container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            self.audio.bit_rate = AUDIO_BIT_RATE
        self.video_done = False
        self.audio_done = not has_audio
        self.cut_forced = False
        self.last_pts: int | None = None
        self.last_time = 0.0
        self.started = False
        self.closed = False

    def add_video(self, frame: VideoFrame) -> None:
        if self.video_done:
            return
        if self.target.max_seconds is not None and frame.time is not None and frame.time >= self.target.max_seconds:
            self.video_done = True
            return
        scaled = frame.reformat(self.target.width, self.target.height, self.backend.pix_fmt,
                                interpolation="BICUBIC")
        pts = frame.pts if frame.pts is not None else (self.last_pts or 0) + 1
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # an encoder refuses a timestamp that does not move forward
        scaled.pts, scaled.time_base, self.last_pts = pts, frame.time_base, pts
        # A decoded frame's picture type would force the encoder's frame types (+47% size).
        scaled.pict_type = PictureType.NONE
        if self.tap is not None and not self.cut_forced and frame.time is not None and frame.time >= self.tap.cut:
            scaled.pict_type, self.cut_forced = PictureType.I, True
        self.last_time = float(frame.time or 0.0)
        try:
            packets = self.video.encode(scaled)
        except av.FFmpegError as exc:
            raise EncoderFailed(self.backend.name, str(exc)) from exc
        self._mux(packets, video=True)

    def add_audio(self, frame: av.AudioFrame | None) -> None:
        if self.audio is None or self.audio_done:
            return
        if frame is not None and self.target.max_seconds is not None and frame.time is not None \
                and frame.time >= self.target.max_seconds:
            self.audio_done = True
            return
        self._mux(self.audio.encode(frame), video=False)

    def _mux(self, packets: list[av.Packet], video: bool) -> None:
        for packet in packets:
            tap = self.tap
            copy = None
            if tap is not None and not tap.closed:
                copy = tap.video_packet(packet) if video else tap.audio_packet(packet)
            self.container.mux(packet)
            if tap is not None and not tap.closed:
                tap.attach(self.video, self.audio)
                if copy is not None:
                    tap.mux(copy, tap.video if video else tap.audio)

    @property
    def ready_to_close(self) -> bool:
        return self.video_done and self.audio_done

    def close(self) -> Output:
        self.closed = True
        try:
            packets = self.video.encode(None)
        except av.FFmpegError as exc:
            raise EncoderFailed(self.backend.name, str(exc)) from exc
        self._mux(packets, video=True)
        if self.audio is not None:
            self._mux(self.audio.encode(None), video=False)
        self.container.close()
        return written_output(self.target, self.path, self.last_time)

    def discard(self) -> None:
        if self.tap is not None:
            self.tap.discard()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(av.FFmpegError):
                self.container.close()


class StillSink:
    """A JPEG of the first frame at or after `at_seconds` (or the last frame of a shorter clip)."""

    def __init__(self, target: Target, path: str) -> None:
        self.target, self.path = target, path
        self.fallback: VideoFrame | None = None
        self.closed = False

    def add_video(self, frame: VideoFrame) -> bool:
        """True once the still is written."""
        self.fallback = frame
        return frame.time is not None and frame.time >= (self.target.at_seconds or 0.0)

    def close(self) -> Output:
        if self.fallback is None:
            raise MediaError("the video has no frame to make a thumbnail from")
        self.closed = True
        image = self.fallback.to_image(width=self.target.width, height=self.target.height, interpolation="BICUBIC")
        image.save(self.path, "JPEG", quality=THUMBNAIL_QUALITY)
        return Output(self.target.name, self.path, "image/jpeg", image.width, image.height,
                      os.path.getsize(self.path), None, "mjpeg")


def preview_tap(targets: list[Target], out_dir: Path) -> PreviewTap | None:
    """The preview rides on the 720p encode when both are wanted at the same size."""
    by_name = {t.name: t for t in targets}
    preview, mobile = by_name.get("preview"), by_name.get("720p")
    if preview is None or mobile is None or (preview.width, preview.height) != (mobile.width, mobile.height):
        return None
    return PreviewTap(preview, str(out_dir / f"{preview.name}.mp4"))


def open_source(source: str, hw_decode: str | None) -> InputContainer:
    if hw_decode:
        from av.codec.hwaccel import HWAccel

        try:
            return av.open(source, hwaccel=HWAccel(device_type=hw_decode, allow_software_fallback=False))
        except av.FFmpegError as exc:
            raise EncoderFailed(f"{hw_decode} decode", str(exc)) from exc
    try:
        return av.open(source)
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"video cannot be opened: {exc}") from None


def transcode(
    source: str, out_dir: str | Path, targets: list[Target], choice: EncoderChoice = EncoderChoice(),
    on_progress: ProgressCallback | None = None, on_output: OutputCallback | None = None,
) -> list[Output]:
    """Decode `source` once; every target gets its frames; each output is reported the moment it is closed."""
    out_dir = Path(out_dir)
    outputs: list[Output] = []
    videos: list[VideoSink] = []
    stills: list[StillSink] = []

    def finish(sink: VideoSink | StillSink | PreviewTap) -> None:
        output = sink.close()
        outputs.append(output)
        if on_output is not None:
            on_output(output)

    with open_source(source, choice.hw_decode) as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        in_video = container.streams.video[0]
        in_video.thread_type = "AUTO"
        in_audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration / av.time_base) if container.duration else None
        try:
            tap = preview_tap(targets, out_dir)
            taps = [tap] if tap is not None else []
            for target in targets:
                suffix = ".mp4" if target.kind == "video" else ".jpg"
                path = str(out_dir / f"{target.name}{suffix}")
                if target.kind == "image":
                    stills.append(StillSink(target, path))
                elif tap is None or target.name != tap.target.name:
                    rung_tap = tap if tap is not None and target.name == "720p" else None
                    videos.append(VideoSink(target, path, in_video, in_audio is not None, choice, rung_tap))
            resampler = AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE) if in_audio else None
            upright = Uprighter()
            last_time = 0.0
            reported = -1.0
            streams = [s for s in (in_video, in_audio) if s is not None]
            for packet in container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    if choice.hw_decode:  # the hardware may be what failed: the caller falls back to software
                        raise EncoderFailed(f"{choice.hw_decode} decode", str(exc)) from exc
                    raise MediaError(f"video cannot be decoded at {last_time:.2f}s: {exc}") from None
                for frame in frames:
                    if isinstance(frame, VideoFrame):
                        frame = upright(frame)
                        last_time = float(frame.time or last_time)
                        for still in stills:
                            if not still.closed and still.add_video(frame):
                                finish(still)
                        for sink in videos:
                            sink.add_video(frame)
                        if on_progress is not None and duration and last_time - reported >= 1.0:
                            reported = last_time
                            on_progress(min(0.99, last_time / duration))
                    elif resampler is not None:
                        for resampled in resampler.resample(cast(av.AudioFrame, frame)):
                            for sink in videos:
                                sink.add_audio(resampled)
                    closing: list[VideoSink | PreviewTap] = [*videos, *taps]
                    for rung in closing:
                        if not rung.closed and rung.ready_to_close:
                            finish(rung)
            if duration and duration > 2.0 and last_time < duration * TRUNCATION_TOLERANCE - 1.0:
                raise MediaError(f"the file ends early: frames stop at {last_time:.1f}s of the {duration:.1f}s "
                                 "its header claims (truncated?)")
            if resampler is not None:
                for resampled in resampler.resample(None):
                    for sink in videos:
                        sink.add_audio(resampled)
            rest: list[VideoSink | StillSink] = [*videos, *stills]
            for left in rest:
                if not left.closed:
                    finish(left)
            for tap in taps:  # a clip shorter than the cut: the preview is the whole 720p rung
                if not tap.closed:
                    finish(tap)
        except BaseException:
            for sink in videos:
                sink.discard()
            raise
    if on_progress is not None:
        on_progress(1.0)
    return outputs
