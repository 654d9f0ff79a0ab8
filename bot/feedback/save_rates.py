"""Save rates per playbook action, gathered from what churnbot stores (thin I/O).

Three stored things meet here and go to the pure ``models.save_rate``:

* what each digest showed, or held out (``bot.digest.exposures``): account, week, risk band,
  segment, recommended action, model version, as-of date;
* the "action done" clicks (the feedback stream), each with its model version;
* the known outcomes (`churnbot feedback outcomes`): an exposure churned if the account
  churned within the horizon of the as-of date it was shown with.

Settings are config/save_rate.yaml (``bot.feedback.save_rate_config``, read with the other
settings at start-up). Every figure shown says it is an observational comparison, not an
experiment (``models.save_rate.LABEL``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from bot.deps import Deps
from bot.digest.exposures import ExposureLog
from bot.feedback.outcomes import churned_within
from bot.feedback.save_rate_config import SaveRateFile
from bot.feedback.store import FeedbackStore
from models.save_rate import (
    ALL,
    DONE_COLUMNS,
    EXPOSURE_COLUMNS,
    LABEL,
    SaveRate,
    describe,
    per_action,
    units,
)


def exposures_table(deps: Deps, store: FeedbackStore) -> pd.DataFrame:
    """Every recorded exposure with :data:`EXPOSURE_COLUMNS` (``churned`` None while
    unknown)."""
    rows = [
        (week, exposure)
        for week, _digest, exposure in ExposureLog(deps.redis, prefix=deps.prefix).read()
    ]
    outcomes = store.outcomes(sorted({exposure.account_id for _, exposure in rows}))
    horizon = dt.timedelta(days=deps.settings.spec.horizon_days)
    records = []
    for week, e in rows:
        reference = dt.date.fromisoformat(e.as_of) if e.as_of else week
        churned = churned_within(outcomes.get(e.account_id), reference, horizon)
        records.append(
            (e.account_id, week, e.segment, e.band, e.model_version, e.action, e.held_out, churned)
        )
    return pd.DataFrame(records, columns=list(EXPOSURE_COLUMNS))


def done_table(events: pd.DataFrame) -> pd.DataFrame:
    """The "action done" clicks of an events table, with :data:`DONE_COLUMNS` (``day`` the
    UTC date)."""
    done = events[events["kind"] == "action_done"]
    return pd.DataFrame(
        {
            "account_id": done["account_id"],
            "action": done["action_rule"],
            "model_version": done["model_version"],
            "day": done["at"].dt.date,
        },
        columns=list(DONE_COLUMNS),
    )


def save_rate_units(
    deps: Deps, store: FeedbackStore, config: SaveRateFile, events: pd.DataFrame
) -> pd.DataFrame:
    """The estimator's units: one per account x action x model version shown, outcome known
    (``events``: every stored event, ``bot.feedback.events.events_table``)."""
    return units(
        exposures_table(deps, store), done_table(events), done_within_days=config.done_within_days
    )


def current_save_rates(deps: Deps, store: FeedbackStore, events: pd.DataFrame) -> list[SaveRate]:
    """Each action's save rate with its interval (or why there is none yet), by action name:
    what a chart of save rates draws (``events``: every stored event, read once by the
    caller)."""
    config = deps.settings.save_rate
    return per_action(save_rate_units(deps, store, config, events), config.estimator())


def save_rate_lines(rates: list[SaveRate]) -> list[str]:
    """The stats section: one line per action (``models.save_rate.breakdown`` order: overall,
    then its segments that have both groups), headed by what the figure is and is not. Per
    model version: the release records."""
    lines = [f"*Save rate by recommended action* ({LABEL})"]
    for rate in rates:
        if rate.segment == ALL and rate.model_version == ALL:
            lines.append(f"• `{rate.action}`: {describe(rate)}")
        elif rate.segment != ALL and rate.done and rate.control_units:
            lines.append(f"    ◦ {rate.segment}: {describe(rate)}")
    if not rates:
        lines.append(
            "• no digest has shown an account whose outcome is known yet (outcomes come from "
            "`churnbot feedback outcomes`)"
        )
    return lines
