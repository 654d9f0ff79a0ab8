"""Did acting help? The save rate of a playbook action, from what churnbot already records.

An observational comparison, not an experiment: CSMs choose which actions they do, so
accounts where an action was done can differ from the others in ways no column shows. What
this module does to keep the comparison fair is compare like with like and say how sure it is:

* **unit**: one account shown with one recommended action by one model version, from the
  first week it was shown so (its *reference date*). It is **done** when a CSM marked that
  action done within ``done_within_days`` of that date, **held out** when the holdout kept it
  out of the digests (``bot.digest.holdout``), else **not done**. Its outcome is whether it
  churned within the horizon of the reference date (units without a known outcome are left
  out by the caller);
* **comparable**: units are compared within strata of the same risk band, segment and week
  shown, and the strata are pooled with the Mantel-Haenszel risk ratio (strata where only one
  group is present say nothing and are left out);
* **control**: held-out accounts when the action has any (a true control: chosen by a hash of
  the account id, not by a CSM), else the flagged accounts where the action was not done;
* **save rate** = 1 - risk ratio: the share of churn that did not happen where the action
  was done, relative to comparable accounts where it was not. 0 means no effect; negative,
  more churn where it was done;
* **interval**: the Greenland-Robins variance of the log of the Mantel-Haenszel risk ratio,
  a normal approximation on the log scale (95% by default), turned into save-rate terms;
* **not enough data yet** below ``min_units`` units in either group or ``min_churned``
  churned units in all (config/feedback.yaml), or when no churn at all was seen on one side
  (the log ratio is then infinite and no interval is honest).

Pure functions of tables: no Redis, no Slack; ``bot.feedback.save_rates`` gathers the input.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import pandas as pd

ALL = "all"
LABEL = "observational comparison, not an experiment"
#: Columns of the exposures table :func:`units` reads (one row per account shown or held out
#: in one week); ``churned`` is True, False, or None while unknown.
EXPOSURE_COLUMNS = (
    "account_id",
    "week",
    "segment",
    "band",
    "model_version",
    "action",
    "held_out",
    "churned",
)
#: Columns of the "action done" table: one row per click (account, action, model, date).
DONE_COLUMNS = ("account_id", "action", "model_version", "day")

Group = Literal["done", "not_done", "held_out"]
Control = Literal["held_out", "not_done"]


@dataclass(frozen=True)
class SaveRateConfig:
    """When a figure is shown rather than "not enough data yet", and how sure it claims to be."""

    min_units: int = 30
    min_churned: int = 10
    done_within_days: int = 14
    confidence: float = 0.95


@dataclass(frozen=True)
class SaveRate:
    """One action's save rate in one slice (``segment`` and ``model_version`` or ``ALL``).

    Counts are over the strata where both groups are present; ``control_rate`` is the control
    group's churn rate weighted to the done group's mix of strata (what "comparable" means).
    ``estimate``, ``low`` and ``high`` are None when there is not enough data yet.
    """

    action: str
    segment: str
    model_version: str
    control: Control
    done: int
    done_churned: int
    control_units: int
    control_churned: int
    control_rate: float | None
    estimate: float | None
    low: float | None
    high: float | None
    why_not: str = ""
    confidence: float = 0.95

    @property
    def done_rate(self) -> float | None:
        return self.done_churned / self.done if self.done else None

    @property
    def enough(self) -> bool:
        return self.estimate is not None


def units(
    exposures: pd.DataFrame, done: pd.DataFrame, *, done_within_days: int = 14
) -> pd.DataFrame:
    """One row per account x action x model version, from its first week shown so.

    ``exposures`` has :data:`EXPOSURE_COLUMNS` (``week`` a date), ``done`` has
    :data:`DONE_COLUMNS` (``day`` a date). Returns the unit's ``week``, ``segment``, ``band``,
    ``group`` and ``churned``, keeping only units whose outcome is known.
    """
    key = ["account_id", "action", "model_version"]
    first = (
        exposures.sort_values(["week", "held_out"])
        .drop_duplicates(key, keep="first")
        .reset_index(drop=True)
    )
    clicks = done.groupby(key)["day"].agg(list) if len(done) else pd.Series(dtype=object)
    within = dt.timedelta(days=done_within_days)

    def group(row: pd.Series) -> Group:
        if row["held_out"]:
            return "held_out"
        days = clicks.get(tuple(row[key]), [])
        start = row["week"]
        return "done" if any(start <= day <= start + within for day in days) else "not_done"

    first["group"] = first.apply(group, axis=1) if len(first) else pd.Series(dtype=object)
    known = first[first["churned"].notna()].copy()
    known["churned"] = known["churned"].astype(bool)
    return known[[*key, "week", "segment", "band", "group", "churned"]].reset_index(drop=True)


def mantel_haenszel(
    strata: Sequence[tuple[int, int, int, int]], confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """(risk ratio, low, high) pooled over ``strata`` of (done churned, done units, control
    churned, control units); None when a side has no churn (the ratio is 0 or infinite).

    Greenland and Robins (1985) variance of log RR, so a single stratum gives the textbook
    ``1/a - 1/n1 + 1/c - 1/n0``.
    """
    numerator = denominator = variance = 0.0
    for a, n1, c, n0 in strata:
        total = n1 + n0
        if not n1 or not n0:
            continue
        numerator += a * n0 / total
        denominator += c * n1 / total
        variance += (n1 * n0 * (a + c) - a * c * total) / total**2
    if numerator <= 0 or denominator <= 0:
        return None
    ratio = numerator / denominator
    se = math.sqrt(variance / (numerator * denominator))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def save_rate(
    table: pd.DataFrame,
    config: SaveRateConfig,
    *,
    action: str,
    segment: str = ALL,
    model_version: str = ALL,
) -> SaveRate:
    """The save rate of the units in ``table`` (one action's, already sliced)."""
    control: Control = "held_out" if (table["group"] == "held_out").any() else "not_done"
    sides = table[table["group"].isin(["done", control])]
    strata = []
    done = done_churned = control_units = control_churned = 0
    standardised = 0.0
    for _, rows in sides.groupby(["band", "segment", "week"], sort=True):
        treated = rows[rows["group"] == "done"]["churned"]
        others = rows[rows["group"] == control]["churned"]
        if treated.empty or others.empty:
            continue
        a, n1, c, n0 = int(treated.sum()), len(treated), int(others.sum()), len(others)
        strata.append((a, n1, c, n0))
        done, done_churned = done + n1, done_churned + a
        control_units, control_churned = control_units + n0, control_churned + c
        standardised += n1 * c / n0
    pooled = mantel_haenszel(strata, config.confidence)
    why_not = ""
    if min(done, control_units) < config.min_units:
        why_not = (
            f"not enough data yet: {done} done and {control_units} comparable "
            f"{'held-out' if control == 'held_out' else 'not-done'} accounts with a known "
            f"outcome; at least {config.min_units} of each are needed"
        )
    elif done_churned + control_churned < config.min_churned:
        why_not = (
            f"not enough data yet: {done_churned + control_churned} churned so far; at least "
            f"{config.min_churned} are needed"
        )
    elif pooled is None:
        why_not = "not enough data yet: no churn seen on one side, so no honest interval"
    ratio, low, high = pooled if pooled is not None and not why_not else (None, None, None)
    return SaveRate(
        action=action,
        segment=segment,
        model_version=model_version,
        control=control,
        done=done,
        done_churned=done_churned,
        control_units=control_units,
        control_churned=control_churned,
        control_rate=standardised / done if done else None,
        estimate=None if ratio is None else 1 - ratio,
        low=None if high is None else 1 - high,
        high=None if low is None else 1 - low,
        why_not=why_not,
        confidence=config.confidence,
    )


def per_action(table: pd.DataFrame, config: SaveRateConfig) -> list[SaveRate]:
    """Each action's save rate over all segments and model versions, by action name: the
    figure a chart of save rates with their intervals draws."""
    return [
        save_rate(rows, config, action=str(action))
        for action, rows in table.groupby("action", sort=True)
    ]


def breakdown(table: pd.DataFrame, config: SaveRateConfig) -> list[SaveRate]:
    """Per action: overall, then per segment, then per model version."""
    found = []
    for action, rows in table.groupby("action", sort=True):
        found.append(save_rate(rows, config, action=str(action)))
        for segment, part in rows.groupby("segment", sort=True):
            found.append(save_rate(part, config, action=str(action), segment=str(segment)))
        for version, part in rows.groupby("model_version", sort=True):
            found.append(save_rate(part, config, action=str(action), model_version=str(version)))
    return found


# --- text -------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def describe(rate: SaveRate) -> str:
    """One line: the save rate with its interval and counts, or why there is none yet."""
    control = "held-out" if rate.control == "held_out" else "comparable not done"
    counts = (
        f"churned {rate.done_churned}/{rate.done} {_pct(rate.done_rate)} where done vs "
        f"{rate.control_churned}/{rate.control_units} ({_pct(rate.control_rate)} weighted) "
        f"{control}"
    )
    if not rate.enough:
        return f"{rate.why_not} ({counts})"
    return (
        f"save rate {_pct(rate.estimate)} ({rate.confidence:.0%} CI {_pct(rate.low)} to "
        f"{_pct(rate.high)}) · {counts}"
    )
