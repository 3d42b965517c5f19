"""The `asset.transcode` job on media-transcoding: the ladder in a supervised child, each variant stored as it lands."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from appliance.db.assets import Asset, AssetRecords
from appliance.jobs.engine import JobContext, JobEngine
from appliance.metrics import Metrics
from appliance.processing.notify import AssetNotifier
from appliance.storage import ObjectStore
from hwaccel.backends import BACKENDS_BY_NAME, DECODER_FOR, SOFTWARE, Quality
from hwaccel.probe import HwaccelReport
from transcode.child import run_in_child
from transcode.ladder import LADDER_NAMES, plan
from transcode.pipeline import EncoderChoice, EncoderFailed, Output

log = logging.getLogger("ingestbox.transcode")
TRANSCODE_KIND = "asset.transcode"
DONE_STATES = ("completed", "skipped")
MEMORY_WAIT_SECONDS = 600.0
EXTENSIONS = {"video/mp4": ".mp4", "image/jpeg": ".jpg"}


class MemoryShort(RuntimeError):
    """Memory stayed short for the whole wait: the attempt fails and the retry comes later."""


@dataclass(frozen=True, slots=True)
class TranscodePolicy:
    """What the scheduler and the hardware probe decided, as this job needs it."""

    hwaccel: HwaccelReport
    quality: Quality = field(default_factory=Quality)
    threads: int = 0
    min_free_memory: int = 512 * 1024 * 1024
    hybrid_decode: bool = False
    # How a ladder is run: in a supervised child process (tests may run it in-process).
    runner: Callable[..., list[Output]] = run_in_child

    def encoder_chain(self) -> list[EncoderChoice]:
        """The per-job fallback order: hardware decode and encode, software decode and hardware encode,
        then software. With `hybrid_decode`, a GPU that decodes but cannot encode still decodes."""
        chain = []
        software = EncoderChoice(SOFTWARE, self.quality, self.threads)
        chosen = self.hwaccel.chosen
        if chosen in DECODER_FOR:
            hardware = EncoderChoice(BACKENDS_BY_NAME[chosen], self.quality)
            decoder = DECODER_FOR[chosen]
            if self.hwaccel.usable_decoder(decoder):
                chain.append(EncoderChoice(hardware.backend, self.quality, hw_decode=decoder))
            chain.append(hardware)
        elif self.hybrid_decode:
            usable = [d.device_type for d in self.hwaccel.decoders if d.usable]
            if usable:
                chain.append(EncoderChoice(SOFTWARE, self.quality, self.threads, hw_decode=usable[0]))
        chain.append(software)
        return chain


def wait_for_memory(min_free: int, ctx: JobContext, limit: float = MEMORY_WAIT_SECONDS) -> None:
    """A new transcode waits while memory is short rather than pushing the box into swap or the OOM killer."""
    deadline = time.monotonic() + limit
    warned = False
    while (available := psutil.virtual_memory().available) < min_free:
        if not warned:
            log.warning("transcode %s waits: %d MiB available, %d MiB wanted", ctx.job_id, available >> 20,
                        min_free >> 20)
            warned = True
        if time.monotonic() >= deadline:
            raise MemoryShort(f"memory stayed below {min_free >> 20} MiB for {limit:g}s")
        time.sleep(2.0)


def register_transcoding(engine: JobEngine, assets: AssetRecords, store: ObjectStore, work_dir: Path,
                         policy: TranscodePolicy, metrics: Metrics, notifier: AssetNotifier) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)

    @engine.register("media-transcoding", TRANSCODE_KIND)
    def transcode_asset(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        asset = assets.get(payload["asset_id"])
        if asset is None:
            return {"skipped": "the asset no longer exists"}
        try:
            result = run_ladder(asset, ctx)
        except Exception as exc:
            if ctx.is_last_failure(exc):  # the last attempt: say so on the variants and to the user
                now = engine.clock()
                for variant in assets.variants(asset.id):
                    if variant["state"] not in DONE_STATES:
                        assets.set_variant(asset.id, variant["name"], "failed", now, detail={"error": str(exc)})
                notifier.finished(asset.id, error=str(exc))
            raise
        notifier.finished(asset.id)
        return result

    def run_ladder(asset: Asset, ctx: JobContext) -> dict[str, Any]:
        # A rerun (retry, or recovery after a crash) makes only what is not done yet: no duplicate variants.
        done = {v["name"] for v in assets.variants(asset.id) if v["state"] in DONE_STATES}
        wanted = tuple(name for name in LADDER_NAMES if name not in done)
        meta = asset.metadata
        ladder = plan(int(meta["width"]), int(meta["height"]), int(meta.get("rotation") or 0), meta.get("duration"),
                      wanted)
        for name, why in ladder.skipped.items():
            assets.set_variant(asset.id, name, "skipped", engine.clock(), detail={"reason": why})
        if not ladder.targets:
            return {"asset_id": asset.id, "made": [], "skipped": sorted(ladder.skipped)}
        for target in ladder.targets:
            assets.set_variant(asset.id, target.name, "active", engine.clock())
        wait_for_memory(policy.min_free_memory, ctx)
        made: list[str] = []
        with tempfile.TemporaryDirectory(dir=work_dir, prefix=f"{asset.id}-") as scratch:
            source = Path(scratch) / "original"
            with store.open_reader(asset.original_key) as reader, open(source, "wb") as copy:
                shutil.copyfileobj(reader, copy, 1024 * 1024)
            ctx.progress(2)
            chain = policy.encoder_chain()
            for index, choice in enumerate(chain):
                out_dir = Path(scratch) / f"try-{index}"
                out_dir.mkdir()

                def store_output(output: Output, encoder: str = choice.label) -> None:
                    key = f"assets/{asset.id}/{output.name}{EXTENSIONS[output.mime]}"
                    size = store.put_file(key, output.path, output.mime)
                    detail = {"duration": output.duration, "codec": output.codec, "encoder": encoder}
                    assets.set_variant(asset.id, output.name, "completed", engine.clock(), key, output.mime,
                                       output.width, output.height, size, detail)
                    made.append(output.name)

                started = time.monotonic()
                try:
                    policy.runner(source, out_dir, [t for t in ladder.targets if t.name not in made], choice,
                                 on_progress=lambda fraction: ctx.progress(2 + 97 * fraction),
                                 on_output=store_output)
                except EncoderFailed as exc:
                    if index + 1 == len(chain):
                        raise
                    fallback = chain[index + 1].label
                    # Never silent: logged, counted in /metrics, and recorded on the variants' detail.
                    log.warning("transcode %s: %s; falling back to %s", ctx.job_id, exc, fallback)
                    metrics.encoder_fallbacks.labels(choice.label, fallback).inc()
                    continue
                metrics.transcode_seconds.labels(choice.label).observe(time.monotonic() - started)
                return {"asset_id": asset.id, "made": made, "skipped": sorted(ladder.skipped),
                        "encoder": choice.label}
        raise AssertionError("the encoder chain always ends with libx264")  # pragma: no cover
