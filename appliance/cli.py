"""The `ingestbox` command line of SPEC.md: parse, call, print."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from appliance import __version__, frozen
from appliance.config import Settings, load_settings
from appliance.errors import ConfigError

EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance.serve import serve

    return serve(_settings(args))


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"{settings.source}: OK")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from appliance.doctor import doctor_report, render_doctor

    try:
        settings = _settings(args)
    except ConfigError:
        settings = Settings()
    report = doctor_report(settings)
    print(json.dumps(report, indent=2) if args.json else render_doctor(report))
    return 0


class ServerUnreachable(Exception):
    pass


def _api(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the running server's API with the configured or generated token."""
    from appliance.storage.factory import public_base_url

    tokens = list(settings.server.api_tokens)
    token_file = settings.server.api_token_file or settings.server.data_dir / "api-token"
    if not tokens and token_file.exists():
        tokens = [line.strip() for line in token_file.read_text().splitlines() if line.strip()]
    if not tokens:
        raise ServerUnreachable(f"no API token configured and none at {token_file}; has the server started?")
    url = public_base_url(settings) if not settings.server.public_url else settings.server.public_url
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {tokens[0]}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", {})
        raise ServerUnreachable(f"{method} {path}: {exc.code} {detail.get('message', exc.reason)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachable(
            f"the server at {url} is not answering ({reason}); is `ingestbox serve` running?"
        ) from None


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.jobs.table import render_table

    rows = _api(_settings(args), "GET", "/v1/queues")["items"]
    print(render_table(rows))
    if rows:
        print(f"\nRetry policy: {rows[0]['retry']} (per queue: see /v1/queues)")
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    items = _api(_settings(args), "GET", f"/v1/dlq?limit={args.limit}")["items"]
    if not items:
        print("The dead letter queue is empty.")
        return 0
    print(f"{'ID':<38} {'Queue':<19} {'Kind':<22} {'Attempts':<9} {'Died (UTC)':<25} Error")
    for job in items:
        error = (job.get("error") or "").replace("\n", " ")
        print(
            f"{job['id']:<38} {job['queue']:<19} {job['kind']:<22} "
            f"{job['attempts']}/{job['max_attempts']:<7} {job['finished_at'] or '':<25} {error}"
        )
    return 0


def cmd_dlq_retry(args: argparse.Namespace) -> int:
    job = _api(_settings(args), "POST", f"/v1/dlq/{urllib.parse.quote(args.id, safe='')}/retry", {})
    print(f"{job['id']} is {job['state']} again on {job['queue']}")
    return 0


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 15m, 12h, 7d or 2w")
    return float(match.group(1)) * _UNIT[match.group(2)]


def cmd_dlq_purge(args: argparse.Namespace) -> int:
    answer = _api(_settings(args), "POST", "/v1/dlq/purge", {"older_than_seconds": args.older_than})
    print(f"purged {answer['purged']} dead job(s)")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from appliance.runtime import versions

    info = versions()
    print(f"ingestbox {__version__}")
    print(f"Python {info['python']}, FFmpeg {info['ffmpeg']}, PyAV {info['pyav']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingestbox", description="uploads, webhooks and media jobs on one box")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $INGESTBOX_CONFIG, "
                       "/etc/ingestbox/ingestbox.toml, else built-in defaults)")
        return p

    with_config(sub.add_parser("serve", help="run the server, the queues and the transcoder")).set_defaults(
        func=cmd_serve
    )
    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    with_config(config.add_parser("check", help="validate the config; exit 2 naming each error")).set_defaults(
        func=cmd_config_check
    )
    doctor = with_config(sub.add_parser("doctor", help="hardware encoders, libmagic, clamd, storage, database"))
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=cmd_doctor)
    with_config(sub.add_parser("status", help="the queue table, live from the running server")).set_defaults(
        func=cmd_status
    )
    dlq = sub.add_parser("dlq", help="the dead letter queue").add_subparsers(dest="dlq_command", required=True)
    dlq_list = with_config(dlq.add_parser("list", help="dead jobs, ids in full"))
    dlq_list.add_argument("--limit", type=int, default=100)
    dlq_list.set_defaults(func=cmd_dlq_list)
    dlq_retry = with_config(dlq.add_parser("retry", help="run a dead job again"))
    dlq_retry.add_argument("id")
    dlq_retry.set_defaults(func=cmd_dlq_retry)
    dlq_purge = with_config(dlq.add_parser("purge", help="delete dead jobs"))
    dlq_purge.add_argument("--older-than", type=parse_duration, default=0.0, metavar="AGE",
                           help="only jobs dead longer than AGE (30s, 15m, 12h, 7d, 2w); default all")
    dlq_purge.set_defaults(func=cmd_dlq_purge)
    sub.add_parser("version", help="versions of ingestbox, Python, FFmpeg and PyAV").set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    frozen.prepare()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except ServerUnreachable as exc:
        print(f"ingestbox: {exc}", file=sys.stderr)
        return 1
