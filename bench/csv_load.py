"""CSV loading benchmark: read and validate an account CSV of N rows with ``load_table``.

Usage: ``.venv/bin/python bench/csv_load.py [--rows 500000] [--repeat 3]``

The rows tile the three rows of ``tests/data/accounts_good.csv`` with unique account ids, so
every column of the contract is parsed. Two files are timed: a clean one, and the same file
with one short line, one long line and one line holding a non-UTF-8 byte near its end, which
the loader must reject line by line while the rest goes on. The floor is pandas' C parser
reading the clean file as text (``read_csv(dtype=str)``), which checks nothing. Best of
``--repeat`` wall-clock runs; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from models.contract import load_schema
from models.loaders import load_table
from models.sources_config import SourcesConfig

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


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = load_schema(ROOT / "config" / "schema.yaml")
    lenient = SourcesConfig(max_reject_share=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        clean, faulty = write_files(Path(tmp), args.rows)
        floor = best(lambda: pd.read_csv(clean, dtype=str, keep_default_na=False), args.repeat)
        print(f"pandas read_csv(dtype=str), {args.rows:,} rows: {floor:.2f} s (floor)")
        for name, path in (("clean", clean), ("faulty", faulty)):
            try:
                seconds = best(lambda p=path: load_table(p, schema, lenient), args.repeat)
                result = load_table(path, schema, lenient)
            except Exception as exc:  # the old loader refuses the faulty file whole
                print(f"load_table, {name}: refused: {exc}")
                continue
            print(
                f"load_table, {name}, {args.rows:,} rows: {seconds:.2f} s "
                f"({seconds / floor:.1f}x the floor), {len(result.frame):,} kept, "
                f"{len(result.rejected_rows):,} rejected"
            )


if __name__ == "__main__":
    main()
