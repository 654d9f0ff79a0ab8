"""`/churn ACCOUNT` end to end over loopback: signed request in, ephemeral card out.

Scores a generated 5,000-account book into the real Redis (under a throwaway prefix), serves
the real app and, as the floor, a bare Bolt app whose listener only acknowledges — both on the
same loopback WSGI server, both with request verification on. Sends a steady 50 requests/s
(open loop: a slow answer does not delay the next send) and then a burst, and prints p50/p99
latency and throughput side by side with the floor.

Usage: .venv/bin/python bench/churn_command.py [--rate 50] [--seconds 10] [--burst 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
from slack_bolt import App
from slack_sdk import WebClient

from bot.app import build_app
from bot.cli.sample_data import last_monday
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.loopback import LoopbackServer
from bot.publish import run_scoring
from bot.settings import load_settings
from bot.state import connect
from bot.web import build_wsgi
from models.generator import generate_accounts
from models.pipeline import train_and_register
from models.registry import Registry
from models.validate import validate_frame

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "bench-signing-secret"


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def steady(sender: SlackSender, names: list[str], rate: float, seconds: float) -> list[float]:
    """Open-loop load: request i is sent at start + i/rate, whatever happened before."""
    latencies: list[float] = []
    lock = threading.Lock()
    total = int(rate * seconds)

    def one(name: str) -> None:
        started = time.perf_counter()
        response = sender.command("/churn", name)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"/churn answered {response.status_code}: {response.text[:200]}")
        with lock:
            latencies.append(elapsed)

    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.perf_counter()
        futures = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the load generator, not synchronising a test
            futures.append(pool.submit(one, random.choice(names)))
        for future in futures:
            future.result()
    return latencies


def burst(sender: SlackSender, names: list[str], count: int) -> tuple[list[float], float]:
    latencies: list[float] = []

    def one(name: str) -> float:
        started = time.perf_counter()
        sender.command("/churn", name).raise_for_status()
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=16) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(one, [random.choice(names) for _ in range(count)]))
        wall = time.perf_counter() - started
    return latencies, count / wall


def bare_app(client: WebClient) -> App:
    """The framework's floor: same verification, a listener that only acknowledges."""
    app = App(
        signing_secret=SECRET,
        process_before_response=True,
        token_verification_enabled=False,
        client=client,
    )

    @app.command("/churn")
    def ack_only(ack) -> None:
        ack()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    random.seed(7)

    redis = connect("redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex}"
    with SlackEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {
                "CHURNBOT_CONFIG": str(CONFIG),
                "CHURNBOT_VAR": tmp,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.token,
                "SLACK_API_URL": emulator.base_url,
            }
        )
        print("preparing: generating, training and scoring a 5,000-account book ...", flush=True)
        book = generate_accounts(5000, 52, seed=7, end=last_monday(dt.date.today())).accounts
        registry = Registry(Path(tmp) / "registry")
        train_and_register(
            book,
            settings.schema,
            settings.features,
            settings.spec,
            registry,
            data_source="bench",
        )
        raw = book.to_csv(index=False, date_format="%Y-%m-%d")
        loaded = validate_frame(
            pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False),
            settings.schema,
            source="bench",
        )
        deps = build_deps(settings, client=redis, prefix=prefix)
        run_scoring(
            settings,
            store=deps.store,
            switch=deps.switch,
            registry=registry,
            load=lambda: loaded,
            now=dt.datetime.now(dt.UTC),
        )
        names = [card["account_name"] for card in deps.store.top(1000)]
        results = {}
        try:
            for label, app in (
                (
                    "bare Bolt app (floor)",
                    bare_app(WebClient(token=emulator.token, base_url=emulator.base_url)),
                ),
                ("churnbot /churn", build_app(deps)),
            ):
                wsgi = build_wsgi(app, deps) if label.startswith("churnbot") else _plain(app)
                with LoopbackServer(wsgi) as server, httpx.Client(timeout=10) as http:
                    sender = SlackSender(server.url, SECRET, client=http)
                    steady(sender, names, args.rate, 1)  # warm-up
                    lat = steady(sender, names, args.rate, args.seconds)
                    blat, throughput = burst(sender, names, args.burst)
                    results[label] = (lat, blat, throughput)
        finally:
            keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                redis.unlink(*keys)

    print(
        f"\n/churn ACCOUNT over loopback: {args.rate:g} req/s for {args.seconds:g} s, "
        f"then a burst of {args.burst} (16 clients)"
    )
    print(
        f"{'app':<24} {'p50 ms':>8} {'p99 ms':>8} {'burst p50':>10} {'burst p99':>10} "
        f"{'burst req/s':>12}"
    )
    for label, (lat, blat, throughput) in results.items():
        print(
            f"{label:<24} {percentile(lat, 50) * 1e3:8.2f} {percentile(lat, 99) * 1e3:8.2f} "
            f"{percentile(blat, 50) * 1e3:10.2f} {percentile(blat, 99) * 1e3:10.2f} "
            f"{throughput:12.0f}"
        )
    bare, real = results["bare Bolt app (floor)"], results["churnbot /churn"]
    print(
        f"ratio churnbot / floor: p50 {percentile(real[0], 50) / percentile(bare[0], 50):.2f}x, "
        f"p99 {percentile(real[0], 99) / percentile(bare[0], 99):.2f}x "
        "(targets: p99 under 100 ms at 50 req/s, within 2x of the bare app)"
    )


def _plain(app: App):
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    return SlackRequestHandler(app)


if __name__ == "__main__":
    main()
