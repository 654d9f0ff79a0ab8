"""Instructions per feedback click, churnbot's web worker against the bare Bolt app, counted by
callgrind.

``bench/feedback.py`` sends 200 clicks a second over HTTP to both on gunicorn: the wall-clock
ratio the target is set in, which swings with the machine's load. This script counts what each
side executes for a click instead, which does not: each runs in a process of its own under
valgrind's callgrind, one thread, its WSGI callable called directly with a signed POST
(``bot.emulator.sender.signed_headers``; the headers httpx sends, the environ keys gunicorn
sets). churnbot's side is built as a ``churnbot serve`` worker builds it
(``bot.cli.serve.web_app``: its Redis client, door, Bolt app, listeners and multiprocess
metrics) and writes each click's access line through gunicorn's logger as the worker does
(``bot.logs.GunicornLogger``, ``gunicorn_options``); the floor is ``bench/feedback.py``'s
``floor()``, which logs no access line, as there. gunicorn's HTTP parsing and socket writes,
which both pay, are left out of both, so the ratio here is above the CPU ratio over HTTP.

The clicks are ``bench/feedback.py``'s (its seed, its bodies: half on a posted digest, whose
body carries the whole message, half on ``/churn`` cards; 10% repeats), new users each run.
``--warm-up`` clicks first (the app built, its first Slack call made, the card reads loaded),
then collection is switched on (``callgrind_control``) for ``--clicks`` more and off again.
The worker writes to the Redis of ``--redis-url`` under its own ``churnbot:`` keys, so that
database must hold none (they are deleted at the end); Slack's emulator runs in this process,
outside valgrind. After each churnbot run the stored events are counted: exactly one per
distinct click, or the run fails.

Prints the instructions per click of each (min and median of ``--runs`` alternating runs) and
churnbot's ratio to the floor. Needs valgrind; a run of both takes a few minutes.

Usage: ``.venv/bin/python bench/click_instructions.py [--clicks 300] [--warm-up 50] [--runs 3]
[--redis-url redis://127.0.0.1:6379/12] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import os
import random
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _callgrind import collect, counted, require_valgrind
from _common import delete_prefix, say, versus_floor
from feedback import CONFIG, SECRET, clicks, floor, payload, seed
from gunicorn.config import Config
from gunicorn.http.wsgi import base_environ

from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import signed_headers
from bot.feedback import feedback_store
from bot.logs import configure_logging
from bot.settings import load_settings
from bot.state import connect

SIDES = ("floor", "churnbot")
#: gunicorn as bench/feedback.py runs both servers.
WORKERS, THREADS, HOST, PORT = 2, 16, "127.0.0.1", 8000
#: The worker's own keys (``churnbot serve`` has no prefix of its own to give).
PREFIX = "churnbot"
#: The clicks' timestamp is this far ahead of the clock when they are signed: Slack's window
#: (5 minutes either way) then lasts until well after a slow run under valgrind.
SIGNED_AHEAD_S = 240


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=300, help="clicks counted per run")
    parser.add_argument("--warm-up", type=int, default=50, help="clicks before counting")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs (3 for a figure)")
    parser.add_argument(
        "--redis-url",
        # Not a database the test suite uses (0, and 11 for "a configured Redis"): a suite run
        # beside the bench deleted the worker's claim keys mid-run, and a repeated click was
        # stored again.
        default="redis://127.0.0.1:6379/12",
        help="a Redis database holding no churnbot: keys (the worker's are written there)",
    )
    parser.add_argument("--keep", type=Path, help="keep each run's callgrind output here")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        click_counted(args.child, json.loads(args.bodies.read_text()))
        return
    require_valgrind()
    client = connect(args.redis_url)
    if next(client.scan_iter(match=f"{PREFIX}:*", count=1_000), None) is not None:
        raise SystemExit(f"{args.redis_url} holds {PREFIX}: keys: give an empty database")
    per_click: dict[str, list[float]] = {side: [] for side in SIDES}
    try:
        with SlackEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
            deps = build_deps(load_settings({"CHURNBOT_CONFIG": str(CONFIG)}), client=client)
            meta, posted = seed(deps, emulator.token, emulator.base_url)
            stream = feedback_store(deps).stream
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS"))},
                "REDIS_URL": args.redis_url,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.token,
                "SLACK_API_URL": emulator.base_url,
                "CHURNBOT_CONFIG": str(CONFIG),
                "CHURNBOT_VAR": str(Path(tmp) / "var"),
            }
            for run in range(args.runs):
                rng = random.Random(7)  # the same clicks each run, by new users
                spec: dict[str, Any] = {}
                for phase, total, round_number in (
                    ("warm", args.warm_up, 2 * run),
                    ("counted", args.clicks, 2 * run + 1),
                ):
                    sequence, distinct = clicks(
                        rng, round_number, meta, posted["message"]["blocks"], total
                    )
                    spec[phase] = [
                        payload(click, emulator.response_url(f"r{i}"), posted["message"])
                        for i, click in enumerate(sequence)
                    ]
                    spec[f"{phase}_distinct"] = distinct
                bodies = Path(tmp) / f"bodies-{run}.json"
                bodies.write_text(json.dumps(spec))
                for side in SIDES:
                    before = client.xlen(stream)
                    count = instructions(side, bodies, env, Path(tmp), args.keep, run)
                    stored = client.xlen(stream) - before
                    expected = (
                        spec["warm_distinct"] + spec["counted_distinct"] if side != "floor" else 0
                    )
                    if stored != expected:
                        raise SystemExit(
                            f"FAILED: run {run + 1}, {side}: {stored} events stored for "
                            f"{expected} distinct clicks"
                        )
                    per_click[side].append(count / args.clicks)
                    say(f"run {run + 1}: {side}: {count / args.clicks / 1e6:.3f}M a click")
    finally:
        delete_prefix(client, PREFIX)
    print(
        f"instructions per feedback click (callgrind, the WSGI callable called directly, "
        f"{args.clicks} clicks after {args.warm_up} to warm up, {args.runs} alternating runs):"
    )
    for side, counts in per_click.items():
        low, mid = min(counts) / 1e6, statistics.median(counts) / 1e6
        print(f"  {side:<9} min {low:.3f}M  median {mid:.3f}M")
    low, mid = versus_floor(per_click["churnbot"], per_click["floor"])
    print(f"  churnbot / floor: min {low:.2f}x  median {mid:.2f}x")
    print(
        f"  events stored: one per distinct click in every churnbot run "
        f"({spec['counted_distinct']} distinct of {args.clicks} counted)"
    )


def instructions(
    side: str, bodies: Path, env: dict[str, str], tmp: Path, keep: Path | None, run: int
) -> int:
    """What callgrind counted while the child ``side`` served its counted clicks."""
    out = (keep or tmp) / f"callgrind.{side}.{run + 1}"
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp) as metrics:  # as `churnbot serve` sets it up
        count, stderr = counted(
            [__file__, "--child", side, "--bodies", str(bodies)],
            out,
            side,
            env={**env, "PROMETHEUS_MULTIPROC_DIR": metrics},
        )
    complaints = re.findall(r'^\{.*"level": "(?:WARNING|ERROR|CRITICAL)".*$', stderr, re.M)
    if complaints and side != "floor":  # the floor's Bolt warns at start that its token is unused
        raise SystemExit(f"{side} logged {len(complaints)} warnings:\n" + "\n".join(complaints[:5]))
    return count


@dataclass(frozen=True)
class _Answered:
    """What gunicorn's access line reads of a response (``bot.logs.GunicornLogger``)."""

    status: str
    sent: int


