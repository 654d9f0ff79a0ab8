"""Feedback clicks at 200 per second: churnbot's ack latency as a ratio to a bare Bolt app.

Four processes: this one generates the load (signed clicks, sent open loop: click i leaves at
start + i/rate whatever happened before) and measures each answer; the web server under test
(gunicorn, gthread workers: the bare Bolt app of :func:`floor`, or ``churnbot serve``); a
redis-server of its own (AOF on, fsync every second); and Slack's side, :func:`slack_side`
(the Web API emulator, plus the refresh drain ``churnbot worker`` runs, drawing the messages
after the clicks). Both servers stay up; each round sends the same bodies to the floor, then
to churnbot, and the rounds alternate that way at least three times. ``--drain during`` (the
default) lets the drain draw while churnbot is measured, on the same cores; ``--drain between``
runs it only between runs, as a worker on a machine of its own would not take the web
process's CPU (every refresh is drawn either way). The drain's thread runs at
config/feedback.yaml's ``refresh_nice``, as in ``churnbot worker``: it yields the cores to the
web process; the emulator's threads beside it (Slack's side) do not.

Each round's clicks are new (their own 30 CSMs x 20 accounts x 3 answers, half on a channel
digest, half on ephemeral ``/churn`` cards), 10% of them sent again (a double click, a Slack
retry, a second tab; some in the same instant as their original). After every churnbot round
the stored events are counted: exactly one per distinct click. Printed: p50 and p99 of the ack
latency per run, their ratios to the floor of the same round (min and median over rounds), and
how many message updates the drain made for how many clicks. Beside them, the CPU per click of
each server's gunicorn workers (user + system, read from Linux's /proc) and of Redis during
churnbot's runs (``INFO cpu``; with ``--drain during`` the drain's reads count too): on a
machine shared with other work the latencies swing with its load, the CPU a click costs much
less, and it says where a ratio comes from (2 cores carry the load generator, both servers'
workers and Redis).

Usage: .venv/bin/python bench/feedback.py [--rate 200] [--clicks 2000] [--rounds 3]
       [--workers 2] [--drain during|between]
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
from slack_sdk.web import SlackResponse

from bot.deps import Deps, build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback import feedback_store
from bot.feedback.drain import DrainThread, build_drain
from bot.render import DigestContent, FeedbackKey, digest_messages
from bot.settings import load_settings
from bot.state import SnapshotMeta, connect, ping

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH001"
KINDS = ("feedback_helpful", "feedback_not_helpful", "feedback_action_done")
USERS = 30
#: Threads sending the clicks (each with a client of its own).
SENDERS = 64
ACCOUNTS = 20


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


def payload(click: dict[str, Any], response_url: str, digest: dict[str, Any]) -> str:
    """The body of one click, as Slack would send it (signed when sent)."""
    body: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0CHURNBOT", "domain": "example"},
        "user": {"id": click["user"], "username": click["user"].lower(), "team_id": "T0CHURNBOT"},
        "api_app_id": "A0CHURNBOT",
        "trigger_id": f"trig.{uuid.uuid4().hex}",
        "response_url": response_url,
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
            "message_ts": f"{1_795_000_000 + int(click['user'][-6:])}.{click['account'][-6:]}",
            "channel_id": "C0GENERAL1",
            "is_ephemeral": True,
        }
    return urlencode({"payload": json.dumps(body)})


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Bounded polling for a process to come up or a queue to empty."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:g} s")
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
def web_process(command: list[str], env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A gunicorn web process on ``env["PORT"]``, up when its /healthz answers: its URL and
    the pid of its master (whose children are the workers)."""
    web = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        wait_until(lambda: answers(url + "/healthz"), " ".join(command[:3]))
        yield url, web.pid
    finally:
        web.terminate()
        web.wait(timeout=30)


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) the workers of a gunicorn ``master`` have used so far, from
    Linux's /proc (the children of its main thread)."""
    total = 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def redis_cpu(client: redis.Redis) -> float:
    """CPU seconds (user + system) the Redis server has used so far."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


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


def slack_side(redis_url: str, response_urls: int) -> None:
    """Slack's side, in a process of its own: the Web API emulator (whose URL is the first
    line printed) with ``response_urls`` response URLs issued (``r0``, ``r1``, ...), and the
    refresh drain of ``churnbot worker``, run between a ``start`` and a ``stop`` line on
    stdin. When stdin closes, prints what reached the emulator as one JSON line and exits."""
    with SlackEmulator() as emulator:
        for i in range(response_urls):
            emulator.response_url(f"r{i}")
        env = {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
            "REDIS_URL": redis_url,
        }
        deps = build_deps(load_settings(env), client=connect(redis_url))
        print(emulator.url, flush=True)
        drain: DrainThread | None = None
        for line in sys.stdin:
            if line.strip() == "start" and drain is None:
                drain = DrainThread(build_drain(deps)).start()
            elif line.strip() == "stop" and drain is not None:
                drain.stop()
                drain = None
        if drain is not None:
            drain.stop()
        calls = emulator.calls()
        print(
            json.dumps(
                {
                    "chat.update": sum(1 for c in calls if c.method == "chat.update" and c.ok),
                    "response_url": sum(1 for c in calls if c.method == "response_url" and c.ok),
                    "refused": sum(1 for c in calls if not c.ok),
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--clicks", type=int, default=2000, help="per run")
    parser.add_argument("--rounds", type=int, default=3, help="floor-then-churnbot pairs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--drain",
        choices=("during", "between"),
        default="during",
        help="the refresh drain draws while churnbot is measured (on the same cores), or only "
        "between runs (as a worker on a machine of its own would)",
    )
    parser.add_argument("--slack-side", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--response-urls", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slack_side:
        slack_side(args.slack_side, args.response_urls)
        return
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (min and median of alternating runs)")
    bench(args)


def bench(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    bench_dir = Path(__file__).resolve().parent
    total = args.clicks * args.rounds
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        side = subprocess.Popen(
            [sys.executable, __file__, "--slack-side", redis_url, "--response-urls", str(total)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert side.stdin is not None
        assert side.stdout is not None
        slack_url = side.stdout.readline().strip()
        if not slack_url:
            raise SystemExit("the Slack side did not start")
        emulator_token = SlackEmulator().token
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "REDIS", "CHURNBOT"))
            },
            "REDIS_URL": redis_url,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator_token,
            "SLACK_API_URL": f"{slack_url}/api/",
            "CHURNBOT_CONFIG": str(CONFIG),
            "CHURNBOT_VAR": str(Path(tmp) / "var"),
        }
        client = connect(redis_url)
        deps = build_deps(load_settings({"CHURNBOT_CONFIG": str(CONFIG)}), client=client)
        meta, posted = seed(deps, emulator_token, f"{slack_url}/api/")
        rounds = []
        for r in range(args.rounds):
            sequence, distinct = clicks(rng, r, meta, posted["message"]["blocks"], args.clicks)
            first = r * args.clicks
            bodies = [
                payload(click, f"{slack_url}/response_url/r{first + i}", posted["message"])
                for i, click in enumerate(sequence)
            ]
            rounds.append((bodies, distinct))
        gunicorn = [sys.executable, "-m", "gunicorn", "--chdir", str(bench_dir), "-k", "gthread"]
        floor_env = {**env, "PORT": str(free_port())}
        churnbot_env = {**env, "PORT": str(free_port())}
        floor_command = [*gunicorn, "-w", str(args.workers), "--threads", "16",
                         "-b", f"127.0.0.1:{floor_env['PORT']}", "feedback:floor()"]  # fmt: skip
        serve = [str(Path(sys.executable).with_name("churnbot")), "serve", "--host", "127.0.0.1",
                 "--workers", str(args.workers), "--threads", "16"]  # fmt: skip
        store = feedback_store(deps)
        results: list[tuple[list[float], list[float]]] = []
        cpu: list[tuple[float, float, float]] = []  # ms per click: floor, churnbot, Redis
        backlog: list[int] = []  # refreshes still queued when each churnbot run ended
        queue = store.refresh_stream

        def drain(command: str) -> None:
            assert side.stdin is not None
            side.stdin.write(command + "\n")
            side.stdin.flush()

        with (
            web_process(floor_command, floor_env) as (floor_url, floor_master),
            web_process(serve, churnbot_env) as (churnbot_url, churnbot_master),
        ):
            if args.drain == "during":
                drain("start")
            for r, (bodies, distinct) in enumerate(rounds, 1):
                print(f"round {r}: the bare Bolt app (floor)", file=sys.stderr, flush=True)
                floor_cpu = workers_cpu(floor_master)
                bare, bare_failures = send_all(floor_url, bodies, args.rate)
                floor_cpu = workers_cpu(floor_master) - floor_cpu
                print(f"round {r}: churnbot serve", file=sys.stderr, flush=True)
                before = client.xlen(store.stream)
                churnbot_cpu, store_cpu = workers_cpu(churnbot_master), redis_cpu(client)
                latencies, failures = send_all(churnbot_url, bodies, args.rate)
                churnbot_cpu = workers_cpu(churnbot_master) - churnbot_cpu
                store_cpu = redis_cpu(client) - store_cpu
                stored = client.xlen(store.stream) - before
                if failures or bare_failures:
                    raise SystemExit(f"FAILED: non-200 answers: {(failures + bare_failures)[:3]}")
                if stored != distinct:
                    raise SystemExit(
                        f"FAILED: round {r} stored {stored:,} events for {distinct:,} distinct "
                        "clicks"
                    )
                results.append((bare, latencies))
                per_click = 1e3 / len(bodies)
                cpu.append((floor_cpu * per_click, churnbot_cpu * per_click, store_cpu * per_click))
                backlog.append(client.xlen(queue))
                if args.drain == "between":
                    drain("start")
                    wait_until(lambda: client.xlen(queue) == 0, "the drain to draw them", 600)
                    drain("stop")
            wait_until(lambda: client.xlen(queue) == 0, "the drain to draw every refresh", 600)
        side.stdin.close()
        drawn = json.loads(side.stdout.readline())
        side.wait(timeout=30)
        readable = sum(1 for _ in store.events())
        report(args, rounds, results, cpu, readable, drawn, deps.settings.feedback.refresh_nice)
        print(f"refreshes still queued as each churnbot run ended: {backlog} (drawn after)")


def seed(deps: Deps, token: str, api_url: str) -> tuple[SnapshotMeta, SlackResponse]:
    """A published snapshot of 20 accounts and a digest of the first 10 posted to Slack."""
    now = dt.datetime.now(dt.UTC)
    cards = [card(i) for i in range(ACCOUNTS)]
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
    web = WebClient(token=token, base_url=api_url)
    posted = web.chat_postMessage(channel=CHANNEL, text=message.text, blocks=message.blocks)
    return meta, posted


def report(
    args: argparse.Namespace,
    rounds: list[tuple[list[str], int]],
    results: list[tuple[list[float], list[float]]],
    cpu: list[tuple[float, float, float]],
    readable: int,
    drawn: dict[str, int],
    nice: int,
) -> None:
    sent = sum(len(bodies) for bodies, _ in rounds)
    distinct = sum(d for _, d in rounds)
    print(
        f"{args.clicks:,} signed feedback clicks per run at {args.rate:g}/s "
        f"({rounds[0][1]:,} distinct, {args.clicks - rounds[0][1]:,} repeats), gunicorn "
        f"{args.workers} workers x 16 threads, {args.rounds} rounds floor/churnbot, the "
        f"refresh drain drawing {args.drain} churnbot's runs (its thread at niceness +{nice})"
    )
    print(
        "round  floor p50   floor p99   churnbot p50   churnbot p99   p50 ratio   p99 ratio"
        "   CPU ms/click: floor  churnbot  Redis"
    )
    p50s, p99s = [], []
    for r, ((bare, ours), (floor_cpu, churnbot_cpu, store_cpu)) in enumerate(
        zip(results, cpu, strict=True), 1
    ):
        b50, b99, o50, o99 = (percentile(v, q) * 1e3 for v in (bare, ours) for q in (50, 99))
        p50s.append(o50 / b50)
        p99s.append(o99 / b99)
        print(
            f"{r:>5}  {b50:6.2f} ms   {b99:6.2f} ms   {o50:9.2f} ms   {o99:9.2f} ms   "
            f"{p50s[-1]:8.2f}x   {p99s[-1]:8.2f}x   {floor_cpu:17.2f}  {churnbot_cpu:8.2f}"
            f"  {store_cpu:5.2f}"
        )
    print(
        f"ack p50 ratio: min {min(p50s):.2f}x, median {statistics.median(p50s):.2f}x "
        "(target <= 1.5x)"
    )
    print(
        f"ack p99 ratio: min {min(p99s):.2f}x, median {statistics.median(p99s):.2f}x (target <= 2x)"
    )
    floor_cpu, churnbot_cpu, store_cpu = (statistics.median(c) for c in zip(*cpu, strict=True))
    print(
        f"CPU per click, median over rounds: the floor's workers {floor_cpu:.2f} ms, churnbot's "
        f"{churnbot_cpu:.2f} ms ({churnbot_cpu / floor_cpu:.2f}x), Redis during churnbot's runs "
        f"{store_cpu:.2f} ms"
    )
    print(f"events stored: {readable:,} for {distinct:,} distinct clicks ({sent:,} sent)")
    print(
        f"drawn by the drain after the acks: {drawn['chat.update']:,} chat.update, "
        f"{drawn['response_url']:,} response_url posts ({drawn['refused']:,} refused)"
    )
    if readable != distinct:
        raise SystemExit("FAILED: the stored count is not the number of distinct clicks")


def clicks(
    rng: random.Random,
    round_number: int,
    meta: SnapshotMeta,
    digest_blocks: list[dict[str, Any]],
    total: int,
) -> tuple[list[dict[str, Any]], int]:
    """One round's clicks in sending order, by users of that round only: 90% distinct, 10%
    repeats placed after their original (right after it, or later); and how many distinct."""
    values = {
        block["block_id"][3:]: block["elements"][0]["value"]
        for block in digest_blocks
        if str(block.get("block_id", "")).startswith("fb:")
    }
    unique = []
    for u in range(USERS):
        for i in range(ACCOUNTS):
            c = card(i)
            for kind in KINDS:
                surface = "digest" if c["account_id"] in values else "card"
                # a /churn card's buttons carry the key today's cards post ("c|<snapshot>")
                key = FeedbackKey(c["account_id"], meta.snapshot_id, "card")
                unique.append(
                    {
                        "user": f"U0B{round_number:02d}{u:04d}",
                        "account": c["account_id"],
                        "kind": kind,
                        "surface": surface,
                        "value": values[c["account_id"]] if surface == "digest" else key.to_value(),
                    }
                )
    distinct = min(total * 9 // 10, len(unique))
    unique = rng.sample(unique, distinct)
    sequence = list(unique)
    for _ in range(total - distinct):
        original = sequence.index(unique[rng.randrange(distinct)])
        sequence.insert(rng.randint(original + 1, len(sequence)), sequence[original])
    return sequence, distinct


def send_all(url: str, bodies: list[str], rate: float) -> tuple[list[float], list[str]]:
    """Open loop: body i leaves at start + i/rate, whatever happened to the ones before."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    # A fresh connection per click: gunicorn closes idle keep-alive connections after 2 s, and
    # a request racing that close fails with no answer (a client artefact, not the app's).
    # And a client per sending thread, made before the clock starts: one pool shared by the
    # 64 threads, closing each connection after its answer, now and then handed a request a
    # socket another thread had just closed ("Bad file descriptor") on a loaded machine.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    clients = [httpx.Client(timeout=10, limits=limits) for _ in range(SENDERS)]
    spare = iter(clients)
    own = threading.local()

    def take_client() -> None:
        with lock:
            own.sender = SlackSender(url, SECRET, client=next(spare))

    def send(body: str) -> None:
        started = time.perf_counter()
        response = own.sender.post(body)
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:100]}")

    try:
        with ThreadPoolExecutor(max_workers=SENDERS, initializer=take_client) as pool:
            start = time.perf_counter()
            futures = []
            for i, body in enumerate(bodies):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the load generator, not synchronising
                futures.append(pool.submit(send, body))
            for future in futures:
                future.result()
    finally:
        for client in clients:
            client.close()
    return latencies, failures


if __name__ == "__main__":
    main()
