"""`/churn ACCOUNT` as production serves it, against the bare Bolt app that only acknowledges.

Both servers run as production would, each in its own process group started here, on the same
gunicorn (gthread, same workers and threads): `churnbot serve`, and the floor
`bench/bare_bolt.py` (same request verification, one listener that only acks). This process is
only the load generator. A private redis-server holds a scored book of --accounts accounts
(``bench/score.py``'s tiled book, scored by a champion trained as `churnbot train` would).

* **Round trips per hit.** With MONITOR on the private Redis, --hits sequential
  `/churn ACCOUNT` requests (account ids typed in lower case, each answered with the account's
  card): the commands churnbot's connections sent per request (a Lua script's own commands
  are not round trips; MONITOR marks them ``lua``). Target: at most 2.
* **Latency under a burst.** 16 clients, each sending --per-client requests back to back (an
  account id, a pick list or a name that matches nothing, one in three each); p50 and p99 of
  each server, alternating churnbot and the floor --runs times; min and median over the runs
  and the ratios (target: p99 at most 2x the bare app).

Usage: .venv/bin/python bench/churn_command.py [--accounts 100000] [--runs 3]
[--per-client 25] [--workers 2] [--threads 8] [--hits 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from score import END, REPO, make_rows, train_champion
from serve_ready import free_port, healthy

from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.publish import build_scorer
from bot.settings import load_settings
from bot.state import SnapshotMeta, SnapshotStore, connect
from models.registry import Registry

PYTHON = sys.executable
SECRET = "bench-signing-secret"
CLIENTS = 16


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Server:
    """A server process group on a free loopback port, stopped on exit. Its output goes to a
    file (a pipe nobody reads fills up, and a server writing its log to it then hangs)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                tail = self.log.read().decode(errors="replace")[-2000:]
                self.stop()
                raise SystemExit(f"{command[:3]} did not start:\n{tail}")
            time.sleep(0.01)  # the polling interval of a bounded wait

    def ready(self) -> bool:
        return healthy(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)
        self.log.close()


class RedisServer(Server):
    def ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.2).ping())
        except redis.RedisError:
            return False


def publish_book(url: str, accounts: int, registry: Path) -> tuple[list[str], list[str]]:
    """Score and publish the book where `churnbot serve` reads it; return its ids and names
    (names repeat in the tiled book, so a hit is asked for by id)."""
    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    scorer = build_scorer(settings, Registry(registry).load())
    rows = make_rows(accounts)
    chunks = list(scorer.column_chunks(rows))
    now = dt.datetime.now(dt.UTC)
    meta = SnapshotMeta(
        snapshot_id=f"{now:%Y%m%dT%H%M%S}-bench",
        as_of=END.isoformat(),
        model_version="bench",
        created_at=now.isoformat(),
        healthy=True,
        n_accounts=accounts,
        health=[],
    )
    client = connect(url)
    SnapshotStore(client).publish(meta, scorer.codec().spec(), chunks)
    client.close()
    ids = [account_id for chunk in chunks for account_id in chunk.account_id]
    return ids, [name for chunk in chunks for name in chunk.account_name]


def texts(ids: list[str], names: list[str], count: int, rng: random.Random) -> list[str]:
    """Account ids in lower case (a card), first words of names (a pick list) and misspelt
    names (no match, suggestions), one in three each."""
    out = []
    for i in range(count):
        name = rng.choice(names)
        out.append([rng.choice(ids).lower(), name.split()[0], name.replace("a", "q") + "zx"][i % 3])
    return out


