"""Corrections become training labels and weights, and the model card says which."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from models.contract import AccountSchema, load_schema
from models.feedback_labels import feedback_labels
from models.generator import generate_accounts
from models.labels import make_labels, time_split
from models.pipeline import train_and_register
from models.registry import Registry
from models.spec import load_spec
from tests import sample_config
from tests.slack_harness import CONFIG

HORIZON = 90


@pytest.fixture(scope="module")
def schema() -> AccountSchema:
    return load_schema(CONFIG / "schema.yaml")


@pytest.fixture(scope="module")
def book(schema: AccountSchema) -> pd.DataFrame:
    return generate_accounts(800, 48, seed=11, end=dt.date(2026, 11, 16)).accounts


@dataclass(frozen=True)
class Lost:
    """The book as a CRM that never recorded one account's churn, and that account."""

    crm: pd.DataFrame
    account: str
    churned: pd.Timestamp  # when it really churned
    row: pd.Series  # its last training row (labelled "retained" by the CRM)


@pytest.fixture(scope="module")
def lost(book: pd.DataFrame, schema: AccountSchema) -> Lost:
    train = time_split(book, schema, HORIZON).train
    positives = train[make_labels(train, schema, HORIZON)]
    account = positives["account_id"].iloc[len(positives) // 2]
    crm = book.copy()
    churned = crm.loc[crm["account_id"] == account, "churn_date"].min()
    crm.loc[crm["account_id"] == account, "churn_date"] = pd.NaT
    rows = time_split(crm, schema, HORIZON).train
    row = rows[rows["account_id"] == account].sort_values("as_of").iloc[-1]
    return Lost(crm, account, churned, row)


def correction(account: str, as_of: pd.Timestamp, state: str, at: pd.Timestamp) -> dict:
    return {
        "event_id": uuid.uuid4().hex,
        "at": pd.Timestamp(at, tz="UTC"),
        "kind": "correction",
        "account_id": account,
        "as_of": as_of.date().isoformat(),
        "real_state": state,
    }


def report(lost: Lost, state: str, days_after_churn: int = 3) -> dict:
    """A CSM's answer on the lost account's last digest, a few days after it churned."""
    at = lost.churned + pd.Timedelta(days=days_after_churn)
    return correction(lost.account, lost.row["as_of"], state, at)


def labels_for(events: list[dict], book: pd.DataFrame, schema: AccountSchema):
    return feedback_labels(
        pd.DataFrame(events), book, schema, horizon_days=HORIZON, confirmed_weight=2.0
    )


def test_already_churned_sets_the_rows_whose_window_reaches_the_report(
    lost: Lost, schema: AccountSchema
) -> None:
    event = report(lost, "churned")
    result = labels_for([event], lost.crm, schema)
    assert result.corrections == 1
    assert result.used == (event["event_id"],)
    assert result.labels.all()
    assert lost.row.name in result.labels.index
    rows = lost.crm.loc[result.labels.index]
    assert (rows["account_id"] == lost.account).all()
    assert rows["as_of"].max() == lost.row["as_of"]
    assert rows["as_of"].min() >= event["at"].tz_convert(None) - pd.Timedelta(days=HORIZON)
    assert result.flipped == len(result.labels)
    assert (result.weights == 2.0).all()
    notes = result.notes()
    assert notes["used_event_ids"] == [event["event_id"]]
    assert notes["labels_flipped"] == result.flipped


def test_reports_the_data_contradicts_are_not_used(
    book: pd.DataFrame, lost: Lost, schema: AccountSchema
) -> None:
    train = time_split(book, schema, HORIZON).train
    labels = make_labels(train, schema, HORIZON)
    middle = train["as_of"].sort_values().iloc[len(train) // 2]
    churned = train[labels & (train["as_of"] == middle)].iloc[0]
    alive = train[~labels & (train["as_of"] == middle)].iloc[0]
    latest = book[book["as_of"] == book["as_of"].max()].iloc[0]
    soon = pd.Timedelta(days=10)
    events = [
        # a churn the data records is a fact; a belief does not overrule it
        correction(churned["account_id"], churned["as_of"], "renewed", churned["as_of"] + soon),
        correction(churned["account_id"], churned["as_of"], "not_at_risk", churned["as_of"] + soon),
        # "already churned" about an account still in the data months later
        correction(alive["account_id"], alive["as_of"], "churned", alive["as_of"] + soon),
        # the newest weeks are not training rows (their outcome is not known yet)
        correction(latest["account_id"], latest["as_of"], "churned", latest["as_of"] + soon),
        {**report(lost, "churned"), "kind": "helpful"},  # thumbs are not corrections
    ]
    result = labels_for(events, book, schema)
    assert result.corrections == 4
    assert result.used == ()
    assert result.ignored == {
        "contradicts the account data": 3,
        "not a training row (too recent, held out, or unknown account)": 1,
    }


def test_confirmations_weigh_and_the_latest_report_wins(lost: Lost, schema: AccountSchema) -> None:
    first = report(lost, "churned", days_after_churn=1)
    second = report(lost, "not_at_risk", days_after_churn=2)
    result = labels_for([first, second], lost.crm, schema)
    assert not result.labels[lost.row.name]
    assert result.weights[lost.row.name] == 2.0
    assert set(result.used) == {first["event_id"], second["event_id"]}


def test_training_with_feedback_records_it_in_the_model_card(
    lost: Lost, schema: AccountSchema, tmp_path: Path
) -> None:
    result = labels_for([report(lost, "churned")], lost.crm, schema)
    spec = load_spec(CONFIG / "product.yaml")
    registry = Registry(tmp_path)
    outcome = train_and_register(
        lost.crm,
        schema,
        sample_config.features(),
        spec,
        registry,
        data_source="test",
        promote=False,
        feedback=result,
    )
    assert outcome.card.notes["feedback"] == result.notes()
    assert outcome.card.notes["feedback"]["used"] == 1
    plain = train_and_register(
        lost.crm, schema, sample_config.features(), spec, registry, data_source="test"
    )
    assert "feedback" not in plain.card.notes


def test_an_events_table_without_the_needed_columns_is_refused(
    book: pd.DataFrame, schema: AccountSchema
) -> None:
    with pytest.raises(ValueError, match=r"lacks the columns \['real_state'\]"):
        feedback_labels(
            pd.DataFrame(columns=["event_id", "at", "kind", "account_id", "as_of"]),
            book,
            schema,
            horizon_days=HORIZON,
            confirmed_weight=2.0,
        )
