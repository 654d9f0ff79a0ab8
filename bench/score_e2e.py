"""End-to-end scoring benchmark: ``churnbot score`` on a 1M-account book against its floor.

Usage: ``.venv/bin/python bench/score_e2e.py [--accounts 1000000] [--weeks 14] [--repeat 3]
[--redis redis://127.0.0.1:6379/13] [--data var/bench/score_e2e] [--profile]``

Three cases, alternated ``--repeat`` times, each in its own process, timed by wall clock with
its peak RSS read from ``wait4`` (the child's own ``ru_maxrss``):

* **floor**: read the same Parquet file whole with pandas, keep the rows of its newest date
  (the book's live accounts), build the model's features and call ``predict_proba``. That is
  what "read the file and predict" costs with nothing else: no validation, no health checks,
  no explanations, no Redis.
* **lean floor**: the same, but read with pyarrow only the rows of the newest date (the
  date column first, then a filter), as a script that knows the file's layout would: the
  least any reader of this file can do. Printed for scale; the target is set on the floor.
* **score**: the real command, ``churnbot score --data BOOK``, with ``REDIS_URL`` on a Redis
  database of its own (``--redis``; it must hold no churnbot keys when the run starts), so the
  snapshot is really published. Every key the run wrote is deleted after each run, so each run
  publishes into an empty store, like the first run of a week's data.

The book is ``--weeks`` weekly snapshots of ``--accounts`` live accounts (14 weeks is the
least that gives the accuracy check known outcomes at a 90-day horizon). Simulating a million
accounts would dominate the run, so a book of ``accounts / 50`` accounts is simulated and
tiled 50 times with new account ids, written date by date as a weekly export grows. The
champion is trained once with ``churnbot sample-data`` and ``churnbot train`` (5,000 x 52).
Book and champion are kept under ``--data`` (git ignores var/) and reused by later runs; the
Redis keys are not. ``--profile`` runs ``churnbot score`` once more under cProfile and prints
the top of the profile instead of timing.

Targets (issue 13): score at most 2x the floor's time, peak RSS at most 1.5x the floor's.
CPU time (user + system, from ``wait4``) is printed beside the wall clock: on a machine shared
with other work the wall clock swings with their load, CPU time much less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import delete_prefix, say, versus_floor
from score import cpus

REPO = Path(__file__).resolve().parent.parent
COPIES = 50
TRAIN_ACCOUNTS, TRAIN_WEEKS = 5_000, 52
TARGET_TIME, TARGET_RSS = 2.0, 1.5
KEY_PREFIX = "churnbot"


def _monday(today: dt.date) -> dt.date:
    return today - dt.timedelta(days=today.weekday())


# --- preparation ------------------------------------------------------------------------------


def environment(var_dir: Path, redis_url: str | None) -> dict[str, str]:
    env = dict(os.environ, CHURNBOT_CONFIG=str(REPO / "config"), CHURNBOT_VAR=str(var_dir))
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def churnbot(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("churnbot")), *args],
        check=True,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def train_champion(var_dir: Path, end: dt.date) -> None:
    """A champion in ``var_dir``'s registry, trained the way a user would, once per end date."""
    marker = var_dir / f"champion-{end}"
    if marker.exists():
        return
    env = environment(var_dir, None)
    train = var_dir / "train.parquet"
    say(f"training the champion on a {TRAIN_ACCOUNTS:,} x {TRAIN_WEEKS} sample book ...")
    churnbot(
        [
            "sample-data",
            f"--accounts={TRAIN_ACCOUNTS}",
            f"--weeks={TRAIN_WEEKS}",
            f"--end={end}",
            f"--out={train}",
        ],
        env,
    )
    churnbot(["train", f"--data={train}"], env)
    marker.touch()


def write_book(path: Path, accounts: int, weeks: int, end: dt.date) -> None:
    """``accounts`` live accounts over ``weeks`` weekly snapshots (see module doc)."""
    if path.exists():
        return
    from models.generator import generate_accounts

    base_accounts = -(-accounts // COPIES)
    say(f"simulating {base_accounts:,} accounts x {weeks} weeks, tiled {COPIES} times ...")
    base = pa.Table.from_pandas(
        generate_accounts(base_accounts, weeks, seed=23, end=end).accounts, preserve_index=False
    )
    dates = base["as_of"]
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, base.schema) as writer:
        for day in pc.unique(dates).sort().to_pylist():
            rows = base.filter(pc.equal(dates, pa.scalar(day, dates.type)))
            ids = rows["account_id"]
            column = rows.schema.get_field_index("account_id")
            copies = [
                rows.set_column(
                    column,
                    "account_id",
                    pc.binary_join_element_wise(
                        ids, pa.scalar(f"{copy:02d}", ids.type), pa.scalar("-", ids.type)
                    ),
                )
                for copy in range(COPIES)
            ]
            writer.write_table(pa.concat_tables(copies))
    tmp.replace(path)


# --- the two cases ----------------------------------------------------------------------------


