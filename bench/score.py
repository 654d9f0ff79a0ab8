"""Scoring benchmark: score + explain + recommend + records against bare ``predict_proba``.

Usage: ``.venv/bin/python bench/score.py [--sizes 100000,1000000] [--repeats 3]``

For each size N it measures, on the same N account rows of one as-of date:

* **bare**: :func:`models.scoring.predict_risk` (features + ``predict_proba``): the floor;
* **full**: consuming :meth:`models.scoring.Scorer.column_chunks`, the whole output a scoring
  run hands the store: risk, reasons, action and each account's compact record (the Redis
  write itself is ``bench/state_read.py``'s and ``bench/score_e2e.py``'s).

The two alternate (bare, full, bare, full, ...) ``--repeats`` times, each run in a fresh
subprocess; the table shows the min and the median of each and their ratios. The kernel's
peak-RSS mark is reset once the rows are loaded, so the peak is the case's own rather than the
transient of reading parquet. The full runs also report the records' size, and the time to
render a digest's cards on read: the 10 riskiest records decoded by the codec rebuilt from its
spec (min over 200 rounds, per card). Target (issue 13): full at most 2x bare. Timings are
wall clock: run it on a quiet machine. The CPU-time ratio beside it (each case's process time)
moves less when other work shares the cores; both cases run one thread of Python (the floor's
BLAS may use more, which only raises its CPU time).

The champion is trained once on a 5,000 x 52 sample book. The N rows are not simulated from
scratch (1M accounts x 27 weeks of simulation would dominate the run): a 20,000-account book of
one week is tiled to N with unique account ids and perturbed ARR and CSM-touch figures, so the
rows vary and every band, reason and playbook rule occurs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import say, versus_floor

REPO = Path(__file__).resolve().parent.parent
END = dt.date(2026, 11, 16)
BASE_ACCOUNTS = 20_000
WARM_UP_ROWS = 1_000
TARGET_RATIO = 2.0
DIGEST_CARDS = 10
DECODE_ROUNDS = 200
#: One of the riskiest accounts kept for the decode timing: risk, a tie-break, and the indexed
#: fields and record the store would hand the codec.
Kept = tuple[float, int, tuple[str, str, str, str, bytes]]


def _status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark, so the peak measured next is the case's own and not
    the transient of reading the parquet file. Linux only; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    """Peak resident set size since the last reset (or since start: ru_maxrss, in KiB)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- preparation (parent process) -----------------------------------------------------------


def train_champion(registry_root: Path) -> str:
    """Train and promote a champion exactly as `churnbot train` would, once per benchmark."""
    from bot.settings import load_settings
    from models.generator import generate_accounts
    from models.pipeline import train_and_register
    from models.registry import Registry

    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    book = generate_accounts(5_000, 52, seed=7, end=END).accounts
    outcome = train_and_register(
        book,
        settings.schema,
        settings.features,
        settings.spec,
        Registry(registry_root),
        data_source="bench",
    )
    return outcome.card.version


def make_rows(n: int, seed: int = 11) -> pd.DataFrame:
    """``n`` live accounts of one as-of date, tiled from a simulated book (see module doc)."""
    from models.generator import generate_accounts

    base = generate_accounts(BASE_ACCOUNTS, 1, seed=seed, end=END).accounts
    rng = np.random.default_rng(seed)
    copies = -(-n // len(base))
    order = np.concatenate([rng.permutation(len(base)) for _ in range(copies)])[:n]
    rows = base.iloc[order].reset_index(drop=True)
    rows["account_id"] = pd.array([f"ACC-{i:07d}" for i in range(n)], dtype="str")
    rows["arr"] = (rows["arr"] * rng.uniform(0.9, 1.1, n)).round(2)
    touch = rows["days_since_csm_touch"].to_numpy() + rng.integers(-3, 4, n)
    rows["days_since_csm_touch"] = np.clip(touch, 0, None)
    return rows


# --- one measured case (child process) ------------------------------------------------------


def run_case(case: str, rows_path: Path, registry_root: Path, chunk_size: int) -> dict[str, Any]:
    """Time one case on the rows in ``rows_path``; the caller reads our peak RSS."""
    from bot.cli.common import progress_bar
    from bot.publish import build_scorer
    from bot.settings import load_settings
    from models.registry import Registry
    from models.scoring import predict_risk

    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    model = Registry(registry_root).load()
    scorer = build_scorer(settings, model)
    rows = pd.read_parquet(rows_path)
    n = len(rows)

    # Warm up both paths (lazy imports, first-call caches) outside the timing.
    predict_risk(model.estimator, settings.features, rows.head(WARM_UP_ROWS))
    list(scorer.column_chunks(rows.head(WARM_UP_ROWS)))
    _reset_peak_rss()
    loaded_mb = _status_mb("VmRSS") or _peak_rss_mb()

    result: dict[str, Any] = {"case": case, "n": n, "loaded_mb": loaded_mb}
    with progress_bar(f"{case} {n:,}") as progress:
        start, cpu_start = time.perf_counter(), time.process_time()
        if case == "bare":
            predict_risk(
                model.estimator, settings.features, rows, chunk_size=chunk_size, progress=progress
            )
            scored = n
        else:
            # Chunks are made and dropped one by one, as the publisher streams them to Redis;
            # only what the figures need is kept (sizes, and the riskiest records).
            scored = record_bytes = 0
            top: list[Kept] = []
            for chunk in scorer.column_chunks(rows, chunk_size=chunk_size, progress=progress):
                scored += len(chunk)
                record_bytes += chunk.records.nbytes  # one buffer: no object per record
                keep = min(DIGEST_CARDS, len(chunk))
                riskiest = np.argpartition(chunk.risk, -keep)[-keep:]
                for i in riskiest.tolist():
                    fields = (
                        chunk.account_id[i],
                        chunk.account_name[i],
                        chunk.owner[i],
                        chunk.segment[i],
                        chunk.records[i],
                    )
                    heapq.heappush(top, (float(chunk.risk[i]), scored + i, fields))
                    if len(top) > DIGEST_CARDS:
                        heapq.heappop(top)
        result["seconds"] = time.perf_counter() - start
        result["cpu_seconds"] = time.process_time() - cpu_start
    assert scored == n, f"{case} produced {scored} of {n} results"
    result["peak_mb"] = _peak_rss_mb()
    if case == "full":
        result["record_bytes"] = record_bytes / n
        result["decode_us"] = _decode_time(scorer.codec().spec(), top)
    return result


def _decode_time(spec: str, top: list[Kept]) -> float:
    """Microseconds to render one of a digest's cards from its record (min over rounds)."""
    from models.cards import CardCodec

    codec = CardCodec.from_spec(spec)
    best = float("inf")
    for _ in range(DECODE_ROUNDS):
        start = time.perf_counter()
        for risk, _, (account_id, name, owner, segment, record) in top:
            codec.decode(
                record,
                account_id=account_id,
                account_name=name,
                owner=owner,
                segment=segment,
                risk=risk,
                previous_risk=None,
            )
        best = min(best, time.perf_counter() - start)
    return best / len(top) * 1e6


def measure(case: str, rows_path: Path, registry_root: Path, chunk_size: int) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its progress goes to our terminal."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        case,
        "--rows",
        str(rows_path),
        "--registry",
        str(registry_root),
        "--chunk-size",
        str(chunk_size),
    ]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- report -----------------------------------------------------------------------------------


