"""``churnbot feedback export|forget|outcomes``, ``train --with-feedback`` and
``score --shadow``, run as a user runs them (``main(argv)``), on the embedded store."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bot.cli import main
from bot.cli.sample_data import last_monday
from bot.feedback.config import FeedbackConfig
from bot.feedback.events import COLUMNS, Correction, FeedbackEvent, Kind
from bot.feedback.store import FeedbackStore
from bot.render.feedback import FeedbackRef
from bot.state import connect
from bot.state.audit import AuditLog
from bot.state.store import _embedded_server
from models.contract import load_schema
from models.labels import make_labels, time_split
from tests.slack_harness import CONFIG

REPO = Path(__file__).resolve().parent.parent
ENV_PREFIXES = ("SLACK_", "REDIS_URL", "CHURNBOT_", "PORT")
NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Run:
    code: int
    text: str


def churnbot(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert "Traceback" not in text, text
    return Run(code, text)


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private var/ and a fresh embedded store (REDIS_URL unset), run from the repo root."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))
    _embedded_server.cache_clear()
    yield tmp_path / "var"
    _embedded_server.cache_clear()


def store() -> FeedbackStore:
    """What the CLI sees: the embedded store, default prefix."""
    return FeedbackStore(connect(None), FeedbackConfig())


def record(kind: Kind, user: str, account: str = "ACC-000001", **extra: object) -> None:
    ref = FeedbackRef(account, "snap-1", "m1", 0.8, "usage-drop", "digest")
    event = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, kind, ref, NOW, "smb", **extra)  # type: ignore[arg-type]
    store().record(event, user=user)


def test_export_writes_parquet_and_jsonl(var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record("helpful", "U0CSM00001")
    record("correction", "U0OMAR0001", correction=Correction("churned", ("renewal",), note="x"))
    run = churnbot(capsys, "feedback", "export")
    assert run.code == 0, run.text
    assert "Wrote 2 events" in run.text
    parquet = pd.read_parquet(var / "exports" / "feedback-events.parquet")
    assert list(parquet.columns) == list(COLUMNS)
    assert parquet["kind"].tolist() == ["helpful", "correction"]
    assert list(parquet["wrong_reasons"].iloc[1]) == ["renewal"]
    lines = (var / "exports" / "feedback-events.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["user"] for r in rows] == ["U0CSM00001", "U0OMAR0001"]
    assert rows[1]["real_state"] == "churned"
    dated = churnbot(capsys, "feedback", "export", "--format", "jsonl", "--since", "2099-01-01")
    assert "Wrote 0 events" in dated.text


def test_forget_erases_the_user_and_audits_without_naming_them(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record("helpful", "U0CSM00001")
    record("helpful", "U0OMAR0001")
    bad = churnbot(capsys, "feedback", "forget", "maria")
    assert bad.code == 2
    assert "USER must be a Slack user id" in bad.text
    run = churnbot(capsys, "feedback", "forget", "U0CSM00001")
    assert run.code == 0, run.text
    assert "Erased the user from 1 feedback events" in run.text
    assert [e.user for e in store().events()] == [None, "U0OMAR0001"]
    [entry] = AuditLog(connect(None)).recent(1)
    assert (entry.what, entry.detail) == ("feedback forget", {"events": 1})
    assert "U0CSM00001" not in json.dumps(vars(entry))


@pytest.fixture
def trained(var: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    end = last_monday(dt.date.today()).isoformat()
    book = ("--accounts", "800", "--weeks", "48", "--seed", "3", "--end", end)
    assert churnbot(capsys, "sample-data", *book).code == 0
    assert churnbot(capsys, "train").code == 0
    return var


def test_outcomes_are_stored_from_the_account_data(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = churnbot(capsys, "feedback", "outcomes")
    assert run.code == 0, run.text
    frame = pd.read_parquet(trained / "data" / "accounts.parquet")
    churned = frame.loc[frame["churn_date"].notna(), "account_id"].nunique()
    accounts = frame["account_id"].nunique()
    assert f"Stored the outcomes of {accounts:,} accounts ({churned:,} churned)" in run.text
    assert len(store().outcomes(frame["account_id"].unique().tolist())) == accounts


def test_train_with_feedback_then_shadow_the_new_model(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A churn the CRM never recorded, and a CSM who said so three days after it happened.
    schema = load_schema(CONFIG / "schema.yaml")
    data = trained / "data" / "accounts.parquet"
    frame = pd.read_parquet(data)
    train = time_split(frame, schema, 90).train
    positives = train[make_labels(train, schema, 90)]
    account = positives["account_id"].iloc[len(positives) // 2]
    churned = frame.loc[frame["account_id"] == account, "churn_date"].min()
    frame.loc[frame["account_id"] == account, "churn_date"] = pd.NaT
    frame.to_parquet(data, index=False)
    as_of = train.loc[train["account_id"] == account, "as_of"].max()
    ref = FeedbackRef(account, "snap-1", "m1", 0.8, "usage-drop", "digest")
    event = FeedbackEvent(
        uuid.uuid4().hex,
        uuid.uuid4().hex,
        "correction",
        ref,
        (churned + pd.Timedelta(days=3)).tz_localize("UTC").to_pydatetime(),
        "smb",
        as_of.date().isoformat(),
        Correction("churned"),
    )
    store().record(event, user="U0CSM00001")
    champion = (trained / "registry" / "champion").read_text().strip()

    run = churnbot(capsys, "train", "--with-feedback", "--no-promote")
    assert run.code == 0, run.text
    assert "Feedback: 1 corrections, 1 used" in run.text
    [card_path] = [
        p for p in (trained / "registry").glob("*/card.json") if p.parent.name != champion
    ]
    notes = json.loads(card_path.read_text())["notes"]["feedback"]
    assert notes["used_event_ids"] == [event.event_id]
    assert notes["labels_flipped"] >= 1

    candidate = card_path.parent.name
    shadow = churnbot(capsys, "score", "--shadow", candidate)
    assert shadow.code == 0, shadow.text
    assert f"Shadow run stored: {candidate} next to champion {champion}" in shadow.text
    assert "Nothing was published" in shadow.text
    assert connect(None).get("churnbot:{default}:latest") is None, "no snapshot published"
    same = churnbot(capsys, "score", "--shadow", champion)
    assert same.code == 2
    assert "already the champion" in same.text
