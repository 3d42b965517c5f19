"""Transcode benchmark: ingestbox's ladder against the ffmpeg CLI making the same four outputs.

    python -m bench.transcode --json

Source: a generated 20 s 1080p30 H.264 + AAC clip (FFmpeg's testsrc2 with temporal noise, so
the encoder has real work). ingestbox runs its ladder the way a media-transcoding job does
(one decode, every rung fed from it, in a spawned child process). In the same run the Debian
ffmpeg CLI makes the same outputs (same sizes, libx264 preset and CRF, AAC 128k, faststart)
once in one command (split filter) and once in four commands. Reports wall and CPU seconds,
output sizes, and the SSIM of ingestbox's 720p against the CLI's. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.jobs.scheduler import decide_for_this_machine
from hwaccel.backends import Quality
from transcode.child import run_in_child
from transcode.describe import describe_video
from transcode.ladder import LadderPlan, plan
from transcode.pipeline import EncoderChoice


def make_source(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-vf", "noise=alls=6:allf=t+u", "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", "-shortest", str(path)],
        check=True,
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(run: Any) -> tuple[float, float]:
    cpu, start = children_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - start, children_cpu() - cpu


def video_args(quality: Quality) -> list[str]:
    return ["-c:v", "libx264", "-preset", quality.preset, "-crf", str(quality.crf), "-profile:v", "high",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart"]


def cli_one_command(source: Path, out: Path, ladder: LadderPlan, quality: Quality) -> None:
    rungs = {t.name: t for t in ladder.targets}
    names = [n for n in ("1080p", "720p", "preview", "thumbnail") if n in rungs]
    chains = []
    for index, name in enumerate(names):
        t = rungs[name]
        scale = f"scale={t.width}:{t.height}:flags=bicubic"
        if name == "preview":
            chains.append(f"[s{index}]trim=end={t.max_seconds},{scale}[o{index}]")
        elif name == "thumbnail":
            chains.append(f"[s{index}]select='gte(t\\,{t.at_seconds})',{scale}[o{index}]")
        else:
            chains.append(f"[s{index}]{scale}[o{index}]")
    graph = f"[0:v]split={len(names)}" + "".join(f"[s{i}]" for i in range(len(names))) + ";" + ";".join(chains)
    args = ["ffmpeg", "-y", "-v", "error", "-i", str(source), "-filter_complex", graph]
    for index, name in enumerate(names):
        if name == "thumbnail":
            args += ["-map", f"[o{index}]", "-frames:v", "1", "-q:v", "3", str(out / "thumbnail.jpg")]
        else:
            limit = ["-t", str(rungs[name].max_seconds)] if name == "preview" else []
            args += ["-map", f"[o{index}]", "-map", "0:a?", *video_args(quality), *limit, str(out / f"{name}.mp4")]
    subprocess.run(args, check=True)


def cli_four_commands(source: Path, out: Path, ladder: LadderPlan, quality: Quality) -> None:
    for t in ladder.targets:
        scale = ["-vf", f"scale={t.width}:{t.height}:flags=bicubic"]
        if t.kind == "image":
            args = ["-ss", str(t.at_seconds), "-i", str(source), *scale, "-frames:v", "1", "-q:v", "3",
                    str(out / "thumbnail.jpg")]
        else:
            limit = ["-t", str(t.max_seconds)] if t.max_seconds else []
            args = ["-i", str(source), *scale, *video_args(quality), *limit, str(out / f"{t.name}.mp4")]
        subprocess.run(["ffmpeg", "-y", "-v", "error", *args], check=True)


def ssim(ours: Path, theirs: Path) -> float:
    result = subprocess.run(
        ["ffmpeg", "-v", "info", "-i", str(ours), "-i", str(theirs), "-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )
    match = re.search(r"All:([0-9.]+)", result.stderr)
    return float(match.group(1)) if match else float("nan")


def sizes(folder: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_size for p in sorted(folder.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each contender; medians are reported")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    quality = Quality()
    decision = decide_for_this_machine()
    work = Path(tempfile.mkdtemp(prefix="ingestbox-bench-transcode-"))
    try:
        source = work / "source.mp4"
        make_source(source, args.seconds)
        meta = describe_video(str(source))
        ladder = plan(meta["width"], meta["height"], meta["rotation"], meta["duration"])
        choice = EncoderChoice(quality=quality, threads=decision.threads_per_transcode)
        results: dict[str, list[tuple[float, float]]] = {"ingestbox": [], "one": [], "four": []}
        for run in range(args.runs):
            for name, folder_name in (("ingestbox", "ours"), ("one", "cli-one"), ("four", "cli-four")):
                folder = work / folder_name
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                if name == "ingestbox":
                    results[name].append(timed(lambda f=folder: run_in_child(source, f, ladder.targets, choice)))
                elif name == "one":
                    results[name].append(timed(lambda f=folder: cli_one_command(source, f, ladder, quality)))
                else:
                    results[name].append(timed(lambda f=folder: cli_four_commands(source, f, ladder, quality)))
                print(f"run {run + 1} {name}: wall {results[name][-1][0]:.2f} s, cpu {results[name][-1][1]:.2f} s",
                      flush=True)
        wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
        ours, theirs = sizes(work / "ours"), sizes(work / "cli-one")
        summary = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "source": f"{args.seconds} s 1080p30 H.264 + AAC", "preset": quality.preset, "crf": quality.crf,
            "threads": decision.threads_per_transcode, "runs": args.runs,
            "wall_s": round(wall["ingestbox"], 2), "cpu_s": round(cpu["ingestbox"], 2),
            "cli_one_command_s": round(wall["one"], 2), "cli_one_command_cpu_s": round(cpu["one"], 2),
            "cli_four_commands_s": round(wall["four"], 2), "cli_four_commands_cpu_s": round(cpu["four"], 2),
            "ratio_vs_one_command": round(wall["ingestbox"] / wall["one"], 3),
            "ratio_vs_four_commands": round(wall["ingestbox"] / wall["four"], 3),
            "sizes": ours, "cli_sizes": theirs,
            "size_ratio_1080p": round(ours["1080p"] / theirs["1080p"], 3) if "1080p" in ours else None,
            "size_ratio_720p": round(ours["720p"] / theirs["720p"], 3),
            "ssim_720p": round(ssim(work / "ours" / "720p.mp4", work / "cli-one" / "720p.mp4"), 4),
        }
        for key, value in summary.items():
            if not args.json:
                print(f"{key}: {value}")
        if args.json:
            print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
