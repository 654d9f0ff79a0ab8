"""CSV loading benchmark: read and validate an account CSV of N rows with ``load_table``.

Usage: ``.venv/bin/python bench/csv_load.py [--rows 500000] [--repeat 3]``

The rows tile the three rows of ``tests/data/accounts_good.csv`` with unique account ids, so
every column of the contract is parsed. Two files are timed: a clean one, and the same file
with one short line, one long line and one line holding a non-UTF-8 byte near its end, which
the loader must reject line by line while the rest goes on. The floor is pandas' C parser
reading the clean file as text (``read_csv(dtype=str)``), which checks nothing. The three are
alternated ``--repeat`` times; min and median of wall clock and of CPU time are printed, and
each load's ratio to the floor (medians).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.contract import load_schema
from models.loaders import load_table
from models.sources_config import SourcesConfig
from models.validate import LoadResult

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "accounts_good.csv"


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    """The clean CSV of ``rows`` rows and its faulty twin."""
    header, *body = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines = [header]
    for index in range(rows):
        cells = body[index % len(body)].split(",", 1)
        lines.append(f"A-{index:07d},{cells[1]}")
    clean = folder / "clean.csv"
    clean.write_text("\n".join(lines) + "\n", encoding="utf-8")
    faulty_lines = list(lines)
    faulty_lines[10] = faulty_lines[10].rsplit(",", 3)[0]  # short
    faulty_lines[20] = faulty_lines[20] + ",extra"  # long
    faulty = folder / "faulty.csv"
    data = "\n".join(faulty_lines).encode("utf-8") + b"\n"
    position = data.index(b"\n", len(data) // 2) - 3  # a byte near the end of a middle line
    faulty.write_bytes(data[:position] + b"\xe9" + data[position + 1 :])
    return clean, faulty


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def timed(run: Callable[[], object]) -> tuple[Timing, object]:
    """Wall clock and this process's CPU time (all threads) of one run, and what it returned.
    On a machine shared with other work the wall clock swings with their load; CPU time swings
    far less."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def line(name: str, runs: list[Timing], floor: list[Timing] | None) -> str:
    walls, cpus = [run.wall for run in runs], [run.cpu for run in runs]
    text = (
        f"{name}: wall min {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
        f"CPU min {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s"
    )
    if floor is not None:
        wall_ratio = statistics.median(walls) / statistics.median(r.wall for r in floor)
        cpu_ratio = statistics.median(cpus) / statistics.median(r.cpu for r in floor)
        text += f" ({wall_ratio:.1f}x the floor's median wall, {cpu_ratio:.1f}x its CPU)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = load_schema(ROOT / "config" / "schema.yaml")
    lenient = SourcesConfig(max_reject_share=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        clean, faulty = write_files(Path(tmp), args.rows)
        cases: dict[str, Callable[[], object]] = {
            "floor": lambda: pd.read_csv(clean, dtype=str, keep_default_na=False),
            "clean": lambda: load_table(clean, schema, lenient),
            "faulty": lambda: load_table(faulty, schema, lenient),
        }
        runs: dict[str, list[Timing]] = {name: [] for name in cases}
        counts: dict[str, str] = {}  # rows kept and rejected by each load, from its runs
        for _ in range(args.repeat):  # alternated, so a burst of load hits every case alike
            for name, run in cases.items():
                timing, result = timed(run)
                runs[name].append(timing)
                if isinstance(result, LoadResult):
                    counts[name] = (
                        f"{len(result.frame):,} kept, {len(result.rejected_rows):,} rejected"
                    )
                del result  # not held while the next case runs
    print(f"{args.rows:,} rows, {args.repeat} alternating runs")
    print(line("pandas read_csv(dtype=str) (floor)", runs["floor"], None))
    for name in ("clean", "faulty"):
        print(f"{line(f'load_table, {name}', runs[name], runs['floor'])}; {counts[name]}")


if __name__ == "__main__":
    main()
