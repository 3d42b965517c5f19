"""Transcodes in a supervised child process: an FFmpeg crash costs one attempt, never the server."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from transcode.describe import MediaError
from transcode.ladder import Target
from transcode.pipeline import EncoderChoice, EncoderFailed, Output, transcode

PR_SET_PDEATHSIG = 1
CHILD_NICENESS = 10
POLL_SECONDS = 0.5


class TranscodeCrashed(RuntimeError):
    """The child process died without a result (a signal, an abort inside FFmpeg, the OOM killer)."""


def _die_with_parent() -> None:
    """A child left behind by a killed server would burn CPU for nobody: ask Linux to kill it too."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_main(conn: Connection, source: str, out_dir: str, targets: list[Target], choice: EncoderChoice) -> None:
    _die_with_parent()
    # Background work yields the CPU to the request path: acks stay fast while a transcode runs.
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when a transcode stops, not a Ctrl-C
    try:
        transcode(source, out_dir, targets, choice,
                  on_progress=lambda fraction: conn.send(("progress", fraction)),
                  on_output=lambda output: conn.send(("output", output)))
        conn.send(("ok", None))
    except EncoderFailed as exc:
        conn.send(("encoder_failed", (exc.backend, str(exc))))
    except MediaError as exc:
        conn.send(("media_error", str(exc)))
    except Exception as exc:  # reported to the parent, which fails the attempt with this text
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def run_in_child(
    source: str | Path, out_dir: str | Path, targets: list[Target], choice: EncoderChoice,
    on_progress: Callable[[float], None] | None = None, on_output: Callable[[Output], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[Output]:
    """Run `transcode` in a fresh (spawned) process; outputs are handed to `on_output` as the child reports them."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main, args=(sender, str(source), str(out_dir), targets, choice),
        name="ingestbox-transcode", daemon=True,
    )
    process.start()
    sender.close()
    if on_start is not None and process.pid is not None:
        on_start(process.pid)
    outputs: list[Output] = []
    result: tuple[str, Any] | None = None
    try:
        while result is None:
            try:
                if not receiver.poll(POLL_SECONDS):
                    if not process.is_alive() and not receiver.poll(0):
                        break
                    continue
                kind, value = receiver.recv()
            except EOFError:
                break
            if kind == "progress" and on_progress is not None:
                on_progress(value)
            elif kind == "output":
                outputs.append(value)
                if on_output is not None:
                    on_output(value)
            elif kind != "progress":
                result = (kind, value)
    except BaseException:
        process.kill()  # the parent gave up (storing an output failed): stop encoding now
        raise
    finally:
        receiver.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    if result is None:
        raise TranscodeCrashed(f"the transcoder process died ({describe_exit(process.exitcode)})")
    kind, value = result
    if kind == "encoder_failed":
        raise EncoderFailed(value[0], value[1].removeprefix(f"{value[0]} encoder failed: "))
    if kind == "media_error":
        raise MediaError(value)
    if kind == "error":
        raise RuntimeError(value)
    return outputs
