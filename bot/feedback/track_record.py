"""The track record where CSMs look: gathered from the flag log and the known outcomes.

This module only gathers (flag entries of the window from :class:`~bot.state.flag_log.FlagLog`,
outcomes stored by ``churnbot feedback outcomes``) and hands them to the pure
``models.track_record``. The result is cached in Redis, keyed by the day and the newest
snapshot (the newest flag entry is the served snapshot's), and in each process once read: the
worker computes it after its scoring run and the digest run when it is missing. A ``/churn``
answer takes the snapshot id from the meta its lookup already read, so on a warm process it
costs no Redis call; when the summary is missing it asks for it to be computed after the
answer, because computing reads a quarter of flags and their outcomes (seconds for a book of
100,000).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import weakref
from collections import OrderedDict
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


class _Decoded:
    """The summaries this process has read or computed, per Redis client and by (key prefix,
    cache key): a summary is fixed for its day and snapshot, so a warm process never asks
    Redis again. Small: a key changes once a day or once a snapshot."""

    KEEP = 8

    def __init__(self) -> None:
        self._by_client: weakref.WeakKeyDictionary[
            Any, OrderedDict[tuple[str, str], TrackSummary]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, deps: Deps, key: str) -> TrackSummary | None:
        with self._lock:
            items = self._by_client.get(deps.redis)
            return None if items is None else items.get((deps.prefix, key))

    def put(self, deps: Deps, key: str, summary: TrackSummary) -> None:
        with self._lock:
            items = self._by_client.setdefault(deps.redis, OrderedDict())
            items[(deps.prefix, key)] = summary
            items.move_to_end((deps.prefix, key))
            while len(items) > self.KEEP:
                items.popitem(last=False)


_DECODED = _Decoded()


def _cache_key(deps: Deps, snapshot_id: str | None) -> str:
    """The day (the window moves with it) and the newest snapshot (a new flag entry)."""
    return f"{deps.clock().date().isoformat()}:{snapshot_id or '-'}"


def _store(deps: Deps, flags: FlagLog, key: str, summary: TrackSummary) -> None:
    flags.cache(key, summary.to_json())
    _DECODED.put(deps, key, summary)


def _read(deps: Deps, flags: FlagLog, key: str) -> TrackSummary | None:
    """From this process, else from Redis (and kept in this process)."""
    summary = _DECODED.get(deps, key)
    if summary is not None:
        return summary
    cached = flags.cached(key)
    if cached is None:
        return None
    summary = TrackSummary.from_json(cached)
    _DECODED.put(deps, key, summary)
    return summary


def track_summary(deps: Deps) -> TrackSummary:
    """The track record as of the clock's day and the newest flag entry, cached when there is
    one, else computed and cached: what the digest run (the worker) calls."""
    flags = flag_log(deps)
    key = _cache_key(deps, flags.latest_id())
    summary = _read(deps, flags, key)
    if summary is None:
        summary = _compute(deps, flags)
        _store(deps, flags, key, summary)
    return summary


def refresh_summary(deps: Deps) -> None:
    """Compute the track record of the newest snapshot after a scoring run, so that the day's
    first `/churn` card already has its line. A failure is only logged: the scores are
    published, and the first `/churn` asks for the summary anyway."""
    try:
        track_summary(deps)
    except ChurnbotError as exc:
        log.warning("track record not computed after the scoring run: %s", exc)


def _compute(deps: Deps, flags: FlagLog) -> TrackSummary:
    """A quarter of flag entries and the outcomes of their accounts: about 0.05 s for a book
    of 5,000 accounts and 0.9 s for 100,000 (bench/track_record.py), too slow for a slash
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


def cached_summary(deps: Deps, snapshot_id: str) -> TrackSummary | None:
    """The track record of the served snapshot ``snapshot_id`` (from the meta the caller
    already read) if this process or Redis has it; else None, and one process (a Redis claim)
    computes it after the answer, so a ``/churn`` never waits for it (the next one has it)."""
    flags = flag_log(deps)
    key = _cache_key(deps, snapshot_id)
    summary = _read(deps, flags, key)
    if summary is None and flags.claim_computing(key):
        deps.background.submit(_warm, deps, flags, key)
    return summary


def _warm(deps: Deps, flags: FlagLog, key: str) -> None:
    try:
        _store(deps, flags, key, _compute(deps, flags))
    except ChurnbotError as exc:  # Redis away: the next /churn tries again after the claim
        log.warning("track record not computed: %s", exc)


def card_risk_level(deps: Deps, card: Mapping[str, Any], snapshot_id: str) -> RiskLevel | None:
    """How often accounts at the card's band churned, from the track record of the snapshot
    ``snapshot_id`` the card is served from; None for an account not scored for lack of data
    (it has no band to speak of) and while the track record is being computed."""
    if card.get("abstain"):
        return None
    summary = cached_summary(deps, snapshot_id)
    return None if summary is None else summary.levels.get(str(card["band"]))