def print_table(results: dict[int, dict[str, list[dict[str, Any]]]]) -> None:
    header = (
        f"{'accounts':>10} | {'bare s min / med':>16} | {'full s min / med':>16} | "
        f"{'ratio min / med':>15} | {'CPU ratio min / med':>19} | "
        f"{'peak RSS MB bare / full':>23} | {'record B':>8} | "
        f"{'decode µs/card':>14} | target"
    )
    print(header)
    print("-" * len(header))
    for n, runs in results.items():
        bare = [r["seconds"] for r in runs["bare"]]
        full = [r["seconds"] for r in runs["full"]]
        ratio_min, ratio_median = versus_floor(full, bare)
        cpu_min, cpu_median = versus_floor(
            [r["cpu_seconds"] for r in runs["full"]], [r["cpu_seconds"] for r in runs["bare"]]
        )
        rss = (
            f"{max(r['peak_mb'] for r in runs['bare']):,.0f} / "
            f"{max(r['peak_mb'] for r in runs['full']):,.0f}"
        )
        record = statistics.mean(r["record_bytes"] for r in runs["full"])
        decode = min(r["decode_us"] for r in runs["full"])
        verdict = "ok" if ratio_median <= TARGET_RATIO else "MISSED"
        print(
            f"{n:>10,} | {min(bare):>7.2f} / {statistics.median(bare):>6.2f} | "
            f"{min(full):>7.2f} / {statistics.median(full):>6.2f} | "
            f"{ratio_min:>6.2f}x / {ratio_median:>5.2f}x | "
            f"{cpu_min:>10.2f}x / {cpu_median:>5.2f}x | {rss:>23} | {record:>8.1f} | "
            f"{decode:>14.1f} | <={TARGET_RATIO:.0f}x {verdict}"
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3, help="bare/full pairs per size")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--child", choices=["bare", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = run_case(args.child, args.rows, args.registry, args.chunk_size)
        print(json.dumps(result), flush=True)
        return

    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="churnbot-bench-") as tmp:
        root = Path(tmp)
        say("training the champion on a 5,000 x 52 sample book ...")
        version = train_champion(root / "registry")
        say(f"champion {version}; building {max(sizes):,} account rows ...")
        rows = make_rows(max(sizes))
        paths = {}
        for n in sizes:
            paths[n] = root / f"rows-{n}.parquet"
            rows.head(n).to_parquet(paths[n], index=False)
        del rows
        for n in sizes:
            results[n] = {"bare": [], "full": []}
            for _ in range(args.repeats):
                for case in ("bare", "full"):
                    run = measure(case, paths[n], root / "registry", args.chunk_size)
                    results[n][case].append(run)
    print(
        f"\nScoring benchmark ({sys.platform}, {cpus()} CPUs, chunks of {args.chunk_size:,}, "
        f"{args.repeats} alternating runs per case), model {version}"
    )
    print_table(results)


def cpus() -> int:
    """The CPUs this process may run on (what the figures were measured with)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main(sys.argv[1:])
