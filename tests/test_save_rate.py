"""The save-rate estimator (models/save_rate.py) on tables whose answer is known by hand."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from bot.feedback.save_rate_config import SaveRateFile
from models.save_rate import (
    ALL,
    DONE_COLUMNS,
    EXPOSURE_COLUMNS,
    SaveRateConfig,
    breakdown,
    describe,
    mantel_haenszel,
    per_action,
    save_rate,
    units,
)

WEEK = dt.date(2026, 9, 7)
LOOSE = SaveRateConfig(min_units=1, min_churned=1)


def unit_rows(
    n: int,
    churned: int,
    group: str,
    *,
    action: str = "escalations",
    band: str = "high",
    segment: str = "smb",
    week: dt.date = WEEK,
    version: str = "m1",
) -> list[dict[str, object]]:
    return [
        {
            "account_id": f"{group}-{band}-{segment}-{week}-{i}",
            "action": action,
            "model_version": version,
            "week": week,
            "segment": segment,
            "band": band,
            "group": group,
            "churned": i < churned,
        }
        for i in range(n)
    ]


def test_one_stratum_gives_the_textbook_ratio_and_interval() -> None:
    # 10/100 churned where done, 20/100 where not: RR 0.5, var(log RR) = .1-.01+.05-.01 = .13
    ratio, low, high = mantel_haenszel([(10, 100, 20, 100)]) or (0, 0, 0)
    assert ratio == pytest.approx(0.5)
    assert low == pytest.approx(0.5 * math.exp(-1.959964 * math.sqrt(0.13)), rel=1e-5)
    assert high == pytest.approx(0.5 * math.exp(1.959964 * math.sqrt(0.13)), rel=1e-5)
    table = pd.DataFrame(unit_rows(100, 10, "done") + unit_rows(100, 20, "not_done"))
    rate = save_rate(table, LOOSE, action="escalations")
    assert rate.estimate == pytest.approx(0.5)
    assert rate.low == pytest.approx(1 - high)
    assert rate.high == pytest.approx(1 - low)
    assert (rate.done, rate.done_churned, rate.control_units, rate.control_churned) == (
        100,
        10,
        100,
        20,
    )


def test_strata_keep_a_confounded_crude_comparison_honest() -> None:
    # Done mostly on medium-risk accounts: the crude rates (10/110 = 9% vs 51/110 = 46%)
    # would claim a large save; within the bands it is small, and the pooled ratio says so.
    table = pd.DataFrame(
        unit_rows(100, 5, "done", band="medium")
        + unit_rows(10, 5, "done", band="high")
        + unit_rows(10, 1, "not_done", band="medium")
        + unit_rows(100, 50, "not_done", band="high")
    )
    rate = save_rate(table, LOOSE, action="escalations")
    # medium: 5/100 vs 1/10; high: 5/10 vs 50/100. MH RR = (5*10/110 + 5*100/110) /
    # (1*100/110 + 50*10/110) = 550/600
    assert rate.estimate == pytest.approx(1 - 550 / 600)
    # the control's rate weighted to the done mix: (100 * 0.1 + 10 * 0.5) / 110
    assert rate.control_rate == pytest.approx(15 / 110)


def test_strata_with_one_side_only_are_left_out() -> None:
    table = pd.DataFrame(
        unit_rows(50, 5, "done")
        + unit_rows(50, 10, "not_done")
        + unit_rows(40, 30, "not_done", segment="enterprise")
    )
    rate = save_rate(table, LOOSE, action="escalations")
    assert rate.control_units == 50
    assert rate.estimate == pytest.approx(0.5)


def test_too_few_units_or_churns_say_not_enough_data() -> None:
    table = pd.DataFrame(unit_rows(20, 2, "done") + unit_rows(100, 20, "not_done"))
    rate = save_rate(table, SaveRateConfig(min_units=30), action="escalations")
    assert rate.estimate is None
    assert not rate.enough
    assert "not enough data yet: 20 done and 100 comparable not-done" in describe(rate)
    assert "at least 30 of each" in rate.why_not
    few = save_rate(table, SaveRateConfig(min_units=10, min_churned=25), action="escalations")
    assert few.why_not.startswith("not enough data yet: 22 churned so far; at least 25")
    enough = save_rate(table, SaveRateConfig(min_units=20, min_churned=22), action="escalations")
    assert enough.estimate == pytest.approx(0.5)
    assert describe(enough).startswith("save rate 50% (95% CI ")


def test_no_churn_on_one_side_gives_no_interval() -> None:
    table = pd.DataFrame(unit_rows(50, 0, "done") + unit_rows(50, 10, "not_done"))
    rate = save_rate(table, LOOSE, action="escalations")
    assert rate.estimate is None
    assert "no churn seen on one side" in rate.why_not


def test_held_out_accounts_are_the_control_when_present() -> None:
    table = pd.DataFrame(
        unit_rows(40, 4, "done") + unit_rows(40, 4, "not_done") + unit_rows(40, 8, "held_out")
    )
    rate = save_rate(table, LOOSE, action="escalations")
    assert rate.control == "held_out"
    assert rate.estimate == pytest.approx(0.5)
    assert "held-out" in describe(rate)


def test_per_action_and_breakdown_slice_by_segment_and_model() -> None:
    table = pd.DataFrame(
        unit_rows(50, 5, "done")
        + unit_rows(50, 10, "not_done")
        + unit_rows(50, 5, "done", segment="enterprise", version="m2")
        + unit_rows(50, 5, "not_done", segment="enterprise", version="m2")
        + unit_rows(30, 3, "done", action="usage-drop")
        + unit_rows(30, 3, "not_done", action="usage-drop")
    )
    rates = per_action(table, LOOSE)
    assert [(r.action, r.segment, r.model_version) for r in rates] == [
        ("escalations", ALL, ALL),
        ("usage-drop", ALL, ALL),
    ]
    assert rates[1].estimate == pytest.approx(0.0)
    slices = {(r.action, r.segment, r.model_version): r for r in breakdown(table, LOOSE)}
    assert slices[("escalations", "smb", ALL)].estimate == pytest.approx(0.5)
    assert slices[("escalations", "enterprise", ALL)].estimate == pytest.approx(0.0)
    assert slices[("escalations", ALL, "m2")].estimate == pytest.approx(0.0)
    assert len(slices) == 5 + 3  # escalations: all, 2 segments, 2 models; usage-drop: 3


def test_units_take_the_first_week_shown_and_clicks_within_the_window() -> None:
    later = WEEK + dt.timedelta(weeks=1)
    exposures = pd.DataFrame(
        [
            ("A", WEEK, "smb", "high", "m1", "escalations", False, True),
            ("A", later, "smb", "high", "m1", "escalations", False, True),  # same unit
            ("B", WEEK, "smb", "high", "m1", "escalations", False, False),
            ("C", WEEK, "smb", "high", "m1", "escalations", False, None),  # outcome unknown
            ("D", later, "smb", "high", "m1", "escalations", True, False),  # held out
            ("E", WEEK, "smb", "high", "m1", "escalations", False, False),
        ],
        columns=list(EXPOSURE_COLUMNS),
    )
    done = pd.DataFrame(
        [
            ("A", "escalations", "m1", WEEK + dt.timedelta(days=3)),
            ("B", "usage-drop", "m1", WEEK),  # another action: not this unit's
            ("E", "escalations", "m1", WEEK + dt.timedelta(days=30)),  # too late
        ],
        columns=list(DONE_COLUMNS),
    )
    found = units(exposures, done, done_within_days=14).set_index("account_id")
    assert sorted(found.index) == ["A", "B", "D", "E"]
    assert found.loc["A", "week"] == WEEK
    assert dict(found["group"]) == {
        "A": "done",
        "B": "not_done",
        "D": "held_out",
        "E": "not_done",
    }


def test_save_rate_yaml_defaults_are_the_estimators_defaults() -> None:
    """config/save_rate.yaml's model restates SaveRateConfig's defaults (it may not import this
    module's pandas at start-up): the two must not drift apart."""
    assert SaveRateFile().estimator() == SaveRateConfig()
