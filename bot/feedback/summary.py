"""The weekly summary to the admins: last week's feedback figures, next to the week before,
then the report's charts (``bot.feedback.report_charts``) in the same place.

A module of its own because it speaks to Slack (through ``notify_admins``) while the figures
themselves (``bot.feedback.stats``) are also needed by `/churn-admin`, which must not import
the Slack listeners.
"""

from __future__ import annotations

import datetime as dt
import logging

from slack_sdk import WebClient

from bot.deps import Deps
from bot.feedback import feedback_store
from bot.feedback.metrics import WeekFigures, answered, rates_line, week_start
from bot.feedback.report_charts import send_weekly_charts
from bot.feedback.stats import figures, last_weeks
from bot.listeners.admin import notify_admins
from models.errors import ChurnbotError

log = logging.getLogger(__name__)
#: How long the "sent" fence of one week's summary is kept (longer than a week, so a rerun
#: the next day does not send it again).
FENCE = dt.timedelta(days=14)


def summary_text(this: WeekFigures, before: WeekFigures) -> str:
    o = this.overall
    return "\n".join(
        [
            f"*churnbot feedback, week of {this.week}*",
            f"{answered(o)} (the week before: {answered(before.overall)}).",
            f"Adoption: {this.adoption.active} of {this.adoption.targets} target CSMs answered "
            f"(the week before: {before.adoption.active}).",
            f"Last week: {rates_line(o)}.",
            "Details by segment and action: `/churn-admin stats`.",
        ]
    )


def weekly_summary(deps: Deps, client: WebClient) -> None:
    """Post last week's figures and the charts of the weeks up to it to the admins, once per
    week however often it is called (a fence in Redis, so a second scheduler or a rerun sends
    nothing), and trim events past the retention window. For the worker's scheduler: errors
    are logged, never raised."""
    try:
        store = feedback_store(deps)
        store.trim()
        last_monday = week_start(deps.clock().date()) - dt.timedelta(weeks=1)
        before, this = figures(deps, store, [last_monday - dt.timedelta(weeks=1), last_monday])
        if not store.claim_once(f"weekly:{last_monday}", FENCE):
            log.info("the weekly feedback summary of %s was already sent", last_monday)
            return
    except ChurnbotError as exc:
        log.error("weekly feedback summary not sent: %s", exc)
        return
    notify_admins(deps, client, summary_text(this, before))
    send_weekly_charts(deps, client, store, last_weeks(last_monday, store.config.stats_weeks))
