"""The track record where CSMs look: gathered from the flag log and the known outcomes.

This module only gathers (flag entries of the window from :class:`~bot.state.flag_log.FlagLog`,
outcomes stored by ``churnbot feedback outcomes``) and hands them to the pure
``models.track_record``; the result is cached in Redis for an hour, keyed by the day and the
newest flag entry, so a ``/churn`` answer costs one read, not a pass over a quarter's flags.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.deps import Deps
from bot.feedback import feedback_store
from bot.feedback.outcomes import churned_within
from bot.state.flag_log import FlagLog
from models.track_record import Rate, RiskLevel, TrackRecord, summarise, window


@dataclass(frozen=True)
class TrackSummary:
    """The digest's track record and the card's churn rate per band, as of one day."""

    record: TrackRecord
    levels: dict[str, RiskLevel]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> TrackSummary:
        data = json.loads(text)
        raw = data["record"]
        record = TrackRecord(
            since=dt.date.fromisoformat(raw["since"]),
            until=dt.date.fromisoformat(raw["until"]),
            horizon_days=raw["horizon_days"],
            flagged=raw["flagged"],
            flagged_rate=Rate(**raw["flagged_rate"]),
            base_rate=Rate(**raw["base_rate"]),
            min_outcomes=raw["min_outcomes"],
        )
        levels = {band: _level(level) for band, level in data["levels"].items()}
        return cls(record, levels)


def _level(raw: dict[str, Any]) -> RiskLevel:
    rate = raw.pop("rate")
    return RiskLevel(rate=None if rate is None else Rate(**rate), **raw)


def flag_log(deps: Deps) -> FlagLog:
    """The flag log of ``deps``' Redis and key prefix."""
    return FlagLog(deps.redis, prefix=deps.prefix)


def track_summary(deps: Deps) -> TrackSummary:
    """The track record as of the clock's day, from the cache when it is fresh."""
    spec = deps.settings.spec
    today = deps.clock().date()
    log = flag_log(deps)
    key = f"{today.isoformat()}:{log.latest_id() or '-'}"
    cached = log.cached(key)
    if cached is not None:
        return TrackSummary.from_json(cached)
    newest = log.latest()
    since, until = window(today, spec.horizon_days)
    entries = log.entries(since, until)
    accounts = sorted({a for e in entries for a in (*e.flagged, *e.sample)})
    outcomes = feedback_store(deps).outcomes(accounts)
    horizon = dt.timedelta(days=spec.horizon_days)

    def churned(account_id: str, as_of: dt.date) -> bool | None:
        return churned_within(outcomes.get(account_id), as_of, horizon)

    # The serving model's evaluation figures come with the newest entry, outside the window.
    ids = {entry.snapshot_id for entry in entries}
    with_newest = [*entries, newest] if newest and newest.snapshot_id not in ids else entries
    summary = TrackSummary(
        *summarise(
            with_newest,
            churned,
            today=today,
            horizon_days=spec.horizon_days,
            min_outcomes=spec.track_record.min_outcomes,
        )
    )
    log.cache(key, summary.to_json())
    return summary


def card_risk_level(deps: Deps, card: Mapping[str, Any]) -> RiskLevel | None:
    """How often accounts at the card's band churned; None for an account not scored for
    lack of data (it has no band to speak of)."""
    if card.get("abstain"):
        return None
    return track_summary(deps).levels.get(str(card["band"]))
