"""``churnbot init``'s guesses on exports built here: which column is the label, and which
way round a yes/no label reads."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from models.profile import propose

TODAY = dt.date(2026, 11, 30)


def export(**label: list[str]) -> pd.DataFrame:
    n = len(next(iter(label.values())))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "champion_left_90d": ["yes", "no"] * (n // 2),
            "seats": [str(10 + i) for i in range(n)],
            **label,
        }
    )


def test_a_churn_word_beats_a_column_that_merely_says_left() -> None:
    proposal = propose(export(churned=["no", "yes"] * 20), TODAY)
    assert proposal.roles["label"] == "churned"
    assert proposal.schema["champion_left_90d"]["type"] == "bool", "a feature, not the label"
    assert proposal.features["champion_left_90d"]["transform"] == "yes_no"


def test_a_label_that_says_the_account_stayed_is_read_the_other_way_round() -> None:
    proposal = propose(export(retained=["Yes", "No"] * 20), TODAY)
    assert proposal.roles["label"] == "retained"
    assert proposal.mapping["retained"] == {"to": "retained", "values": {"No": True, "Yes": False}}
    assert any("read the other way round" in note for note in proposal.notes)


def test_a_label_in_words_becomes_a_value_map() -> None:
    proposal = propose(export(status_churn=["Active", "Churned"] * 20), TODAY)
    mapping = proposal.mapping["status_churn"]
    assert mapping["values"] == {"Active": False, "Churned": True}
    assert proposal.schema["status_churn"]["type"] == "bool"
