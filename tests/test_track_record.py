"""The track record (models/track_record.py): flagged accounts' churn against the base rate."""

from __future__ import annotations

import datetime as dt

import pytest

from models.spec import RiskBands
from models.track_record import (
    FlagEntry,
    Rate,
    evaluation_rates,
    flag_entry,
    summarise,
)

TODAY = dt.date(2026, 11, 23)
HORIZON = 90


def entry(as_of: dt.date, accounts: list[tuple[str, str]], **kw: object) -> FlagEntry:
    return flag_entry(
        snapshot_id=f"s-{as_of}",
        as_of=as_of,
        model_version="m1",
        account_ids=[account_id for account_id, _ in accounts],
        bands=[band for _, band in accounts],
        sample_size=kw.pop("sample_size", 1000),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_the_entry_keeps_every_flagged_account_and_a_stable_sample() -> None:
    accounts = [(f"A{i}", "high" if i % 10 == 0 else "low") for i in range(1000)]
    first = entry(TODAY, accounts, sample_size=100)
    assert first.n_accounts == 1000
    assert first.bands == {"high": 100, "medium": 0, "low": 900}
    assert len(first.flagged) == 100
    assert len(first.sample) == 100
    again = entry(TODAY, list(reversed(accounts)), sample_size=100)
    assert again.sample == first.sample, "the same accounts whatever the order read"
    assert FlagEntry.from_dict(first.to_dict()) == first


def book(churners: set[str]) -> dict[str, bool]:
    return {f"A{i}": f"A{i}" in churners for i in range(100)}


def test_flagged_accounts_are_counted_once_at_their_first_flag_in_the_window() -> None:
    old = TODAY - dt.timedelta(days=120)
    later = TODAY - dt.timedelta(days=100)
    recent = TODAY - dt.timedelta(days=30)  # within one horizon: outcome not known yet
    too_old = TODAY - dt.timedelta(days=200)  # beyond two horizons
    high = [f"A{i}" for i in range(10)]
    accounts = [(a, "high" if a in high else "low") for a in (f"A{i}" for i in range(100))]
    entries = [
        entry(too_old, [("A99", "high")]),
        entry(old, accounts),
        entry(later, accounts),
        entry(recent, [("A50", "high")]),
    ]
    churned = book({"A0", "A1", "A2", "A3", "A50"})
    seen: list[tuple[str, dt.date]] = []

    def lookup(account_id: str, as_of: dt.date) -> bool | None:
        seen.append((account_id, as_of))
        return None if account_id == "A9" else churned[account_id]

    record, _ = summarise(entries, lookup, today=TODAY, horizon_days=HORIZON, min_outcomes=5)
    assert record.flagged == 10
    assert record.flagged_rate == Rate(churned=4, known=9), "A9's outcome is not known yet"
    assert record.base_rate == Rate(churned=5, known=99), "A50 churned, unflagged back then"
    assert ("A0", old) in seen, "each account at its first flag"
    assert ("A0", later) not in seen
    assert record.enough
    thin, _ = summarise(entries, lookup, today=TODAY, horizon_days=HORIZON, min_outcomes=10)
    assert not thin.enough


def test_a_risk_level_comes_from_live_outcomes_once_there_are_enough() -> None:
    old = TODAY - dt.timedelta(days=120)
    accounts = [(f"A{i}", "high" if i < 40 else "medium" if i < 50 else "low") for i in range(100)]
    evaluation = {"high": Rate(30, 100), "medium": Rate(10, 200), "low": Rate(2, 10)}
    entries = [entry(old, accounts, evaluation=evaluation)]
    churned = book({f"A{i}" for i in range(12)})
    _, levels = summarise(
        entries,
        lambda a, _: churned[a],
        today=TODAY,
        horizon_days=HORIZON,
        min_outcomes=30,
    )
    assert levels["high"].source == "live"
    assert levels["high"].rate == Rate(12, 40)
    assert levels["medium"].source == "evaluation", "10 live outcomes are too few"
    assert levels["medium"].rate == Rate(10, 200)
    assert levels["medium"].live_known == 10
    assert levels["low"].source == "live"
    assert levels["low"].rate == Rate(0, 50)
    _, no_eval = summarise(
        [entry(old, accounts)],
        lambda a, _: None,
        today=TODAY,
        horizon_days=HORIZON,
        min_outcomes=30,
    )
    assert no_eval["medium"].source == "none"
    assert no_eval["medium"].rate is None


def test_evaluation_rates_pool_calibration_bins_by_band() -> None:
    rows = [
        {"count": 100, "mean_predicted": 0.02, "observed_rate": 0.01},
        {"count": 100, "mean_predicted": 0.2, "observed_rate": 0.15},
        {"count": 50, "mean_predicted": 0.5, "observed_rate": 0.4},
        {"count": 50, "mean_predicted": 0.7, "observed_rate": 0.8},
    ]
    rates = evaluation_rates(rows, RiskBands(high=0.3, medium=0.12))
    assert rates == {"high": Rate(60, 100), "medium": Rate(15, 100), "low": Rate(1, 100)}


def test_an_entry_refuses_ids_and_bands_that_do_not_pair() -> None:
    with pytest.raises(ValueError, match="2 account ids but 1 bands"):
        flag_entry(
            snapshot_id="s",
            as_of=TODAY,
            model_version="m1",
            account_ids=["A1", "A2"],
            bands=["high"],
            sample_size=10,
        )
