"""A one-snapshot export is dated by the day it was written (``constants: export_date``), so
next week's export is scored as next week's with no edit, and one that stops arriving ages.

Before, ``init`` wrote the day it ran as a fixed constant: every later export of the same
shape kept that date, until the freshness check called the fresh data stale and tripped the
kill switch, or someone edited sources.yaml each week.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import yaml

from models.contract import load_schema
from models.sources_config import EXPORT_DATE, SourcesConfig, sources_problems
from tests.cli_run import run
from tests.exports import subscriber_snapshot

DAY = dt.date(2026, 3, 2)
REPO = Path(__file__).resolve().parent.parent


def test_dated_sets_only_the_export_date_constants() -> None:
    sources = SourcesConfig(constants={"as_of": EXPORT_DATE, "owner": "unassigned"})
    assert sources.export_dated
    assert sources.dated(DAY).constants == {"as_of": "2026-03-02", "owner": "unassigned"}
    fixed = SourcesConfig(constants={"as_of": "2026-01-31"})
    assert not fixed.export_dated
    assert fixed.dated(DAY) is fixed


def test_export_date_fills_a_date_column_only() -> None:
    schema = load_schema(REPO / "config" / "schema.yaml")
    assert sources_problems(SourcesConfig(constants={"as_of": EXPORT_DATE}), schema) == []
    problems = sources_problems(SourcesConfig(constants={"nps": EXPORT_DATE}), schema)
    assert problems == [
        "config/sources.yaml: constants.nps: export_date is a date, and 'nps' is not a date "
        "column (its type is int)"
    ]


def written(path: Path, day: dt.date) -> None:
    """Set the file's last-modified time to noon UTC of ``day``."""
    stamp = dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))


@pytest.mark.usefixtures("empty_embedded_store")
def test_each_weeks_export_is_scored_as_of_the_day_it_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Days before the run, whatever day it is: the freshness check reads the wall clock.
    today = dt.datetime.now(dt.UTC).date()
    first, second = today - dt.timedelta(days=9), today - dt.timedelta(days=2)
    export = tmp_path / "subscribers.csv"
    subscriber_snapshot(1500, seed=4).to_csv(export, index=False)
    written(export, first)
    config = tmp_path / "config"
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    said = " ".join(err.split())
    assert f"one snapshot dated the day its file was written ({first} for this one" in said
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    assert sources["constants"]["snapshot_date"] == "export_date"
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err

    code, out, err = run("score", "--data", str(export))
    assert code == 0, out + err
    assert re.search(rf"accounts as of\s+{first}", out), out

    # Next week's export: new rows, the same config.
    subscriber_snapshot(1500, seed=5).to_csv(export, index=False)
    written(export, second)
    code, out, err = run("score", "--data", str(export))
    assert code == 0, out + err
    assert re.search(rf"accounts as of\s+{second}", out), out
    assert "FAILED" not in out