def round_trips(url: str, server: str, ids: list[str], hits: int) -> dict[str, float]:
    """Commands churnbot's connections sent per `/churn ACCOUNT` hit, by command (MONITOR)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    seen: list[dict[str, str]] = []
    started, marker = threading.Event(), f"bench-done-{random.random()}"

    def watch() -> None:
        with client.monitor() as monitor:
            started.set()
            while True:
                command = monitor.next_command()
                if marker in command["command"]:
                    return
                seen.append(command)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started.wait(10)
    with httpx.Client(timeout=10) as http:
        sender = SlackSender(server, SECRET, client=http)
        for account_id in ids[:hits]:
            answer = sender.command("/churn", account_id.lower()).json()
            if "churn risk" not in answer.get("text", ""):
                raise SystemExit(f"/churn {account_id!r} did not answer with a card: {answer}")
    redis.Redis.from_url(url).echo(marker)
    watcher.join(30)
    counts: dict[str, float] = {}
    for command in seen:
        if command["client_type"] == "lua":
            continue
        verb = command["command"].split()[0].strip('"').upper()
        counts[verb] = counts.get(verb, 0) + 1 / hits
    return counts


def burst(server: str, load: list[list[str]]) -> list[float]:
    """CLIENTS clients, each sending its texts back to back; every request's latency."""

    def client(mine: list[str]) -> list[float]:
        with httpx.Client(timeout=60) as http:
            sender = SlackSender(server, SECRET, client=http)
            out = []
            for text in mine:
                started = time.perf_counter()
                sender.command("/churn", text).raise_for_status()
                out.append(time.perf_counter() - started)
            return out

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return [t for part in pool.map(client, load) for t in part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (>= 3)")
    parser.add_argument("--per-client", type=int, default=25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--hits", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, SlackEmulator() as emulator:
        redis_port = free_port()
        store = RedisServer(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            dict(os.environ), redis_port,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{redis_port}/0"
        servers: dict[str, Server] = {}
        try:
            say("training the champion, scoring and publishing the book")
            train_champion(Path(tmp))
            ids, names = publish_book(url, args.accounts, Path(tmp))
            env = {
                **{
                    k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHURNBOT_"))
                },
                "REDIS_URL": url,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.token,
                "SLACK_API_URL": emulator.base_url,
                "CHURNBOT_CONFIG": str(REPO / "config"),
            }
            port = free_port()
            churnbot = str(Path(PYTHON).with_name("churnbot"))
            servers["churnbot serve"] = Server(
                [churnbot, "serve", "--host", "127.0.0.1", "--workers", str(args.workers),
                 "--threads", str(args.threads)],
                {**env, "PORT": str(port)}, port,
            )  # fmt: skip
            port = free_port()
            servers["bare Bolt app (floor)"] = Server(
                [PYTHON, "-m", "gunicorn", "--chdir", str(REPO / "bench"), "-k", "gthread",
                 "-w", str(args.workers), "--threads", str(args.threads),
                 "--no-control-socket", "-b", f"127.0.0.1:{port}", "bare_bolt:app"],
                env, port,
            )  # fmt: skip
            warm = [texts(ids, names, args.per_client, rng) for _ in range(CLIENTS)]
            for server in servers.values():
                burst(server.url, warm)
            trips = round_trips(
                url, servers["churnbot serve"].url, rng.sample(ids, args.hits), args.hits
            )
            p50: dict[str, list[float]] = {label: [] for label in servers}
            p99: dict[str, list[float]] = {label: [] for label in servers}
            for run in range(args.runs):
                load = [texts(ids, names, args.per_client, rng) for _ in range(CLIENTS)]
                for label, server in servers.items():
                    latencies = burst(server.url, load)
                    q = statistics.quantiles(latencies, n=100)
                    p50[label].append(q[49] * 1e3)
                    p99[label].append(q[98] * 1e3)
                    say(
                        f"run {run + 1}: {label}: p50 {q[49] * 1e3:.1f} ms p99 {q[98] * 1e3:.1f} ms"
                    )
        finally:
            for server in servers.values():
                server.stop()
            store.stop()

    print(f"\n/churn on {args.accounts:,} accounts, {args.workers} gunicorn workers x "
          f"{args.threads} threads, private redis-server")  # fmt: skip
    total = sum(trips.values())
    detail = ", ".join(f"{verb} {count:.2f}" for verb, count in sorted(trips.items()))
    print(f"Redis round trips per /churn hit (MONITOR, {args.hits} account ids): {total:.2f}"
          f" ({detail})  target <= 2")  # fmt: skip
    print(f"burst of {CLIENTS} clients x {args.per_client} requests (account id, pick list, no "
          f"match), {args.runs} alternating runs:")  # fmt: skip
    for label in servers:
        low, mid = min(p50[label]), statistics.median(p50[label])
        top, top_mid = min(p99[label]), statistics.median(p99[label])
        print(f"  {label:<24} p50 min {low:6.1f} median {mid:6.1f} ms"
              f"   p99 min {top:6.1f} median {top_mid:6.1f} ms")  # fmt: skip
    ours, floor = "churnbot serve", "bare Bolt app (floor)"
    for name, values in (("p50", p50), ("p99", p99)):
        ratios = [a / b for a, b in zip(values[ours], values[floor], strict=True)]
        print(f"  ratio {name}: min {min(ratios):.2f}x  median {statistics.median(ratios):.2f}x"
              + ("  (target <= 2x)" if name == "p99" else ""))  # fmt: skip


if __name__ == "__main__":
    main()