@dataclass(frozen=True)
class _Request:
    """What gunicorn's access line reads of a request: its headers, as gunicorn parsed them."""

    headers: list[tuple[str, str]]


def click_counted(side: str, spec: dict[str, Any]) -> None:
    """The child: build one side, warm it up, then serve the counted clicks with collection
    on. Every answer must be a 200."""
    configure_logging()  # as the `churnbot` CLI does before `serve`
    cfg = Config()
    access: Callable[[dict[str, Any], _Answered, _Request], None] | None = None
    if side == "floor":
        app = floor()
        cfg.set("workers", WORKERS)
    else:
        from bot.cli.common import settings_from_environment
        from bot.cli.serve import gunicorn_options, web_app

        settings = settings_from_environment()
        for key, value in gunicorn_options(HOST, settings, WORKERS, THREADS).items():
            cfg.set(key, value)
        app = web_app(settings, metrics_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"])
        logger = cfg.logger_class(cfg)
        took = dt.timedelta(microseconds=1_500)

        def access(environ: dict[str, Any], answered: _Answered, request: _Request) -> None:
            logger.access(answered, request, environ, took)

    warm = [answer(app, environ, request, access) for environ, request in signed(spec["warm"], cfg)]
    from bot.cli.serve import BUILD_THREAD, CARD_READS_THREAD

    for thread in threading.enumerate():  # the app built and the card reads loaded
        if thread.name in (BUILD_THREAD, CARD_READS_THREAD):
            thread.join()
    gc.collect()
    gc.freeze()  # what warming up made is not walked by the counted clicks' collections
    requests = signed(spec["counted"], cfg)
    collect("on")
    answers = [answer(app, environ, request, access) for environ, request in requests]
    collect("off")
    refused = [status for status in warm + answers if not status.startswith("200")]
    if refused:
        raise SystemExit(f"{len(refused)} clicks answered {refused[:3]}, not 200")


def signed(bodies: list[str], cfg: Config) -> list[tuple[dict[str, Any], _Request]]:
    """Each body as gunicorn hands it to the app: the environ of an httpx POST signed as
    Slack signs (``bench/feedback.py`` sends them with httpx), and the parsed headers."""
    stamp = str(int(time.time()) + SIGNED_AHEAD_S)
    client = httpx.Client()
    requests = []
    for body in bodies:
        sent = client.build_request(
            "POST",
            f"http://{HOST}:{PORT}/slack/events",
            content=body.encode(),
            headers=signed_headers(SECRET, stamp, body),
        )
        headers = [(k.decode().upper(), v.decode()) for k, v in sent.headers.raw]
        environ = {
            **base_environ(cfg),
            "wsgi.input": io.BytesIO(sent.content),
            "wsgi.multithread": True,
            "wsgi.url_scheme": "http",
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": "",
            "RAW_URI": "/slack/events",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": HOST,
            "REMOTE_PORT": "54321",
            "SERVER_NAME": HOST,
            "SERVER_PORT": str(PORT),
            "PATH_INFO": "/slack/events",
            "SCRIPT_NAME": "",
        }
        for name, value in headers:
            if name in ("CONTENT-TYPE", "CONTENT-LENGTH"):
                environ[name.replace("-", "_")] = value
            else:
                environ["HTTP_" + name.replace("-", "_")] = value
        requests.append((environ, _Request(headers)))
    client.close()
    return requests


def answer(
    app: Callable[..., Iterable[bytes]],
    environ: dict[str, Any],
    request: _Request,
    access: Callable[[dict[str, Any], _Answered, _Request], None] | None,
) -> str:
    """One request through the WSGI callable, its body read as gunicorn writes it out, and its
    access line if the side logs one: the status."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return None

    result = app(environ, start_response)
    sent = sum(len(chunk) for chunk in result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    if access is not None:
        access(environ, _Answered(statuses[0], sent), request)
    return statuses[0]


if __name__ == "__main__":
    main()
