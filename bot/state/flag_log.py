"""What each served snapshot flagged, kept in Redis for the track record CSMs see.

The snapshots themselves are kept for a few weeks (trends); whether a flag was right is known
only one horizon later (a quarter), so what was flagged is recorded apart, compactly, when the
snapshot is published: the ids of its high-band accounts, the count of each band and a fixed
sample of the book for the base rate (``models.track_record.FlagEntry``), zlib-compressed.
Entries older than three horizons are dropped as new ones arrive.

A scoring run gathers its entry while its scored chunks stream into the snapshot store
(:class:`FlagTally`): each account's band is in its record's header, so nothing is read back
from the store and no card is decoded (a decode pass would cost seconds for a large book).

Key layout (``P`` = ``<prefix>:{<book>}:flags``, one hash tag with the book's snapshots)::

    P                  zset    snapshot id -> as-of date (days since 1970-01-01)
    P:<snapshot id>    string  the entry: zlib-compressed JSON
    P:summary:<key>    string  a computed summary, cached for SUMMARY_TTL_S
    P:computing:<key>  string  the claim of the process computing that summary
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis

from bot.state.replies import maybe_text, members, text
from bot.state.store import book_root, translate_errors
from models.cards import BANDS, HEADER, ScoredChunk
from models.spec import ProductSpec
from models.track_record import FlagEntry, Rate, evaluation_rates, flag_entry

if TYPE_CHECKING:  # the snapshot store needs numpy, which reading the flags does not
    from bot.state.snapshots import SnapshotMeta

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


#: Where a record's header (``<iHBB``: as-of day, rule, band, count) keeps the risk band's
#: index into ``models.cards.BANDS``; read without numpy (``models.packing`` imports pandas,
#: and the web process imports this module).
BAND_AT = struct.calcsize(HEADER.format[:3])


def chunk_bands(chunk: ScoredChunk) -> list[str]:
    """Each account's band in a scored chunk, read from its record's header (one byte, picked
    for the whole chunk at once); ``ABSTAINED`` for an account not scored for lack of data."""
    import numpy as np  # a scoring run's path: the web process reads flags without numpy

    records = chunk.records
    starts = np.asarray(records.offsets, dtype=np.int64)[:-1]
    codes = np.frombuffer(records.data, dtype=np.uint8)[starts + BAND_AT].astype(np.intp)
    if chunk.abstained is not None:
        codes[chunk.abstained] = len(BANDS)
    return np.array([*BANDS, ABSTAINED], dtype=object)[codes].tolist()


class FlagTally:
    """The flag entry of one snapshot, gathered batch by batch as its accounts go by.

    Each batch of ``batch`` accounts keeps only its high-band ids, its band counts and its own
    smallest-hash sample; the book's sample is the smallest of those (every member of it is
    in its batch's), so memory holds one batch, the flagged ids and a few samples, never the
    book. Batches are large so that their samples add little hashing to the one pass.
    """

    def __init__(self, meta: SnapshotMeta, *, sample_size: int, batch: int = 100_000) -> None:
        self.meta = meta
        self._sample_size = sample_size
        self._batch = batch
        self._pending_ids: list[str] = []
        self._pending_bands: list[str] = []
        self._bands: dict[str, int] = {}
        self._flagged: list[str] = []
        self._candidates: dict[str, str] = {}
        self._n = 0

    def add(self, account_ids: Iterable[str], bands: Iterable[str]) -> None:
        """Accounts and their bands (``bands[i]`` is ``account_ids[i]``'s), any number at a
        time."""
        self._pending_ids += account_ids
        self._pending_bands += bands
        if len(self._pending_ids) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        part = self._entry(self._pending_ids, self._pending_bands, {})
        self._pending_ids, self._pending_bands = [], []
        self._n += part.n_accounts
        for band, count in part.bands.items():
            self._bands[band] = self._bands.get(band, 0) + count
        self._flagged += part.flagged
        self._candidates.update(part.sample)

    def watch(self, chunks: Iterable[ScoredChunk]) -> Iterator[ScoredChunk]:
        """``chunks`` unchanged, each tallied as it passes (wrap what ``publish`` consumes)."""
        for chunk in chunks:
            self.add(chunk.account_id.tolist(), chunk_bands(chunk))
            yield chunk

    def entry(self, evaluation: Mapping[str, Rate]) -> FlagEntry:
        self._flush()
        merged = self._entry(list(self._candidates), list(self._candidates.values()), evaluation)
        return dataclasses.replace(
            merged,
            n_accounts=self._n,
            bands={**dict.fromkeys(merged.bands, 0), **self._bands},
            flagged=tuple(sorted(self._flagged)),
        )

    def _entry(
        self, account_ids: Sequence[str], bands: Sequence[str], evaluation: Mapping[str, Rate]
    ) -> FlagEntry:
        return flag_entry(
            snapshot_id=self.meta.snapshot_id,
            as_of=dt.date.fromisoformat(self.meta.as_of),
            model_version=self.meta.model_version,
            account_ids=account_ids,
            bands=bands,
            sample_size=self._sample_size,
            evaluation=evaluation,
        )


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
        """Record what the published snapshot ``meta`` flags, from its card dicts (a book
        published with ``SnapshotStore.publish_cards``; a scoring run uses :meth:`record_tally`)
        and the serving model's calibration table (``card.metrics["calibration"]``)."""
        tally = FlagTally(meta, sample_size=spec.track_record.sample_size)
        listed = list(cards)
        tally.add(
            [str(card["account_id"]) for card in listed],
            [ABSTAINED if card.get("abstain") else card["band"] for card in listed],
        )
        return self.record_tally(tally, spec=spec, calibration=calibration)

    def record_tally(
        self,
        tally: FlagTally,
        *,
        spec: ProductSpec,
        calibration: Sequence[Mapping[str, Any]] = (),
    ) -> FlagEntry | None:
        """The publish hook: record the entry gathered by ``tally``. An unhealthy snapshot
        is never served, so it flags nothing: None."""
        if not tally.meta.healthy:
            return None
        entry = tally.entry(evaluation_rates(calibration, spec.risk_bands))
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
