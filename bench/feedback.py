"""2,000 signed feedback clicks (10% of them repeats) at 200 per second into the real app.

The web process as production runs it (`churnbot serve`: gunicorn, gthread workers) on a
loopback port, a redis-server of its own (AOF on, fsync every second), and the Slack emulator
for the Web API in this process. 1,800 distinct clicks (30 CSMs x 20 accounts x 3 answers, half on
a channel digest, the rest on ephemeral cards) plus 200 repeats of earlier ones (double clicks,
Slack retries, a second tab; some sent in the same instant as their original) are sent open
loop: click i leaves at start + i/200 s whatever happened before. Prints the acknowledgement
latency (p50/p90/p99/max) and checks that exactly 1,800 events were stored.

Usage: .venv/bin/python bench/feedback.py [--rate 200] [--clicks 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback import feedback_store
from bot.render import DigestContent, FeedbackRef, digest_messages
from bot.settings import load_settings
from bot.state import SnapshotMeta, connect, ping

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH001"
KINDS = ("feedback_helpful", "feedback_not_helpful", "feedback_action_done")


def card(i: int) -> dict[str, Any]:
    return {
        "account_id": f"ACC-{i:06d}",
        "account_name": f"Bench Account {i}",
        "owner": "maria.lopez@example.com",
        "segment": ("smb", "mid_market", "enterprise")[i % 3],
        "plan": "growth",
        "arr": 24_000.0,
        "as_of": "2026-11-16",
        "renewal_date": "2027-01-10",
        "risk": round(0.9 - i / 100, 4),
        "band": "high",
        "reasons": [{"code": "usage_decline", "text": "Logins down 48% on 30 days", "impact": 0.9}],
        "healthy": None,
        "action": {
            "rule": "usage-drop",
            "action": "Invite them to a webinar",
            "why": "x",
            "owner": "CSM",
        },
        "model_version": "20261116-abcdef0123",
        "previous_risk": None,
        "change": None,
    }


def payload(click: dict[str, Any], emulator: SlackEmulator, digest: dict[str, Any]) -> str:
    """The signed body of one click, as Slack would send it."""
    body: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0CHURNBOT", "domain": "example"},
        "user": {"id": click["user"], "username": click["user"].lower(), "team_id": "T0CHURNBOT"},
        "api_app_id": "A0CHURNBOT",
        "trigger_id": f"trig.{uuid.uuid4().hex}",
        "response_url": emulator.response_url(uuid.uuid4().hex),
        "actions": [
            {
                "type": "button",
                "action_id": click["kind"],
                "block_id": f"fb:{click['account']}",
                "value": click["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if click["surface"] == "digest":
        body["container"] = {
            "type": "message",
            "message_ts": digest["ts"],
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        }
        body["channel"] = {"id": CHANNEL}
        body["message"] = digest
    else:
        body["container"] = {  # each user's /churn card is a message of its own
            "type": "message",
            "message_ts": f"{1_795_000_000 + int(click['user'][-4:])}.{click['account'][-6:]}",
            "channel_id": "C0GENERAL1",
            "is_ephemeral": True,
        }
    return urlencode({"payload": json.dumps(body)})


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Bounded polling for a process to come up."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up within {timeout:g} s")
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of our own, with AOF and fsync every second (as production should run)."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: ping(redis.Redis(port=port)), "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def web_process(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """A gunicorn web process on ``env["PORT"]``, up when its /healthz answers."""
    web = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        wait_until(lambda: answers(url + "/healthz"), " ".join(command[:3]))
        yield url
    finally:
        web.terminate()
        web.wait(timeout=30)


def floor() -> Callable[..., Any]:
    """The framework's floor, served by `gunicorn "feedback:floor()"`: the same signature
    check and body parsing, a listener that only acknowledges, nothing stored."""
    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=True,
        token_verification_enabled=False,
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    )

    @app.action(re.compile("^feedback_"))
    def ack_only(ack: Any) -> None:
        ack()

    handler = SlackRequestHandler(app)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return handler(environ, start_response)

    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--clicks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()
    rng = random.Random(7)
    bench_dir = Path(__file__).resolve().parent
    with (
        SlackEmulator() as emulator,
        tempfile.TemporaryDirectory() as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "REDIS", "CHURNBOT"))
            },
            "REDIS_URL": redis_url,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
            "CHURNBOT_CONFIG": str(CONFIG),
            "CHURNBOT_VAR": str(Path(tmp) / "var"),
            "PORT": str(free_port()),
        }
        client = connect(redis_url)
        settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
        deps = build_deps(settings, client=client)  # the web process's prefix and book
        now = dt.datetime.now(dt.UTC)
        cards = [card(i) for i in range(20)]
        meta = SnapshotMeta(
            snapshot_id=f"{now:%Y%m%dT%H%M%S}-bench",
            as_of="2026-11-16",
            model_version="20261116-abcdef0123",
            created_at=now.isoformat(),
            healthy=True,
            n_accounts=len(cards),
        )
        deps.store.publish_cards(meta, cards)
        message = digest_messages(
            DigestContent("Churn risk", "#bench", "today", None, cards[:10], meta.snapshot_id)
        )[0]
        web = WebClient(token=emulator.token, base_url=emulator.base_url)
        posted = web.chat_postMessage(channel=CHANNEL, text=message.text, blocks=message.blocks)
        sequence, distinct = clicks(rng, cards, meta, message.blocks, args.clicks)
        bodies = [payload(click, emulator, posted["message"]) for click in sequence]
        gunicorn = [sys.executable, "-m", "gunicorn", "--chdir", str(bench_dir), "-k", "gthread"]
        floor_command = [*gunicorn, "-w", str(args.workers), "--threads", "16",
                         "-b", f"127.0.0.1:{env['PORT']}", "feedback:floor()"]  # fmt: skip
        with web_process(floor_command, env) as url:
            print("the floor: a bare Bolt app that only acknowledges", flush=True)
            bare, _, _ = send_all(url, bodies, args.rate)
        serve = [str(Path(sys.executable).with_name("churnbot")), "serve",
                 "--workers", str(args.workers), "--threads", "16"]  # fmt: skip
        with web_process(serve, env) as url:
            print("churnbot serve", flush=True)
            latencies, failures, wall = send_all(url, bodies, args.rate)
        store = feedback_store(deps)
        stored = client.xlen(store.stream)
        readable = sum(1 for _ in store.events())
        deps.background.shutdown(wait=True)
        updates = len(emulator.calls("chat.update")) + len(emulator.calls("response_url"))

    print(
        f"\n{len(sequence):,} feedback clicks ({distinct:,} distinct, "
        f"{len(sequence) - distinct:,} repeats) at {args.rate:g}/s over loopback, gunicorn "
        f"{args.workers} workers x 16 threads; churnbot's run took {wall:.1f} s "
        f"({len(sequence) / wall:.0f}/s)"
    )
    for label, values in (("bare Bolt app (floor)", bare), ("churnbot serve", latencies)):
        print(
            f"{label:<22} ack p50 {percentile(values, 50) * 1e3:7.2f} ms · p90 "
            f"{percentile(values, 90) * 1e3:7.2f} ms · p99 {percentile(values, 99) * 1e3:7.2f} ms "
            f"· max {max(values) * 1e3:7.2f} ms"
        )
    print(f"non-200 answers: {len(failures)}" + (f" (first: {failures[0]})" if failures else ""))
    print(f"events stored: {stored:,} (readable: {readable:,}); expected exactly {distinct:,}")
    print(f"message updates after the acks (coalesced per message): {updates:,}")
    if stored != distinct or failures:
        raise SystemExit("FAILED: the stored count is not the number of distinct clicks")


def clicks(
    rng: random.Random,
    cards: list[dict[str, Any]],
    meta: SnapshotMeta,
    digest_blocks: list[dict[str, Any]],
    total: int,
) -> tuple[list[dict[str, Any]], int]:
    """The clicks in sending order: 90% distinct, 10% repeats placed after their original
    (right after it, or later), and the number of distinct ones."""
    values = {
        block["block_id"][3:]: block["elements"][0]["value"]
        for block in digest_blocks
        if str(block.get("block_id", "")).startswith("fb:")
    }
    unique = []
    for u in range(30):
        for c in cards:
            for kind in KINDS:
                surface = "digest" if c["account_id"] in values else "card"
                ref = FeedbackRef(
                    c["account_id"], meta.snapshot_id, c["model_version"], c["risk"],
                    "usage-drop", "card",
                )  # fmt: skip
                unique.append(
                    {
                        "user": f"U0BENCH{u:04d}",
                        "account": c["account_id"],
                        "kind": kind,
                        "surface": surface,
                        "value": values[c["account_id"]] if surface == "digest" else ref.to_value(),
                    }
                )
    distinct = total * 9 // 10
    unique = rng.sample(unique, distinct)
    sequence = list(unique)
    for _ in range(total - distinct):
        original = sequence.index(unique[rng.randrange(distinct)])
        sequence.insert(rng.randint(original + 1, len(sequence)), sequence[original])
    return sequence, distinct


def send_all(url: str, bodies: list[str], rate: float) -> tuple[list[float], list[str], float]:
    """Open loop: body i leaves at start + i/rate, whatever happened to the ones before."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    # A fresh connection per click: gunicorn closes idle keep-alive connections after 2 s, and
    # a request racing that close fails with no answer (a client artefact, not the app's).
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=0)
    with httpx.Client(timeout=10, limits=limits) as http:
        sender = SlackSender(url, SECRET, client=http)

        def send(body: str) -> None:
            started = time.perf_counter()
            response = sender.post(body)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")

        print(f"sending {len(bodies):,} clicks at {rate:g}/s ...", flush=True)
        with ThreadPoolExecutor(max_workers=64) as pool:
            start = time.perf_counter()
            futures = []
            for i, body in enumerate(bodies):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the load generator, not synchronising
                futures.append(pool.submit(send, body))
            for future in futures:
                future.result()
            wall = time.perf_counter() - start
    return latencies, failures, wall


if __name__ == "__main__":
    main()
