"""``churnbot export scores``: the served snapshot to Parquet, CSV and a real PostgreSQL table.

Run as a user runs it (``main(argv)``) on the embedded store, like the other CLI tests; the
SQL target is the real PostgreSQL on 127.0.0.1:5432 (``TEST_POSTGRES_URL`` overrides it; the
tests skip, saying why, only when none answers), in a database of this module's own.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine

from bot.cli import main
from bot.state import KillSwitch, SnapshotMeta, SnapshotStore, connect
from bot.state.store import _embedded_server
from tests.postgres_fixtures import fresh_database
from tests.slack_harness import make_card

PASSWORD = "pw-" + uuid.uuid4().hex  # trust authentication ignores it; no output may show it
ENV_PREFIXES = ("SLACK_", "REDIS_URL", "CHURNBOT_", "PORT")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database; yields its URL with a password that must never be shown."""
    with fresh_database("churnbot_export") as url:
        yield url.set(password=PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def book(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A published snapshot of 12,001 accounts (more than two write chunks) in a fresh
    embedded store, the one the CLI opens with REDIS_URL unset."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    _embedded_server.cache_clear()
    cards = [
        make_card(f"ACC-{i:06d}", f'Account {i}, "quoted"; ünïcode', round(0.9 - i * 3e-5, 6))
        for i in range(12_001)
    ]
    cards[2]["abstain"] = {"missing": ["Seats used", "Active users, change"]}
    cards[3]["segment"] = ""
    publish(cards, "20261123T060000-v1")
    yield served_cards()
    _embedded_server.cache_clear()


def publish(cards: list[dict[str, Any]], snapshot_id: str, *, healthy: bool = True) -> None:
    SnapshotStore(connect(None)).publish_cards(
        SnapshotMeta(
            snapshot_id=snapshot_id,
            as_of="2026-11-23",
            model_version="20261123-abcdef0123",
            created_at="2026-11-23T06:00:00+00:00",
            healthy=healthy,
            n_accounts=len(cards),
            health=[],
        ),
        cards,
    )


def served_cards() -> list[dict[str, Any]]:
    """The cards as the store serves them (what the export must carry, change included)."""
    cards = SnapshotStore(connect(None)).iter_cards()
    return sorted(cards, key=lambda card: card["account_id"])


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["export", "scores", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, " ".join(out.split()), err


def check_rows(frame: pd.DataFrame, cards: list[dict[str, Any]]) -> None:
    """Every account exactly once, every value as the card has it."""
    assert len(frame) == len(cards)
    rows = frame.set_index("account_id")
    for i in (0, 1, 2, 3, 12_000):
        card, row = cards[i], rows.loc[cards[i]["account_id"]]
        assert row["account_name"] == card["account_name"]
        assert row["owner"] == card["owner"]
        assert row["action"] == card["action"]["action"]
        assert row["reasons"] == "; ".join(r["text"] for r in card["reasons"])
        assert row["model_version"] == "20261123-abcdef0123"
        assert row["snapshot_id"] == "20261123T060000-v1"
        assert pd.Timestamp(row["as_of"]).date() == dt.date(2026, 11, 23)
        if i == 2:
            assert pd.isna(row["risk"]), "not scored: no risk passed off as one"
            assert pd.isna(row["band"])
            assert row["not_scored"] == "Seats used; Active users, change"
        else:
            assert row["risk"] == pytest.approx(card["risk"], abs=1e-12)
            assert row["band"] == card["band"]
            assert pd.isna(row["not_scored"])
    changes = rows.loc[[card["account_id"] for card in cards], "change"].tolist()
    expected = [math.nan if card["change"] is None else card["change"] for card in cards]
    assert changes == pytest.approx(expected, nan_ok=True)
    assert pd.isna(rows.loc["ACC-000003", "segment"]) or rows.loc["ACC-000003", "segment"] == ""


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_scores_round_trip_through_a_file(
    book: list[dict[str, Any]], tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out" / f"scores.{suffix}"
    code, out, err = export(capsys, "--to", str(path))

    assert code == 0, err
    assert out == (
        "Exported 12,001 scores of snapshot 20261123T060000-v1 (as of 2026-11-23, model "
        f"20261123-abcdef0123) to {path}."
    )
    assert "Exporting snapshot" in err, "progress goes to stderr"
    frame = pd.read_parquet(path) if suffix == "parquet" else pd.read_csv(path)
    assert tuple(frame.columns) == (
        "account_id",
        "account_name",
        "owner",
        "segment",
        "risk",
        "band",
        "change",
        "reasons",
        "action",
        "not_scored",
        "model_version",
        "as_of",
        "snapshot_id",
    )
    check_rows(frame, book)
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no staging file left"


def test_scores_round_trip_through_postgresql(
    book: list[dict[str, Any]],
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCORES_DB", database)
    code, out, err = export(capsys, "--to", "sql", "--url-env", "SCORES_DB", "--table", "scores")

    assert code == 0, err
    assert PASSWORD not in out + err
    assert "to table scores at postgresql+psycopg://postgres:***@127.0.0.1:5432/" in out
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_table("scores", connection)
            types = dict(
                connection.exec_driver_sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'scores'"
                ).all()
            )
        check_rows(frame, book)
        assert types["risk"] == "double precision"
        assert types["as_of"] == "date"

        # The next run replaces the rows in one transaction; --append keeps history.
        publish(book[:10], "20261130T060000-v1")
        assert export(capsys, "--to", "sql", "--url-env", "SCORES_DB", "--table", "scores")[0] == 0
        code, _, err = export(
            capsys, "--to", "sql", "--url-env", "SCORES_DB", "--table", "scores", "--append"
        )
        assert code == 0, err
        with engine.connect() as connection:
            counts = connection.exec_driver_sql(
                "SELECT snapshot_id, count(*) FROM scores GROUP BY 1"
            ).all()
        assert counts == [("20261130T060000-v1", 20)]
    finally:
        engine.dispose()


def test_what_is_exported_is_what_csms_are_shown(
    book: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(book[:5], "20261130T060000-v1", healthy=False)
    KillSwitch(connect(None)).trip("drift on logins", who="U0ADMIN001", source="admin")
    code, out, _ = export(capsys, "--to", str(tmp_path / "s.csv"))
    assert code == 0
    assert "Exported 12,001 scores of snapshot 20261123T060000-v1" in out, "the last good one"


def test_bad_targets_say_what_to_do(
    book: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = export(capsys, "--to", str(tmp_path / "scores.xlsx"))
    assert code == 2
    assert "write a .parquet or .csv file, `sql`, or a database URL" in err
    code, _, err = export(capsys, "--to", "sql")
    assert code == 2
    assert "needs a database URL in the environment variable $CHURNBOT_EXPORT_URL" in err
    code, out, err = export(capsys, "--to", f"postgresql://u:{PASSWORD}@127.0.0.1/x")
    assert code == 2
    assert "--to carries a password" in err
    assert PASSWORD not in out + err
    code, _, err = export(capsys, "--to", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert code == 2
    assert "cannot write table churn_scores at postgresql+psycopg://postgres@127.0.0.1:1/" in err


def test_nothing_published_is_said_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    _embedded_server.cache_clear()
    code, _, err = export(capsys, "--to", str(tmp_path / "s.parquet"))
    _embedded_server.cache_clear()
    assert code == 2
    said = " ".join(err.split())
    assert "nothing to export: no scores were published yet (run churnbot score)" in said
    # No REDIS_URL: an earlier `churnbot score` kept its scores in its own process.
    assert "without REDIS_URL each command keeps its scores in its own process" in said
