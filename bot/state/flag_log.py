"""What each served snapshot flagged, kept in Redis for the track record CSMs see.

The snapshots themselves are kept for a few weeks (trends); whether a flag was right is known
only one horizon later (a quarter), so what was flagged is recorded apart, compactly, when the
snapshot is published: the ids of its high-band accounts, the count of each band and a fixed
sample of the book for the base rate (``models.track_record.FlagEntry``), zlib-compressed.
Entries older than three horizons are dropped as new ones arrive.

Key layout (``P`` = ``<prefix>:{<book>}:flags``, one hash tag with the book's snapshots)::

    P                  zset    snapshot id -> as-of date (days since 1970-01-01)
    P:<snapshot id>    string  the entry: zlib-compressed JSON
    P:summary:<key>    string  a computed summary, cached for SUMMARY_TTL_S
    P:computing:<key>  string  the claim of the process computing that summary
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis

from bot.state.replies import maybe_text, members, text
from bot.state.snapshots import SnapshotMeta
from bot.state.store import book_root, translate_errors
from models.spec import ProductSpec
from models.track_record import FlagEntry, evaluation_rates, flag_entry

#: How long a computed track record is reused (its key also names the day and the newest
#: snapshot, so a new day or a new snapshot computes it again).
SUMMARY_TTL_S = 26 * 3_600
#: How long one process holds the claim to compute a missing summary.
COMPUTING_TTL_S = 120
#: Entries are kept this many horizons back (the track record reads two).
KEEP_HORIZONS = 3
_EPOCH = dt.date(1970, 1, 1)
#: The band an abstained account ("not enough data to score") is counted under.
ABSTAINED = "abstained"


def _pack(entry: FlagEntry) -> str:
    """An entry as text (the clients decode replies): JSON, zlib, base64; account ids
    compress well, so this is about half the JSON's size."""
    data = json.dumps(entry.to_dict(), separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(data)).decode("ascii")


def _unpack(blob: str) -> FlagEntry:
    return FlagEntry.from_dict(json.loads(zlib.decompress(base64.b64decode(blob))))


def _day(day: dt.date) -> int:
    return (day - _EPOCH).days


class FlagLog:
    """Record and read the flag entries of one book."""

    def __init__(self, client: redis.Redis, *, prefix: str = "churnbot", book: str = "default"):
        self._r = client
        self._key = book_root(prefix, book, owner="FlagLog") + "flags"

    def record(self, entry: FlagEntry, *, keep_days: int) -> None:
        """Store ``entry`` (again: same id, same entry) and drop entries older than
        ``keep_days`` before its as-of date, in one transaction."""
        blob = _pack(entry)
        oldest = _day(entry.as_of) - keep_days
        with translate_errors(self._r):
            stale = self._r.zrangebyscore(self._key, "-inf", f"({oldest}")
            pipe = self._r.pipeline(transaction=True)
            pipe.set(f"{self._key}:{entry.snapshot_id}", blob)
            pipe.zadd(self._key, {entry.snapshot_id: _day(entry.as_of)})
            if stale:
                pipe.zrem(self._key, *stale)
                pipe.delete(*(f"{self._key}:{sid}" for sid in members(stale)))
            pipe.execute()

    def record_snapshot(
        self,
        meta: SnapshotMeta,
        cards: Iterable[Mapping[str, Any]],
        *,
        spec: ProductSpec,
        calibration: Sequence[Mapping[str, Any]] = (),
    ) -> FlagEntry | None:
        """The publish hook: record what the just-published snapshot ``meta`` flags, from its
        ``cards`` (read back with ``SnapshotStore.iter_cards``) and the serving model's
        calibration table (``card.metrics["calibration"]``). An unhealthy snapshot is never
        served, so it flags nothing: None."""
        if not meta.healthy:
            return None
        entry = flag_entry(
            snapshot_id=meta.snapshot_id,
            as_of=dt.date.fromisoformat(meta.as_of),
            model_version=meta.model_version,
            accounts=(
                (str(card["account_id"]), ABSTAINED if card.get("abstain") else card["band"])
                for card in cards
            ),
            sample_size=spec.track_record.sample_size,
            evaluation=evaluation_rates(calibration, spec.risk_bands),
        )
        self.record(entry, keep_days=KEEP_HORIZONS * spec.horizon_days)
        return entry

    def entries(self, since: dt.date, until: dt.date) -> list[FlagEntry]:
        """Entries whose as-of date is in [``since``, ``until``], oldest first."""
        with translate_errors(self._r):
            ids = members(self._r.zrangebyscore(self._key, _day(since), _day(until)))
            blobs = self._r.mget([f"{self._key}:{sid}" for sid in ids]) if ids else []
        return [_unpack(text(blob)) for blob in blobs if blob]

    def latest_id(self) -> str | None:
        """The snapshot id of the newest entry (one cheap call: what a cache is keyed on)."""
        with translate_errors(self._r):
            newest = members(self._r.zrange(self._key, -1, -1))
        return newest[0] if newest else None

    def latest(self) -> FlagEntry | None:
        """The newest entry (the serving model's evaluation figures), if any."""
        newest = self.latest_id()
        with translate_errors(self._r):
            blob = maybe_text(self._r.get(f"{self._key}:{newest}")) if newest else None
        return _unpack(blob) if blob else None

    def cached(self, key: str) -> str | None:
        with translate_errors(self._r):
            return maybe_text(self._r.get(f"{self._key}:summary:{key}"))

    def claim_computing(self, key: str) -> bool:
        """True for the one caller that should compute the summary ``key`` (SET NX, expiring
        so a process that dies while computing does not block the next one for long)."""
        with translate_errors(self._r):
            return bool(
                self._r.set(f"{self._key}:computing:{key}", "1", nx=True, ex=COMPUTING_TTL_S)
            )

    def cache(self, key: str, value: str) -> None:
        with translate_errors(self._r):
            self._r.set(f"{self._key}:summary:{key}", value, ex=SUMMARY_TTL_S)
