"""The feedback figures where people look: `/churn-admin stats` and Prometheus (the admins'
weekly summary is ``bot.feedback.summary``).

This module only gathers (events from the stream, target CSMs from config/slack.yaml and the
latest snapshot, outcomes from Redis) and hands them to the pure ``bot.feedback.metrics``.
Prometheus gets the current week's figures from a collector that recomputes them when
``/metrics`` is scraped, at most every ``metrics_refresh_seconds``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.deps import Deps
from bot.feedback.events import events_table
from bot.feedback.metrics import (
    ALL,
    Rates,
    Targets,
    WeekFigures,
    stats_text,
    week_start,
    weekly_figures,
)
from bot.feedback.outcomes import Outcome
from bot.feedback.store import FeedbackStore, stream_ms
from models.errors import ChurnbotError

if TYPE_CHECKING:  # pandas where the figures are computed, not in the web process's imports
    import pandas as pd

log = logging.getLogger(__name__)


def targets(deps: Deps) -> Targets:
    """Target CSMs: the Slack users config/slack.yaml maps to an owner, with the segments in
    which the latest snapshot gives that owner accounts."""
    segments = deps.settings.segments
    found = {}
    for user, owner in deps.settings.slack.owners.items():
        found[user] = frozenset(s for s in segments if deps.store.top(1, owner=owner, segment=s))
    return Targets(found)


def window_start(weeks: list[dt.date]) -> dt.datetime:
    """Midnight UTC of the first of ``weeks`` (Mondays, oldest first): their events are the
    ones recorded since then."""
    return dt.datetime.combine(weeks[0], dt.time(), tzinfo=dt.UTC)


def recorded_since(events: pd.DataFrame, since: dt.datetime) -> pd.DataFrame:
    """The rows of an events table recorded at or after ``since``, numbered from 0: the table
    ``store.events(since=since)`` gives, so one read of the stream serves both. Selected on
    the entry id's milliseconds, as that read's XRANGE selects them (an entry recorded behind
    the stream's last id gets a later id than its answer's ``at``). One difference: a repeat
    of an ``idem`` first recorded before ``since`` is dropped here, as the whole read drops
    it, where a read from ``since`` never sees the first and keeps it."""
    recorded_ms = events["entry_id"].str.split("-", n=1).str[0].astype("int64")
    return events[recorded_ms >= stream_ms(since)].reset_index(drop=True)


def flagged_accounts(deps: Deps, events: pd.DataFrame) -> list[str]:
    """The accounts ``events`` shows at high risk, sorted: whose outcomes the figures need."""
    flagged = events[events["risk"] >= deps.settings.spec.risk_bands.high]
    return sorted(set(flagged["account_id"]))


def week_figures(
    deps: Deps,
    events: pd.DataFrame,
    weeks: list[dt.date],
    *,
    who: Targets,
    outcomes: Mapping[str, Outcome],
) -> list[WeekFigures]:
    """The figures of ``weeks`` (Mondays, oldest first) from ``events``, those recorded since
    the first (``outcomes`` may hold more accounts than those flagged in them)."""
    return weekly_figures(
        events,
        weeks=weeks,
        targets=who,
        outcomes=outcomes,
        high_risk=deps.settings.spec.risk_bands.high,
        horizon_days=deps.settings.spec.horizon_days,
    )


def figures(deps: Deps, store: FeedbackStore, weeks: list[dt.date]) -> list[WeekFigures]:
    """The figures of ``weeks`` (Mondays, oldest first), reading only the events since the
    first: what the weekly summary, its charts and ``/metrics`` need."""
    events = events_table(store.events(since=window_start(weeks)))
    outcomes = store.outcomes(flagged_accounts(deps, events))
    return week_figures(deps, events, weeks, who=targets(deps), outcomes=outcomes)


def last_weeks(today: dt.date, count: int) -> list[dt.date]:
    """The Mondays of the ``count`` weeks up to and including ``today``'s, oldest first."""
    monday = week_start(today)
    return [monday - dt.timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def stats_answer(deps: Deps, store: FeedbackStore) -> str:
    """The `/churn-admin stats` text: the weekly figures, the save rates per action, and the
    release records of the champion, the previous version and the shadow candidate.

    The release records need every stored event, so the stream is read once, whole, and the
    weeks' events are taken from it; the target CSMs and the outcomes of every flagged
    account are read once for both parts (the stream can be long, and each read costs)."""
    # pandas and the model registry are imported when asked, not by the web process's imports
    from bot.feedback.release import product_lines

    weeks = last_weeks(deps.clock().date(), store.config.stats_weeks)
    events = events_table(store.events())
    who, outcomes = targets(deps), store.outcomes(flagged_accounts(deps, events))
    recent = recorded_since(events, window_start(weeks))
    return "\n".join(
        [
            stats_text(week_figures(deps, recent, weeks, who=who, outcomes=outcomes)),
            *product_lines(deps, store, events, who=who, outcomes=outcomes),
        ]
    )


# --- Prometheus -------------------------------------------------------------------------------

_RATES: tuple[tuple[str, str, Callable[[Rates], float | None]], ...] = (
    ("acceptance_ratio", "helpful / (helpful + not helpful)", lambda r: r.acceptance),
    ("correction_ratio", "share of answered accounts corrected", lambda r: r.correction_rate),
    (
        "action_done_ratio",
        "share of answered accounts with the action done",
        lambda r: r.completion,
    ),
    ("flagged_precision_ratio", "share of flagged accounts that churned", lambda r: r.precision),
    ("answers", "answers recorded", lambda r: float(r.events)),
)


class FeedbackCollector(Collector):
    """This week's feedback figures as gauges, labelled by segment and action (``all`` for
    the whole week). Recomputed on scrape when older than ``refresh_s``; a store that cannot be
    read gives ``churnbot_feedback_up 0`` instead of failing the whole scrape."""

    def __init__(self, compute: Callable[[], WeekFigures], refresh_s: float) -> None:
        self._compute = compute
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._cached: tuple[float, WeekFigures] | None = None

    def _current(self) -> WeekFigures | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._refresh_s:
                try:
                    self._cached = (now, self._compute())
                except ChurnbotError as exc:
                    log.warning("feedback figures unavailable for /metrics: %s", exc)
                    return None
            return self._cached[1]

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Names only, so registering never reads Redis."""
        yield GaugeMetricFamily("churnbot_feedback_up", "feedback figures could be computed")
        yield GaugeMetricFamily("churnbot_feedback_adoption_ratio", "", labels=["segment"])
        for name, _, _ in _RATES:
            yield GaugeMetricFamily(f"churnbot_feedback_{name}", "", labels=["segment", "action"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        week = self._current()
        yield GaugeMetricFamily(
            "churnbot_feedback_up",
            "feedback figures could be computed",
            value=0 if week is None else 1,
        )
        if week is None:
            return
        adoption = GaugeMetricFamily(
            "churnbot_feedback_adoption_ratio",
            "share of target CSMs who answered this week",
            labels=["segment"],
        )
        for segment, value in [(ALL, week.adoption), *week.adoption_by_segment.items()]:
            if value.share is not None:
                adoption.add_metric([segment], value.share)
        yield adoption
        slices = [
            ((ALL, ALL), week.overall),
            *(((segment, ALL), rates) for segment, rates in week.by_segment.items()),
            *(((ALL, action), rates) for action, rates in week.by_action.items()),
        ]
        for name, help_text, read in _RATES:
            family = GaugeMetricFamily(
                f"churnbot_feedback_{name}", f"{help_text}, this week", labels=["segment", "action"]
            )
            for labels, rates in slices:
                figure = read(rates)
                if figure is not None:
                    family.add_metric(list(labels), figure)
            yield family


def register_collector(deps: Deps, store: FeedbackStore) -> None:
    """Export this week's figures on ``deps.metrics.registry`` (the app's own registry)."""

    def this_week() -> WeekFigures:
        return figures(deps, store, last_weeks(deps.clock().date(), 1))[0]

    deps.metrics.registry.register(
        FeedbackCollector(this_week, refresh_s=store.config.metrics_refresh_seconds)
    )