def floor(book: Path, var_dir: Path, *, whole: bool) -> None:
    """Read the file (whole, or only its newest date's rows), build features, predict."""
    import pandas as pd

    from bot.settings import load_settings
    from models.registry import Registry
    from models.scoring import predict_risk

    settings = load_settings(environment(var_dir, None))
    model = Registry(settings.paths.registry).load()
    date = settings.schema.date_column
    if whole:
        frame = pd.read_parquet(book)
        live = frame[(frame[date] == frame[date].max()).to_numpy()]
    else:
        newest = pc.max(pq.read_table(book, columns=[date])[date])
        live = pq.read_table(book, filters=pc.field(date) == newest).to_pandas()
    risk = predict_risk(model.estimator, model.features, live)
    print(f"{len(risk):,} accounts predicted", file=sys.stderr)


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    peak_mb: float


def timed(command: list[str], env: dict[str, str]) -> Run:
    """Wall time and the child's own peak RSS (``wait4``: not any earlier child's)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def clean_redis(redis_url: str) -> None:
    """Delete every churnbot key of the benchmark's database."""
    import redis

    delete_prefix(redis.Redis.from_url(redis_url), KEY_PREFIX)


def redis_is_free(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url)
    return next(iter(client.scan_iter(match=f"{KEY_PREFIX}:*", count=1_000)), None) is None


# --- report -----------------------------------------------------------------------------------


def summary(runs: list[Run]) -> str:
    times = [run.seconds for run in runs]
    cpus = [run.cpu_seconds for run in runs]
    peaks = [run.peak_mb for run in runs]
    return (
        f"wall min {min(times):6.2f} s, median {statistics.median(times):6.2f} s; "
        f"CPU min {min(cpus):6.2f} s, median {statistics.median(cpus):6.2f} s; "
        f"peak RSS min {min(peaks):,.0f} MB, median {statistics.median(peaks):,.0f} MB"
    )


def ratios(score: list[Run], base: list[Run]) -> str:
    def ratio(of: str) -> tuple[float, float]:
        return versus_floor([getattr(run, of) for run in score], [getattr(run, of) for run in base])

    time_min, time_median = ratio("seconds")
    cpu_min, cpu_median = ratio("cpu_seconds")
    rss_min, rss_median = ratio("peak_mb")
    verdict_time = "met" if time_median <= TARGET_TIME else "MISSED"
    verdict_rss = "met" if rss_median <= TARGET_RSS else "MISSED"
    return (
        f"wall: {time_min:.2f}x (min) / {time_median:.2f}x (median), target <= {TARGET_TIME}x "
        f"{verdict_time}; CPU: {cpu_min:.2f}x / {cpu_median:.2f}x; peak RSS: {rss_min:.2f}x / "
        f"{rss_median:.2f}x, target <= {TARGET_RSS}x {verdict_rss}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--data", type=Path, default=REPO / "var" / "bench" / "score_e2e")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--prepare", action="store_true", help="only build book and champion")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--newest-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    var_dir = args.data.resolve()
    if args.floor:
        floor(args.floor, var_dir, whole=not args.newest_only)
        return

    end = _monday(dt.date.today())
    book = var_dir / f"book-{args.accounts}x{args.weeks}-{end}.parquet"
    train_champion(var_dir, end)
    write_book(book, args.accounts, args.weeks, end)
    if args.prepare:
        return
    if not redis_is_free(args.redis):
        raise SystemExit(f"{args.redis} already holds churnbot keys; pick an empty --redis db")
    env = environment(var_dir, args.redis)
    score_command = [str(Path(sys.executable).with_name("churnbot")), "score", f"--data={book}"]
    if args.profile:
        profile = var_dir / "score.prof"
        try:
            timed([sys.executable, "-m", "cProfile", "-o", str(profile), *score_command], env)
        finally:
            clean_redis(args.redis)
        import pstats

        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(40)
        return
    floor_command = [sys.executable, str(Path(__file__).resolve()), f"--data={var_dir}"]
    floor_command.append(f"--floor={book}")
    commands = {
        "floor": floor_command,
        "newest": [*floor_command, "--newest-only"],
        "score": score_command,
    }
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for round_ in range(args.repeat):
        for name, command in commands.items():
            try:
                runs[name].append(timed(command, env))
            finally:
                if name == "score":
                    clean_redis(args.redis)
            say(f"round {round_ + 1}: {name} {runs[name][-1]}")
    rows = pq.ParquetFile(book).metadata.num_rows
    print(
        f"\nchurnbot score end to end: {args.accounts:,} live accounts, {args.weeks} weekly "
        f"snapshots ({rows:,} rows), {args.repeat} alternating runs, {cpus()} CPUs"
    )
    print(f"floor (read the parquet file + features + predict_proba): {summary(runs['floor'])}")
    print(f"lean floor (read only the newest date's rows, the same):  {summary(runs['newest'])}")
    print(f"churnbot score (publish included):                        {summary(runs['score'])}")
    print(f"against the floor: {ratios(runs['score'], runs['floor'])}")
    print(f"against the lean floor: {ratios(runs['score'], runs['newest'])}")


if __name__ == "__main__":
    main(sys.argv[1:])
