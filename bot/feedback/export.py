"""`churnbot feedback export`: the events as files analysts open (Parquet and JSON Lines).

Each file is written next to its destination and renamed into place, so an analyst's job
reading the export never sees half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd

Format = Literal["parquet", "jsonl"]
STEM = "feedback-events"


def _jsonl(frame: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in frame.to_dict(orient="records"):
            record["at"] = record["at"].isoformat()
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def export_events(frame: pd.DataFrame, out_dir: Path, formats: Iterable[Format]) -> list[Path]:
    """Write ``frame`` (``bot.feedback.events.events_table``) as ``feedback-events.<format>``
    under ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_dir / f"{STEM}.{fmt}"
        staging = path.with_name(f".{path.name}.tmp")
        try:
            if fmt == "parquet":
                frame.to_parquet(staging, index=False)
            else:
                _jsonl(frame, staging)
            os.replace(staging, path)
        finally:
            staging.unlink(missing_ok=True)
        written.append(path)
    return written
