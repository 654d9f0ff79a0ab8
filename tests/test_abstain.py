"""Abstaining when the data is thin (models/abstain.py) and its configuration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from models.abstain import InputColumns, first_seen, thin_rows
from models.errors import ConfigError
from models.features import FeaturesConfig, FeatureSet
from models.spec import AbstainSettings, load_spec
from tests.sample_config import CONFIG

DAY = pd.Timestamp("2026-11-23")


def feature_set() -> FeatureSet:
    """Four features over five columns: one compares with an earlier value (history), one
    has a fill (empty means "none"), one flags an empty cell."""
    config = FeaturesConfig.model_validate(
        {
            "features": {
                "seats": {
                    "transform": "ratio",
                    "columns": ["active", "bought"],
                    "label": "Seats used",
                },
                "users_change": {
                    "transform": "change",
                    "columns": ["users", "users_before"],
                    "label": "Active users, change",
                },
                "escalation_age": {"column": "escalation_days", "fill": 0},
                "nps_missing": {"transform": "missing", "column": "nps"},
            }
        }
    )
    return FeatureSet(config, "as_of")


def rows(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {
        "account_id": [f"A{i}" for i in range(n)],
        "as_of": [DAY] * n,
        "active": [5.0] * n,
        "bought": [10.0] * n,
        "users": [4.0] * n,
        "users_before": [6.0] * n,
        "escalation_days": [None] * n,
        "nps": [None] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_only_columns_whose_emptiness_is_missing_data_count() -> None:
    inputs = InputColumns.of(feature_set())
    assert inputs.columns == ("active", "bought", "users", "users_before")
    assert inputs.history == ("Active users, change",)


def test_a_mostly_empty_row_abstains_and_names_what_is_missing() -> None:
    frame = rows(
        active=[5.0, None, None],
        bought=[10.0, None, None],
        users=[4.0, None, 4.0],
    )
    result = thin_rows(frame, feature_set(), AbstainSettings(max_missing_share=0.5))
    assert result[0] is None, "a full row is scored (empty fill/missing columns do not count)"
    assert result[1] == ["Seats used", "Active users, change"], "3 of 4 inputs empty"
    assert result[2] is None, "exactly half empty is not above the threshold"


def test_an_account_too_new_for_its_history_features_abstains() -> None:
    frame = rows(account_id=["OLD", "NEW"])
    seen = pd.Series([DAY - pd.Timedelta(days=200), DAY - pd.Timedelta(days=12)])
    settings = AbstainSettings(min_history_days=28)
    result = thin_rows(frame, feature_set(), settings, first_seen=seen)
    assert result == [
        None,
        ["history: first seen 12 days ago (28 days needed for Active users, change)"],
    ]
    assert thin_rows(frame, feature_set(), settings) == [None, None], "age unknown: not judged"
    off = AbstainSettings(min_history_days=0)
    assert thin_rows(frame, feature_set(), off, first_seen=seen) == [None, None]


def test_first_seen_comes_from_the_accounts_first_row() -> None:
    history = pd.DataFrame(
        {
            "account_id": ["OLD", "OLD", "A", "A", "B"],
            "as_of": [DAY - pd.Timedelta(days=28), DAY, DAY - pd.Timedelta(days=14), DAY, DAY],
        }
    )
    live = history.iloc[[1, 3, 4]].reset_index(drop=True)
    seen = first_seen(live, history, id_column="account_id", date_column="as_of")
    assert seen is not None
    assert pd.isna(seen[0]), "there from the data's first day: its age is unknown"
    assert [d.date() for d in seen[1:]] == [dt.date(2026, 11, 9), dt.date(2026, 11, 23)]
    frame = rows(account_id=["OLD", "A", "B"])
    settings = AbstainSettings(min_history_days=28)
    assert [bool(r) for r in thin_rows(frame, feature_set(), settings, first_seen=seen)] == [
        False,
        True,
        True,
    ]
    single = history.iloc[[1, 3, 4]]
    assert first_seen(live, single, id_column="account_id", date_column="as_of") is None


def test_the_shipped_config_sets_the_thresholds() -> None:
    spec = load_spec(CONFIG / "product.yaml")
    assert spec.abstain.max_missing_share == 0.5
    assert spec.track_record.min_outcomes == 30


def test_a_wrong_abstain_key_is_named(tmp_path: Path) -> None:
    text = (CONFIG / "product.yaml").read_text()
    bad = tmp_path / "product.yaml"
    bad.write_text(text.replace("max_missing_share: 0.5", "max_missing: 0.5"))
    with pytest.raises(ConfigError, match=r"product.yaml: abstain.max_missing: unknown key"):
        load_spec(bad)
    bad.write_text(text.replace("max_missing_share: 0.5", "max_missing_share: 1.5"))
    with pytest.raises(ConfigError, match=r"abstain.max_missing_share: Input should be less"):
        load_spec(bad)
