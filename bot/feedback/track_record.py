"""The track record where CSMs look: gathered from the flag log and the known outcomes.

This module only gathers (flag entries of the window from :class:`~bot.state.flag_log.FlagLog`,
outcomes stored by ``churnbot feedback outcomes``) and hands them to the pure
``models.track_record``. The result is cached in Redis, keyed by the day and the newest flag
entry: the digest run computes it when it is missing; a ``/churn`` answer only reads it (one
call), and when it is missing asks for it to be computed after the answer, because computing
reads a quarter of flags and their outcomes (seconds for a book of 100,000).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.deps import Deps
from bot.feedback import feedback_store
from bot.feedback.outcomes import churned_within
from bot.state.flag_log import FlagLog
from models.errors import ChurnbotError
from models.track_record import Rate, RiskLevel, TrackRecord, summarise, window

log = logging.getLogger(__name__)


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


def _cache_key(deps: Deps, flags: FlagLog) -> str:
    """The day (the window moves with it) and the newest flag entry (a new snapshot)."""
    return f"{deps.clock().date().isoformat()}:{flags.latest_id() or '-'}"


def track_summary(deps: Deps) -> TrackSummary:
    """The track record as of the clock's day, from the cache when there is one, else
    computed and cached: what the digest run (the worker) calls."""
    flags = flag_log(deps)
    key = _cache_key(deps, flags)
    cached = flags.cached(key)
    if cached is not None:
        return TrackSummary.from_json(cached)
    summary = _compute(deps, flags)
    flags.cache(key, summary.to_json())
    return summary


def _compute(deps: Deps, flags: FlagLog) -> TrackSummary:
    """A quarter of flag entries and the outcomes of their accounts: about 0.1 s for a book
    of 5,000 accounts and 3 s for 100,000 (bench/track_record.py), too slow for a slash
    command's first answer, hence :func:`cached_summary`."""
    spec = deps.settings.spec
    today = deps.clock().date()
    newest = flags.latest()
    since, until = window(today, spec.horizon_days)
    entries = flags.entries(since, until)
    accounts = sorted({a for e in entries for a in (*e.flagged, *e.sample)})
    outcomes = feedback_store(deps).outcomes(accounts)
    horizon = dt.timedelta(days=spec.horizon_days)

    def churned(account_id: str, as_of: dt.date) -> bool | None:
        return churned_within(outcomes.get(account_id), as_of, horizon)

    # The serving model's evaluation figures come with the newest entry, outside the window.
    ids = {entry.snapshot_id for entry in entries}
    with_newest = [*entries, newest] if newest and newest.snapshot_id not in ids else entries
    return TrackSummary(
        *summarise(
            with_newest,
            churned,
            today=today,
            horizon_days=spec.horizon_days,
            min_outcomes=spec.track_record.min_outcomes,
        )
    )


def cached_summary(deps: Deps) -> TrackSummary | None:
    """The track record if it is cached; else None, and one process (a Redis claim) computes
    it after the answer, so a ``/churn`` never waits for it (the next one has it)."""
    flags = flag_log(deps)
    key = _cache_key(deps, flags)
    cached = flags.cached(key)
    if cached is not None:
        return TrackSummary.from_json(cached)
    if flags.claim_computing(key):
        deps.background.submit(_warm, deps, flags, key)
    return None


def _warm(deps: Deps, flags: FlagLog, key: str) -> None:
    try:
        flags.cache(key, _compute(deps, flags).to_json())
    except ChurnbotError as exc:  # Redis away: the next /churn tries again after the claim
        log.warning("track record not computed: %s", exc)


def card_risk_level(deps: Deps, card: Mapping[str, Any]) -> RiskLevel | None:
    """How often accounts at the card's band churned; None for an account not scored for
    lack of data (it has no band to speak of) and while the track record is being computed."""
    if card.get("abstain"):
        return None
    summary = cached_summary(deps)
    return None if summary is None else summary.levels.get(str(card["band"]))
