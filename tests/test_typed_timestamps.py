"""Typed timestamps (a Parquet or SQL as-of column, 2026-11-16 09:14:03) are read as days, as
CSV dates are: the rows of one weekly snapshot, written seconds apart account by account, share
their day, so they are one snapshot (models.listing), one as-of date on the cards, and label
horizons count whole days. A time-zone-aware timestamp is its day in UTC, or in sources.yaml's
``timezone``; ``init`` writes the zone a Parquet file's timestamps carry.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import redis
import yaml

from bot.cli.score import score_book
from bot.deps import build_deps
from bot.feedback.track_record import flag_log
from bot.settings import load_settings
from models.contract import load_schema
from models.loaders import load_table
from models.profile import propose
from models.sources_config import load_sources_config
from models.sql_source import SqlAccountSource
from tests.cli_run import run
from tests.postgres_fixtures import fresh_database

FIRST = dt.datetime(2026, 5, 4, 9, 0)
WEEKS = 28
NEWEST = (FIRST + dt.timedelta(weeks=WEEKS - 1)).date()


def snapshot_export(accounts: int = 600, seed: int = 2) -> pd.DataFrame:
    """A weekly snapshot job that writes each account's row a few seconds after the one
    before (the last accounts' rows of a week minutes after its first); a Y/N label; one
    account the newest snapshot no longer lists."""
    rng = np.random.default_rng(seed)
    rows = []
    for account in range(accounts):
        adoption = rng.normal()
        for week in range(WEEKS):
            if account == 0 and week == WEEKS - 1:
                break  # dropped from the CRM before the newest snapshot
            taken = FIRST + dt.timedelta(weeks=week, seconds=3 * account + int(rng.integers(3)))
            used = float(np.clip(0.6 + 0.1 * adoption + rng.normal(0, 0.2), 0.02, 1.0))
            churned = rng.random() < 1 / (1 + np.exp(3.5 + 6 * (used - 0.6)))
            rows.append(
                {
                    "Client": f"C{account:05d}",
                    "Snapshot Taken": taken,
                    "Manager": f"m{account % 4}",
                    "Usage Score": round(used * 100, 1),
                    "Tickets": int(rng.poisson(1)),
                    "Lost": "Y" if churned and account else "N",
                }
            )
            if churned and account:
                break
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_a_parquet_export_with_second_timestamps_is_scored_as_one_snapshot_per_week(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_redis: redis.Redis
) -> None:
    export, config, var = tmp_path / "export.parquet", tmp_path / "config", tmp_path / "var"
    table = snapshot_export()
    assert table["Snapshot Taken"].dt.second.nunique() > 1
    table.to_parquet(export, index=False)
    monkeypatch.setenv("CHURNBOT_VAR", str(var))

    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    assert f"as-of date: Snapshot Taken ({WEEKS} distinct dates, newest {NEWEST})" in err
    assert "horizon: 7 days" in err
    assert yaml.safe_load((config / "product.yaml").read_text())["horizon_days"] == 7
    assert "timezone" not in yaml.safe_load((config / "sources.yaml").read_text())

    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err
    settings = load_settings({"CHURNBOT_CONFIG": str(config), "CHURNBOT_VAR": str(var)})
    frame = load_table(export, settings.schema, settings.sources).frame
    as_of = frame["snapshot_taken"]
    assert (as_of == as_of.dt.normalize()).all()
    assert as_of.nunique() == WEEKS

    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix)
    try:
        result = score_book(settings, deps.store, deps.switch, flags=flag_log(deps), data=export)
        assert result.healthy, result.failures
        assert result.snapshot is not None
        assert result.snapshot.as_of == NEWEST.isoformat()
        # One snapshot a week: the account missing from the newest is not scored.
        assert result.unlisted_note is not None
        assert "C00000" in result.unlisted_note
        completeness = next(c for c in result.checks if c.name == "completeness")
        assert f"The newest snapshot ({NEWEST})" in completeness.message
        cards = deps.store.top(10)
        assert cards
        assert {card["as_of"] for card in cards} == {NEWEST.isoformat()}
    finally:
        deps.background.shutdown(wait=True)
        keys = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)


SCHEMA = """
columns:
  account_id: {type: string, role: id}
  account_name: {type: string, role: name}
  as_of: {type: date, role: date}
  owner: {type: string, role: owner}
  seats: {type: int}
  churn_date: {type: date, role: label, required: false}
"""


def folder(tmp_path: Path, sources: str) -> Path:
    (tmp_path / "schema.yaml").write_text(textwrap.dedent(SCHEMA))
    (tmp_path / "sources.yaml").write_text(textwrap.dedent(sources))
    return tmp_path


def zoned_export() -> pd.DataFrame:
    """Two accounts of one snapshot, written 38 s apart late in a Los Angeles evening (the
    next morning in UTC), and a churn date with its time of day."""
    taken = pd.to_datetime(["2026-11-16 21:14:03", "2026-11-16 21:14:41"]).tz_localize(
        "America/Los_Angeles"
    )
    return pd.DataFrame(
        {
            "Customer": ["A-1", "A-2"],
            "Taken At": taken,
            "CSM": ["dana", "li"],
            "Seats": [4, 9],
            "Cancelled At": [pd.NaT, pd.Timestamp("2026-11-30 17:45:00")],
        }
    )


MAPPING = """
mapping:
  Customer: [account_id, account_name]
  Taken At: as_of
  CSM: owner
  Seats: seats
  Cancelled At: churn_date
"""


def test_a_zoned_parquet_timestamp_is_its_utc_day_unless_sources_yaml_names_a_zone(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.parquet"
    zoned_export().to_parquet(export, index=False)
    schema = load_schema(folder(tmp_path, MAPPING) / "schema.yaml")

    frame = load_table(export, schema, load_sources_config(tmp_path / "sources.yaml")).frame
    assert frame["as_of"].tolist() == [pd.Timestamp("2026-11-17")] * 2
    assert frame["churn_date"].tolist()[1] == pd.Timestamp("2026-11-30")

    folder(tmp_path, MAPPING + "timezone: America/Los_Angeles\n")
    local = load_table(export, schema, load_sources_config(tmp_path / "sources.yaml")).frame
    assert local["as_of"].tolist() == [pd.Timestamp("2026-11-16")] * 2

    config = tmp_path / "init"
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    written = yaml.safe_load((config / "sources.yaml").read_text())
    assert written["timezone"] == "America/Los_Angeles"
    assert "time zone: the export's timestamps are in America/Los_Angeles" in err


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A table whose snapshot column is a timestamp with a time zone, and one without."""
    with fresh_database("churnbot_ts") as url:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute(
                'CREATE TABLE weekly ("Customer" text, "Taken At" timestamptz, '
                '"Local Taken" timestamp, "CSM" text, "Seats" int, "Cancelled At" timestamp)'
            )
            conn.cursor().executemany(
                "INSERT INTO weekly VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    ("A-1", "2026-11-17 05:14:03+00", "2026-11-16 09:14:03", "dana", 4, None),
                    ("A-2", "2026-11-17 05:14:41+00", "2026-11-16 09:14:41", "li", 9, None),
                    ("A-3", "2026-11-10 05:13:59+00", "2026-11-09 09:13:59", "li", 2, None),
                    (
                        "A-4",
                        "2026-11-17 05:15:02+00",
                        "2026-11-16 09:15:02",
                        "sam",
                        1,
                        "2026-11-20 16:00",
                    ),
                ],
            )
        yield url.render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("column", "zone", "day"),
    [
        ("Taken At", None, "2026-11-17"),
        ("Taken At", "America/Los_Angeles", "2026-11-16"),
        ("Local Taken", None, "2026-11-16"),
        ("Local Taken", "Asia/Tokyo", "2026-11-16"),  # no zone of its own: the day it names
    ],
)
def test_a_sql_timestamp_is_read_as_its_day(
    database: str, tmp_path: Path, column: str, zone: str | None, day: str
) -> None:
    other = "Local Taken" if column == "Taken At" else "Taken At"
    sources = MAPPING.replace("Taken At: as_of", f"{column}: as_of") + (
        f"timezone: {zone}\n" if zone else ""
    )
    sources += "sql:\n  url_env: CHURNBOT_SQL_URL\n  query: SELECT * FROM weekly\n"
    config = load_sources_config(folder(tmp_path, sources) / "sources.yaml")
    frame = (
        SqlAccountSource(config, environ={"CHURNBOT_SQL_URL": database})
        .load(load_schema(tmp_path / "schema.yaml"))
        .frame.set_index("account_id")
    )
    assert other not in frame.columns
    assert frame.loc["A-1", "as_of"] == frame.loc["A-2", "as_of"] == pd.Timestamp(day)
    assert frame.loc["A-4", "churn_date"] == pd.Timestamp("2026-11-20")


def test_csv_timestamps_with_their_offsets_are_profiled_as_the_days_they_write() -> None:
    """A CSV of the same snapshots, written as ISO timestamps with the offset of the office
    that wrote each row: init reads each as the day it writes, as train does (pandas refused
    the mixed offsets and init stopped)."""
    table = snapshot_export(accounts=60)
    offsets = np.where(table.index % 2, "-05:00", "+01:00")
    table["Snapshot Taken"] = table["Snapshot Taken"].dt.strftime("%Y-%m-%dT%H:%M:%S") + offsets
    proposal = propose(table.astype(str), NEWEST)
    assert f"as-of date: Snapshot Taken ({WEEKS} distinct dates, newest {NEWEST})" in proposal.notes
    assert proposal.horizon_days == 7
