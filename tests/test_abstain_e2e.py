"""Abstaining end to end: a real scoring run publishes an account too new for its history
features and one whose row is mostly empty; a signed ``/churn`` shows each as "not enough data
to score" with what is missing, and a digest spends none of its places on them.

The book: a sample book scored by a freshly trained model, where the riskiest accounts belong
to Maria (the ``cs-east`` digest's owner). The riskiest of all is made too new (its rows older
than a week are dropped: first seen 7 days before its row, 28 needed), another of Maria's has
most of its inputs emptied. Without abstaining both would lead her digest.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bot.publish import build_scorer, run_scoring
from bot.state.flag_log import FlagLog
from models.abstain import InputColumns, first_seen, thin_rows
from models.cards import CardCodec
from models.generator import generate_accounts
from models.registry import Registry
from models.scoring import latest_rows
from models.sources_config import SourcesConfig
from models.validate import validate_frame
from tests import sample_config
from tests.golden_cards import decoded_card
from tests.slack_harness import NOW, Harness
from tests.test_digest_csm import EAST, MARIA, post_digest
from tests.test_e2e_churn import churn, mrkdwn_texts

END = NOW.date()
#: Inputs emptied in the thin account's newest row (more than half of the model's inputs).
EMPTIED = (
    "seats_active",
    "seats_purchased",
    "logins_30d",
    "logins_prev_30d",
    "active_users",
    "active_users_4w_ago",
    "key_feature_events_30d",
    "key_feature_events_prev_30d",
    "support_tickets_30d",
    "open_escalations",
    "days_since_csm_touch",
    "overdue_invoices",
    "arr",
    "tenure_months",
    "renewal_date",
)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A registry with a champion, and the sample book it was trained on."""

    book = generate_accounts(800, 52, seed=11, end=END).accounts
    root = tmp_path_factory.mktemp("registry")
    sample_config.train(book, Registry(root))
    return root, book


def thin_book(harness: Harness, root: Path, book: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The book with Maria owning the riskiest accounts, the riskiest made too new and
    another mostly empty; and the ids of those two."""
    settings = harness.deps.settings
    live = latest_rows(book, settings.schema)
    risk = build_scorer(settings, Registry(root).load()).predict(live)
    riskiest = live["account_id"].to_numpy()[risk.argsort()[::-1][:6]].tolist()
    new, empty = riskiest[0], riskiest[1]
    frame = book.copy()
    frame.loc[frame["account_id"].isin(riskiest), "owner_csm"] = MARIA
    week_ago = pd.Timestamp(END - dt.timedelta(days=7))
    frame = frame[(frame["account_id"] != new) | (frame["as_of"] >= week_ago)]
    return frame.reset_index(drop=True), new, empty


def publish_scored(harness: Harness, root: Path, frame: pd.DataFrame, empty: str) -> None:
    """A scoring run into the harness' Redis, as `churnbot score` runs one. The shipped schema
    requires the inputs, so ``empty``'s newest row has them emptied after validation, as a
    schema making them optional (a bring-your-own export) would let them through."""
    deps = harness.deps
    text = frame.to_csv(index=False, date_format="%Y-%m-%d")
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    valid = validate_frame(
        raw, deps.settings.schema, source="test", sources=SourcesConfig(max_reject_share=0.5)
    )
    rows = valid.frame.copy()
    newest = (rows["account_id"] == empty) & (rows["as_of"] == rows["as_of"].max())
    for column in EMPTIED:
        if pd.api.types.is_integer_dtype(rows[column].dtype):
            rows[column] = rows[column].astype("Int64")
        rows.loc[newest, column] = None
    result = replace(valid, frame=rows)
    outcome = run_scoring(
        deps.settings,
        store=deps.store,
        switch=deps.switch,
        registry=Registry(root),
        flags=FlagLog(deps.redis, prefix=deps.prefix),
        load=lambda: result,
        now=NOW,
    )
    assert outcome.healthy, outcome.failures


def test_thin_accounts_say_what_is_missing_and_take_no_digest_place(
    harness: Harness, scored: tuple[Path, pd.DataFrame]
) -> None:
    root, book = scored
    frame, new, empty = thin_book(harness, root, book)
    publish_scored(harness, root, frame, empty)
    features = Registry(root).load().features
    inputs = InputColumns.of(features)
    history = " and ".join(inputs.history) if len(inputs.history) < 3 else None

    too_new = churn(harness, new)
    text = mrkdwn_texts(too_new["blocks"])
    assert too_new["text"].endswith(": not enough data to score")
    assert "*Not enough data to score* — what is missing:" in text
    assert "• history: first seen 7 days ago (28 days needed for " in text
    if history is not None:
        assert f"needed for {history})" in text
    assert "%" not in text, "no percentage for an account the bot cannot score"
    assert not [b for b in too_new["blocks"] if b["type"] == "actions"], "no buttons"

    mostly_empty = churn(harness, empty)
    text = mrkdwn_texts(mostly_empty["blocks"])
    assert "*Not enough data to score* — what is missing:" in text
    assert f"• {features.label('seat_utilisation')}" in text
    assert "history:" not in text, "an old account: only its empty inputs are missing"

    [message] = post_digest(harness, "cs-east", EAST)
    shown = [
        b["block_id"][3:] for b in message["blocks"] if b.get("block_id", "").startswith("fb:")
    ]
    assert shown, "Maria's other risky accounts are in her digest"
    assert new not in shown
    assert empty not in shown


def test_every_decoded_card_says_what_thin_rows_says(
    harness: Harness, scored: tuple[Path, pd.DataFrame]
) -> None:
    """The record keeps the verdict compactly (age, a bitmask of empty inputs); read back it
    is word for word what models/abstain.py says of each row, and only those rows abstain."""
    root, book = scored
    settings = harness.deps.settings
    frame, _, _ = thin_book(harness, root, book)
    live = latest_rows(frame, settings.schema)
    live.loc[::7, ["seats_active", "logins_30d", "active_users", "arr"]] = None
    live.loc[::5, ["active_users_4w_ago", "logins_prev_30d"]] = None
    seen = first_seen(
        live, frame, id_column=settings.schema.id_column, date_column=settings.schema.date_column
    )
    scorer = build_scorer(settings, Registry(root).load()).with_first_seen(seen)
    expected = thin_rows(live, scorer.features, settings.spec.abstain, first_seen=seen)
    codec = CardCodec.from_spec(scorer.codec().spec())

    chunk = scorer.score(live)

    decoded = [
        decoded_card(codec, chunk, i).get("abstain", {"missing": None})["missing"]
        for i in range(len(chunk))
    ]
    assert decoded == expected
    assert chunk.abstained is not None
    assert chunk.abstained.tolist() == [missing is not None for missing in expected]
    assert 10 < sum(chunk.abstained.tolist()) < len(chunk) / 2, "some rows abstain, most do not"
