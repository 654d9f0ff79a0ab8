"""Scored snapshots of a book in Redis: compact, published atomically, kept for trends, read in
one call.

Why it is built this way:

* **Compact.** A snapshot is a handful of keys per thousand accounts, not one JSON document and
  five sorted-set entries per account: rows packed in blocks, ids in small listpack hashes, a
  word index of names, and each channel filter's top list precomputed (the layout is in
  :mod:`bot.state.snapshot_format`). The card text is not stored: each row keeps the scoring
  codec's record and the snapshot keeps the codec's spec once, so a card is rendered when read.
* **Atomic publish.** A snapshot's keys are written first (pipelined batches, each a
  MULTI/EXEC with the keys' staging TTL), then one Lua script checks they all still exist,
  makes them permanent and flips the pointers. Readers resolve the pointer and read in the same
  Lua call, so they see the old snapshot or the new one, never a mix, and never one that
  retention is deleting (a snapshot is readable while its ``meta`` key exists; deletion removes
  ``meta`` first).
* **History and fallback.** The last ``retention`` publishes are kept for trends; the last
  known good one is pinned even when it falls out of that window, because the kill switch
  serves it. An unhealthy publish moves ``latest`` only. "Change since the last snapshot" is
  computed here, from the previous snapshot's risks, while publishing.
* **One round trip per answer.** A read script can also read the kill switch and pick the
  snapshot it points readers to (``switch_key``), so `/churn` costs one call: switch, snapshot,
  lookup, card and trend.
* **Cluster ready.** Every key of a book shares the hash tag ``{book}``, so scripts and
  pipelines stay in one slot. A book is therefore served by one node; books spread.

Key layout (``P`` = ``<prefix>:{<book>}``, ``S`` = ``P:snap:<id>``)::

    P:history        list    snapshot ids, oldest -> newest (the retention window)
    P:latest         string  id of the newest snapshot
    P:last_good      string  id of the newest healthy snapshot
    P:published      set     ids whose keys exist (window + pinned last good + not yet deleted)
    S:meta           string  SnapshotMeta as JSON; written by the flip, deleted first
    S:shape          string  "block accounts id_hashes position_width name_blocks"
    S:layout         string  JSON: the codec spec, owners and segments (rows hold indexes)
    S:k:<i>, S:d:<i> string  key and data blocks of accounts [i*block, (i+1)*block)
    S:i:<b>          hash    account_id -> position (small: listpack)
    S:top            hash    filter -> the riskiest positions (u32), at most MAX_TOP
    S:nf, S:n:<i>    zset, string  the name index: block fences, sorted entry blocks
    S:u:...          the accounts the export no longer lists (not scored), when there are
                     any: shape, k/d blocks (a row's record is the date it was last listed),
                     i hashes and name index as above, and layout = the export's newest date;
                     published by the same flip, read by the same `/churn` call on a no-match
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
import redis
from redis.client import NEVER_DECODE, Pipeline
from redis.commands.core import Script

from bot.collector import collector_paused
from bot.state import card_json
from bot.state import snapshot_format as fmt
from bot.state.snapshot_format import normalize_name
from bot.state.snapshot_scripts import FLIP, READ, UNLISTED_READ, WRITE_IDS
from bot.state.store import StoreError, book_root, translate_errors
from models.cards import Packed, ScoredChunk, Texts
from models.errors import DataContractError

__all__ = [
    "MAX_TOP",
    "STAGING_TTL_S",
    "Found",
    "Row",
    "ServingTop",
    "SnapshotExists",
    "SnapshotMeta",
    "SnapshotNotFound",
    "SnapshotStore",
    "UnlistedAccounts",
    "UnlistedRow",
    "normalize_name",
]

#: Staged keys live this long unless the flip makes them permanent.
STAGING_TTL_S = 86_400
#: Upper bound of ``top(n)``, and the length of every precomputed top list: digests, App Home
#: and `/churn mine` show a handful; larger exports stream with ``iter_cards``.
MAX_TOP = 1_000
_REQUIRED = ("account_id", "account_name", "owner", "segment", "risk")
_ID_RE = re.compile(r"[^\s{}\x00-\x1f]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f]")
_READ_BATCH = 64  # whole blocks per pipeline in bulk reads
#: A top list: (owner, segment), None for any (the whole book is (None, None)).
TopList = tuple[str | None, str | None]
_LAYOUTS_KEPT = 8


class SnapshotExists(StoreError):
    """A snapshot with this id was already published (ids are never reused)."""


class SnapshotNotFound(StoreError):
    """The asked snapshot is not stored (never published, or deleted by retention)."""


@dataclass(frozen=True)
class SnapshotMeta:
    """What a reader needs to know about a snapshot before trusting its cards."""

    snapshot_id: str
    as_of: str
    model_version: str
    created_at: str
    healthy: bool
    n_accounts: int
    health: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The id becomes part of key names; the dates are shown to users and compared.
        if not _ID_RE.fullmatch(self.snapshot_id):
            raise ValueError(
                "The 'snapshot_id' parameter of SnapshotMeta must be 1-128 characters without "
                f"whitespace, braces or control characters. Got {self.snapshot_id!r} instead."
            )
        try:
            date.fromisoformat(self.as_of)
            datetime.fromisoformat(self.created_at)
        except ValueError:
            raise ValueError(
                "The 'as_of' and 'created_at' parameters of SnapshotMeta must be an ISO date and "
                f"an ISO timestamp. Got {self.as_of!r} and {self.created_at!r} instead."
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> SnapshotMeta:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class _Layout:
    """What decoding a snapshot's rows needs (stored once per snapshot, cached per id)."""

    codec: card_json.Decoder
    owners: list[str]
    segments: list[str]
    #: ``codec`` for a digest's cards, which never show their context items nor healthy
    #: reason: scoring's codec leaves them out (``CardCodec.for_digest``); a hand-written card
    #: keeps them.
    digest_codec: card_json.Decoder


class Row(NamedTuple):
    """One account as read, before its card is rendered (ranking a pick list needs only the
    name and the risk; only the cards shown are decoded).

    A named tuple, immutable as the frozen dataclass it was, because every row read makes one
    (ten a digest): a frozen dataclass sets each field through ``object.__setattr__``, ~8K
    instructions a row against ~2.5K. Nothing compares or hashes rows."""

    account_id: str
    account_name: str
    risk: float
    #: The data row as :func:`~bot.state.snapshot_format.unpack_row` gives it: unpacked once,
    #: for the name, and kept for the card.
    data: fmt.DataRow
    #: What decodes it: the snapshot's codec, owners and segments.
    layout: _Layout

    def card(self, *, for_digest: bool = False) -> dict[str, Any]:
        """The account's card; ``for_digest=True`` may leave its context items and healthy
        reason out (a digest, which never shows them, need not word them)."""
        return _decode(self.layout, self.account_id, self.risk, self.data, for_digest=for_digest)


@dataclass(frozen=True)
class UnlistedAccounts:
    """The accounts the export behind a snapshot no longer lists (so they are not scored),
    kept with the snapshot so that `/churn` can say why one has no score: ``newest`` is the
    export's newest date (ISO), and each account has its id, name and the date (ISO) it was
    last listed."""

    newest: str
    ids: Sequence[str]
    names: Sequence[str]
    last_listed: Sequence[str]

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.names) == len(self.last_listed):
            raise ValueError(
                "The 'ids', 'names' and 'last_listed' parameters of UnlistedAccounts must have "
                f"one value per account. Got {len(self.ids)}, {len(self.names)} and "
                f"{len(self.last_listed)} values instead."
            )


class UnlistedRow(NamedTuple):
    """One account the served snapshot's export no longer lists, as `/churn` found it."""

    account_id: str
    account_name: str
    last_listed: str  # ISO date


@dataclass(frozen=True)
class Found:
    """What one `/churn` text finds, read in one call (``SnapshotStore.lookup``)."""

    switch: dict[str, str]  # the kill switch record the snapshot was chosen by ({} if not asked)
    meta: SnapshotMeta | None  # None: nothing to show (nothing published, or no good one)
    by_id: Row | None = None
    matches: list[Row] = field(default_factory=list)  # best match first, by_id left out
    more: bool = False  # more names match than were read
    close: list[Row] = field(default_factory=list)  # names near the text, when nothing matched
    history_of: str | None = None  # whose trend ``history`` is
    history: list[tuple[SnapshotMeta, float]] = field(default_factory=list)
    #: When no scored account matches: the accounts the snapshot's export no longer lists
    #: that do (by id, else by name, best first), and that export's newest date (ISO).
    unlisted: list[UnlistedRow] = field(default_factory=list)
    unlisted_by_id: bool = False
    unlisted_more: bool = False  # more of them match than were read
    export_newest: str | None = None


@dataclass(frozen=True)
class ServingTop:
    """What a digest is planned from, read in one call (``SnapshotStore.serving_top``)."""

    switch: dict[str, str]  # the kill switch record the snapshot was chosen by
    meta: SnapshotMeta | None  # None: nothing to show (nothing published, or no good one)
    #: The rows of each top list asked for, in the order asked; riskiest first; cards
    #: decoded when asked. Empty when there is nothing to show.
    lists: list[list[Row]] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        """The rows of the first list asked for."""
        return self.lists[0] if self.lists else []


@dataclass(frozen=True)
class RiskTable:
    """Every risk of one snapshot, by account id (ids sorted): read once per scoring run for
    both the drift check (the risks) and each account's "change" (a lookup by id)."""

    snapshot_id: str
    ids: np.ndarray
    risks: np.ndarray

    def lookup(self, ids: list[bytes]) -> np.ndarray:
        """Each id's risk here, NaN where absent."""
        out = np.full(len(ids), np.nan)
        if not len(self.ids) or not ids:
            return out
        wanted = np.array(ids, dtype=bytes)
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        hit = self.ids[at] == wanted
        out[hit] = self.risks[at[hit]]
        return out


@dataclass
class _Reply:
    switch: dict[str, str]
    meta: SnapshotMeta | None
    layout: _Layout | None
    results: list[Any]


def _checked(card: Mapping[str, Any], position: int) -> tuple[str, str, str, str, float]:
    """The indexed fields of one card, or a DataContractError naming the card and the field."""
    missing = [name for name in _REQUIRED if name not in card]
    if missing:
        raise DataContractError(
            f"card #{position} (account_id={card.get('account_id')!r}) lacks {missing}; every "
            f"card needs {list(_REQUIRED)}."
        )
    account_id, name, owner, segment, risk = (card[k] for k in _REQUIRED)
    for key, value in (("account_id", account_id), ("owner", owner), ("segment", segment)):
        if not isinstance(value, str):
            raise DataContractError(
                f"card #{position}: '{key}' must be a string; got {value!r} instead."
            )
    if not isinstance(risk, int | float):
        raise DataContractError(
            f"card #{position} (account_id={account_id!r}): 'risk' must be a finite number; "
            f"got {risk!r} instead."
        )
    return account_id, str(name), owner, segment, float(risk)


def cards_as_chunks(cards: Iterable[Mapping[str, Any]], size: int) -> Iterator[ScoredChunk]:
    """Card dicts (fixtures, demos, hand-written books) as the scored chunks ``publish`` takes,
    ``size`` at a time, with JSON records (:mod:`bot.state.card_json`)."""
    iterator = iter(cards)
    done = 0
    while batch := list(islice(iterator, size)):
        fields = [_checked(card, done + i) for i, card in enumerate(batch)]
        ids, names, owners, segments, risks = (list(column) for column in zip(*fields, strict=True))
        yield ScoredChunk(
            account_id=Texts.of(ids),
            account_name=Texts.of(names),
            owner=Texts.of(owners),
            segment=Texts.of(segments),
            risk=np.array(risks, dtype=float),
            records=Packed.of([card_json.encode(card) for card in batch]),
            abstained=np.array([bool(card.get("abstain")) for card in batch], dtype=bool),
        )
        done += len(batch)


def _check_chunk(chunk: ScoredChunk, first: int) -> None:
    """Refuse a chunk that would store something unreadable, naming the card and the field."""
    n = len(chunk)
    for name in ("account_name", "owner", "segment", "records", "abstained"):
        if getattr(chunk, name) is not None and len(getattr(chunk, name)) != n:
            raise DataContractError(
                f"chunk starting at card #{first}: {n} account ids but "
                f"{len(getattr(chunk, name))} values of '{name}'."
            )
    risk = np.asarray(chunk.risk, dtype=float)
    if risk.shape != (n,):
        raise DataContractError(
            f"chunk starting at card #{first}: 'risk' must have one value per account; got "
            f"shape {risk.shape} for {n} accounts."
        )
    bad = np.flatnonzero(~np.isfinite(risk))
    if len(bad):
        i = int(bad[0])
        raise DataContractError(
            f"card #{first + i} (account_id={chunk.account_id[i]!r}): 'risk' must be a finite "
            f"number; got {float(risk[i])!r} instead."
        )
    bad = _bad_ids(chunk.account_id)
    if len(bad):
        i = int(bad[0])
        raise DataContractError(
            f"card #{first + i}: 'account_id' must be non-empty without control characters; "
            f"got {chunk.account_id[i]!r} instead."
        )


def _bad_ids(ids: Texts) -> np.ndarray:
    """Positions of empty ids and of ids with a control character, on the packed bytes (a
    control character is one byte below 0x20 in UTF-8, never part of another character)."""
    offsets = np.asarray(ids.offsets, dtype=np.int64)
    data = np.frombuffer(ids.data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    control = np.flatnonzero(data < 0x20) + offsets[0]
    holding = np.searchsorted(offsets, control, side="right") - 1
    return np.union1d(np.flatnonzero(np.diff(offsets) == 0), holding)


class _Staging:
    """One publish's columns in flight: the current block, and what the end of the stream
    needs (risk and group codes for the top lists, normalized names for the name index)."""

    def __init__(self, n_expected: int) -> None:
        self.buckets = fmt.buckets_for(n_expected)
        self.owners: dict[str, int] = {}
        self.segments: dict[str, int] = {}
        self.risk: list[np.ndarray] = []
        self.abstained: list[np.ndarray] = []  # by position: left out of the top lists
        self.owner: list[int] = []  # owner index, by position
        self.segment: list[int] = []
        self.names: list[str] = []  # normalized, by position
        self.ids: list[str] = []  # by position
        self.bucket: list[np.ndarray] = []
        self.streamed = 0
        self.distinct = 0
        self.written: set[str] = set()  # every key this publish created (cleanup on failure)

    def codes(self, values: Sequence[str], table: dict[str, int], what: str) -> list[int]:
        """Each value's index in ``table`` (new values are added): rows store two bytes."""
        out = [table.setdefault(v, len(table)) for v in values]
        if len(table) > 65_535:
            raise DataContractError(
                f"a snapshot holds at most 65,535 distinct {what}s; this book has more."
            )
        return out


class SnapshotStore:
    """Publish and read the scored snapshots of one book.

    One publisher per book at a time (the single scheduler); any number of readers.
    """

    def __init__(
        self,
        redis: redis.Redis,
        *,
        book: str = "default",
        retention: int = 8,
        prefix: str = "churnbot",
        batch_size: int = 5_000,
    ) -> None:
        for name, number in (("retention", retention), ("batch_size", batch_size)):
            if number < 1:
                raise ValueError(
                    f"The '{name}' parameter of SnapshotStore must be at least 1. "
                    f"Got {number!r} instead."
                )
        self._r = redis
        self._retention = retention
        self._batch_size = batch_size
        self._root = book_root(prefix, book, owner="SnapshotStore")
        self._snap = self._root + "snap:"
        self._history = self._root + "history"
        self._latest = self._root + "latest"
        self._last_good = self._root + "last_good"
        self._published = self._root + "published"
        self._flip = redis.register_script(FLIP)
        self._read_script = redis.register_script(READ)
        self._write_ids_script = redis.register_script(WRITE_IDS)
        self._layouts: dict[str, _Layout] = {}  # per snapshot id: immutable, so never stale
        self._layouts_lock = threading.Lock()

    # --- publishing -------------------------------------------------------------------------

    def publish_cards(self, meta: SnapshotMeta, cards: Iterable[Mapping[str, Any]]) -> None:
        """``publish`` for card dicts (fixtures, demos): each card's fields beyond the indexed
        ones are kept as JSON, and read back with ``previous_risk`` and ``change`` added."""
        self.publish(meta, card_json.SPEC, cards_as_chunks(cards, self._batch_size))

    def publish(
        self,
        meta: SnapshotMeta,
        codec_spec: str,
        chunks: Iterable[ScoredChunk],
        *,
        previous: RiskTable | None = None,
        unlisted: UnlistedAccounts | None = None,
    ) -> None:
        """Store the scored ``chunks`` as snapshot ``meta.snapshot_id`` and make it the latest,
        atomically. ``codec_spec`` is how the chunks' records decode (stored once).
        ``unlisted``: the accounts the export no longer lists, published with it (`/churn`
        says why they have no score).

        ``chunks`` may be a generator: it is consumed a chunk at a time and written in
        pipelined batches, so memory holds one block of rows plus a few numbers and the
        normalized name per account. Each account's previous risk ("change") is looked up in
        the latest snapshot: in ``previous`` when the caller has read that one already (the
        drift check does), else read here. Refuses (SnapshotExists) an id already published,
        an empty snapshot, and a count that disagrees with ``meta.n_accounts`` (duplicate ids,
        truncated input); on any refusal readers keep the previous snapshot. Snapshots that
        fall out of the retention window are deleted afterwards (never the last known good
        one).
        """
        sid = meta.snapshot_id
        with translate_errors(self._r):
            if self._r.exists(self._snap + sid + ":meta"):
                raise SnapshotExists(
                    f"snapshot {sid!r} of {self._root[:-1]} is already published; "
                    "publish under a new id."
                )
            latest = self._latest_id()
            before = (
                previous
                if previous is not None and previous.snapshot_id == latest
                else self.risk_table(latest)
                if latest
                else None
            )
            staging = _Staging(meta.n_accounts)
            try:
                with collector_paused():  # millions of names and index entries, no cycles
                    self._stage(sid, meta, codec_spec, chunks, before, staging)
                has_unlisted = self._stage_unlisted(self._snap + sid + ":u:", unlisted, staging)
            except Exception:
                with suppress(redis.RedisError):  # if Redis is away, the staging TTL cleans up
                    self._unlink(sorted(staging.written))
                raise
            # No cleanup if the flip fails: it may have run before the reply was lost, and
            # staged keys that never flipped expire on their own.
            try:
                dropped = self._flip(
                    keys=[self._history, self._latest, self._last_good, self._published],
                    args=[
                        self._snap,
                        sid,
                        meta.to_json(),
                        "1" if meta.healthy else "0",
                        self._retention,
                        "1" if has_unlisted else "0",
                    ],
                )
            except redis.ResponseError as exc:
                raise StoreError(
                    f"snapshot {sid!r} was not published ({exc}); readers keep the previous "
                    "one. Publish it again."
                ) from None
            for old in sorted(dropped):
                self._delete_snapshot(old)

    def _stage(
        self,
        sid: str,
        meta: SnapshotMeta,
        codec_spec: str,
        chunks: Iterable[ScoredChunk],
        before: RiskTable | None,
        staging: _Staging,
    ) -> None:
        S = self._snap + sid + ":"
        pending: ScoredChunk | None = None  # rows not yet written: less than a block
        for chunk in chunks:
            _check_chunk(chunk, staging.streamed)
            for start in range(0, len(chunk), self._batch_size):
                part = _slice(chunk, start, start + self._batch_size)
                self._index_batch(part, staging)
                rows = part if pending is None else _concat([pending, part])
                first = staging.streamed - len(rows)  # the position of rows[0]
                full = len(rows) - len(rows) % fmt.BLOCK
                for at in range(0, full, fmt.BLOCK):
                    head = _slice(rows, at, at + fmt.BLOCK)
                    self._write_block(S, head, first + at, before, staging)
                pending = _slice(rows, full, len(rows)) if full < len(rows) else None
        if pending is not None:
            self._write_block(S, pending, staging.streamed - len(pending), before, staging)
        if staging.streamed == 0:
            raise DataContractError(
                f"snapshot {sid!r} has no cards; an empty book is refused rather than "
                "shown to users as one without risk."
            )
        self._write_ids(S, staging)
        if staging.distinct != meta.n_accounts or staging.streamed != staging.distinct:
            raise DataContractError(
                f"snapshot {sid!r}: meta.n_accounts is {meta.n_accounts} but "
                f"{staging.distinct} distinct accounts were stored ({staging.streamed} cards "
                "streamed; duplicate account_id or truncated input?)."
            )
        self._finish(S, codec_spec, staging)

    def _index_batch(self, part: ScoredChunk, staging: _Staging) -> None:
        """Keep what the end of the stream needs of a batch (the id hashes are written once
        each at the end: one HSET per hash, not one per batch it appears in)."""
        ids = part.account_id.tolist()
        staging.ids.extend(ids)
        staging.bucket.append(fmt.buckets_of(ids, staging.buckets))
        staging.risk.append(np.asarray(part.risk, dtype=float))
        staging.abstained.append(_abstained(part))
        staging.owner += staging.codes(part.owner.tolist(), staging.owners, "owner")
        staging.segment += staging.codes(part.segment.tolist(), staging.segments, "segment")
        staging.names += map(normalize_name, part.account_name.tolist())
        staging.streamed += len(part)

    def _write_ids(self, S: str, staging: _Staging) -> None:
        """Write every ``account_id -> position`` hash; count the distinct ids."""
        bucket = np.concatenate(staging.bucket)
        staging.distinct += self._write_id_hashes(
            S, staging.ids, bucket, staging.buckets, staging.written
        )

    def _write_id_hashes(
        self, S: str, ids: Sequence[str], bucket: np.ndarray, buckets: int, written: set[str]
    ) -> int:
        """Write the ``account_id -> position`` hashes of ``ids`` (each in its ``bucket``), a
        batch of hashes per script call; the number of distinct ids."""
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(buckets + 1)).tolist()
        distinct = 0
        for start in range(0, buckets, 512):
            numbers = range(start, min(start + 512, buckets))
            keys = [f"{S}i:{b}" for b in numbers]
            entries = [
                "".join(f"{ids[p]}\x1f{p}\x1e" for p in order[bounds[b] : bounds[b + 1]].tolist())
                for b in numbers
            ]
            written.update(keys)
            distinct += self._write_ids_script(keys=keys, args=[STAGING_TTL_S, *entries])
        return distinct

    def _stage_unlisted(self, U: str, unlisted: UnlistedAccounts | None, staging: _Staging) -> bool:
        """Stage the accounts the export no longer lists under ``U`` as a small book of the
        snapshot's layout (rows, id hashes, name index) that the flip publishes with it;
        False when there are none. An id that no one could type (empty, a control character)
        is left out, as is a second row of one id."""
        if unlisted is None or not len(unlisted.ids):
            return False
        fields: dict[str, tuple[str, str]] = {}
        for account, name, day in zip(
            unlisted.ids, unlisted.names, unlisted.last_listed, strict=True
        ):
            account = str(account)
            if account and not _CONTROL.search(account) and account not in fields:
                fields[account] = (_CONTROL.sub(" ", str(name)), str(day))
        if not fields:
            return False
        ids = list(fields)
        names = [name for name, _ in fields.values()]
        n = len(ids)
        buckets = fmt.buckets_for(n)
        width = fmt.pos_width(n)
        blocks, fences = fmt.name_index([normalize_name(name) for name in names], width)
        keys: dict[str, bytes] = {}
        for first in range(0, n, fmt.BLOCK):
            stop = min(first + fmt.BLOCK, n)
            count = stop - first
            k = first // fmt.BLOCK
            keys[f"{U}k:{k}"] = fmt.pack_keys(np.full(count, np.nan), Texts.of(ids[first:stop]))
            keys[f"{U}d:{k}"] = fmt.pack_data(
                np.full(count, np.nan),
                [0] * count,
                [0] * count,
                Texts.of(names[first:stop]),
                Packed.of([day.encode() for _, day in list(fields.values())[first:stop]]),
            )
        keys.update((f"{U}n:{k}", block) for k, block in enumerate(blocks))
        keys[f"{U}layout"] = unlisted.newest.encode()
        pipe = self._r.pipeline(transaction=True)
        for key, value in keys.items():
            pipe.set(key, value, ex=STAGING_TTL_S)
        pipe.unlink(f"{U}nf")
        if fences:
            pipe.zadd(f"{U}nf", fences)
            pipe.expire(f"{U}nf", STAGING_TTL_S)
        staging.written.update([*keys, f"{U}nf"])
        pipe.execute()
        self._write_id_hashes(U, ids, fmt.buckets_of(ids, buckets), buckets, staging.written)
        # Last: the flip checks that every key the shape implies exists.
        shape = f"{fmt.BLOCK} {n} {buckets} {width} {len(blocks)}"
        self._r.set(f"{U}shape", shape, ex=STAGING_TTL_S)
        staging.written.add(f"{U}shape")
        return True

    def _write_block(
        self,
        S: str,
        head: ScoredChunk,
        first: int,
        before: RiskTable | None,
        staging: _Staging,
    ) -> None:
        """Write the rows at positions ``first ..`` (a block, or the last part of one) as one
        key block and one data block."""
        k = first // fmt.BLOCK
        stop = first + len(head)
        pipe = self._r.pipeline(transaction=True)
        pipe.set(f"{S}k:{k}", fmt.pack_keys(head.risk, head.account_id), ex=STAGING_TTL_S)
        pipe.set(
            f"{S}d:{k}",
            fmt.pack_data(
                previous_risks(before, list(head.account_id.raw())),
                staging.owner[first:stop],
                staging.segment[first:stop],
                head.account_name,
                head.records,
            ),
            ex=STAGING_TTL_S,
        )
        pipe.execute()
        staging.written.update((f"{S}k:{k}", f"{S}d:{k}"))

    def _finish(self, S: str, codec_spec: str, staging: _Staging) -> None:
        """The name index, the top lists, the layout, and last the shape (the flip checks
        that every key the shape implies exists)."""
        n = staging.streamed
        width = fmt.pos_width(n)
        blocks, fences = fmt.name_index(staging.names, width)
        risk = np.concatenate(staging.risk)
        # An account not scored for lack of data takes no place in a top list (a digest slot
        # is for an account the bot can say something about); `/churn NAME` still finds it.
        scored = ~np.concatenate(staging.abstained)
        owner = np.array(staging.owner, dtype=np.int64)
        segment = np.array(staging.segment, dtype=np.int64)
        owners, segments = list(staging.owners), list(staging.segments)
        everyone = fmt.top_positions(risk, np.zeros(n, np.int64), MAX_TOP, scored)
        top: dict[str, bytes] = {"": everyone.get(0, b"")}
        for code, packed in fmt.top_positions(risk, owner, MAX_TOP, scored).items():
            top[f"o:{owners[code]}"] = packed
        for code, packed in fmt.top_positions(risk, segment, MAX_TOP, scored).items():
            top[f"s:{segments[code]}"] = packed
        pairs = owner * len(segments) + segment
        for code, packed in fmt.top_positions(risk, pairs, MAX_TOP, scored).items():
            top[_pair_field(owners[code // len(segments)], segments[code % len(segments)])] = packed
        layout = json.dumps(
            {"codec": codec_spec, "owners": owners, "segments": segments}, ensure_ascii=False
        )
        shape = f"{fmt.BLOCK} {n} {staging.buckets} {width} {len(blocks)}"
        for start in range(0, max(len(blocks), 1), 256):
            pipe = self._r.pipeline(transaction=True)
            for k in range(start, min(start + 256, len(blocks))):
                pipe.set(f"{S}n:{k}", blocks[k], ex=STAGING_TTL_S)
                staging.written.add(f"{S}n:{k}")
            pipe.execute()
        pipe = self._r.pipeline(transaction=True)
        for key in (f"{S}nf", f"{S}top"):
            pipe.unlink(key)
        if fences:
            pipe.zadd(f"{S}nf", fences)
            pipe.expire(f"{S}nf", STAGING_TTL_S)
        pipe.hset(f"{S}top", mapping=top)  # type: ignore[arg-type]
        pipe.expire(f"{S}top", STAGING_TTL_S)
        pipe.set(f"{S}layout", layout, ex=STAGING_TTL_S)
        pipe.set(f"{S}shape", shape, ex=STAGING_TTL_S)
        staging.written.update([f"{S}nf", f"{S}top", f"{S}layout", f"{S}shape"])
        pipe.execute()

    def _data_keys(self, sid: str) -> list[str]:
        """Every key of a snapshot but ``meta``, from its shapes (none if it has no shape)."""
        S = self._snap + sid + ":"
        return self._book_keys(S, S + "top") + self._book_keys(S + "u:")

    def _book_keys(self, S: str, *more: str) -> list[str]:
        """The keys of the book at ``S`` (the scored accounts, or those the export no longer
        lists) from its shape, ``more`` with them; none if it has no shape."""
        shape = self._r.get(S + "shape")
        if shape is None:
            return []
        block, n, buckets, _, name_blocks = (int(x) for x in str(shape).split())
        keys = [S + "shape", S + "layout", *more, S + "nf"]
        keys += [f"{S}{kind}:{k}" for k in range(math.ceil(n / block)) for kind in "kd"]
        keys += [f"{S}i:{b}" for b in range(buckets)]
        keys += [f"{S}n:{k}" for k in range(name_blocks)]
        return keys

    def _unlink(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1_000):
            self._r.unlink(*keys[start : start + 1_000])

    def _delete_snapshot(self, sid: str) -> None:
        """Delete an old snapshot: meta first (readers then see it as gone), the id last."""
        self._r.unlink(self._snap + sid + ":meta")
        self._unlink(self._data_keys(sid))
        self._r.srem(self._published, sid)
        with self._layouts_lock:
            self._layouts.pop(sid, None)

    # --- reading ----------------------------------------------------------------------------

    def _latest_id(self) -> str | None:
        found = self._r.get(self._latest)
        return None if found is None else str(found)

    def _call(
        self, mode: str, snapshot_id: str | None, op: str, *args: Any, switch_key: str = ""
    ) -> _Reply:
        """Run ``op`` on the snapshot ``mode`` points to (``latest``, ``last_good``, the one
        the kill switch at ``switch_key`` says readers see, or ``snapshot_id``)."""
        keys, argv = self._read_args(mode, snapshot_id, op, args, switch_key)
        with translate_errors(self._r):
            raw = _evalsha(self._r, self._read_script, keys, argv)
        reply = self._reply(raw)
        if reply is None:  # its layout was evicted by another thread since the call
            return self._call(mode, snapshot_id, op, *args, switch_key=switch_key)
        return reply

    def _read_args(
        self,
        mode: str,
        snapshot_id: str | None,
        op: str,
        args: Sequence[Any],
        switch_key: str,
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the READ script for :meth:`_call` (and for a read queued on a
        caller's pipeline, which must ask exactly the same)."""
        if snapshot_id is not None:
            mode = "id"
        elif switch_key:
            mode = "serving"
        held = " ".join(list(self._layouts)[-_LAYOUTS_KEPT:])
        keys = [self._latest, self._last_good, switch_key or self._latest, self._history]
        return keys, [self._snap, mode, snapshot_id or "", held, op, *args]

    def _reply(self, reply: list[Any]) -> _Reply | None:
        """A READ reply, decoded; None if the snapshot's layout, which the call said this
        process holds, was evicted by another thread meanwhile (the caller reads again)."""
        switch = {
            k.decode(): v.decode() for k, v in zip(reply[0][::2], reply[0][1::2], strict=True)
        }
        if len(reply) == 1:
            return _Reply(switch, None, None, [])
        sid = reply[1].decode()
        if len(reply) == 2:
            raise SnapshotNotFound(
                f"snapshot {sid!r} of {self._root[:-1]} is not stored (never published or "
                f"deleted by retention); stored: {self.list_ids()}."
            )
        if reply[3] is not None:
            spec = json.loads(reply[3])
            codec = card_json.codec_for(spec["codec"])
            read = _Layout(codec, spec["owners"], spec["segments"], codec.for_digest())
            with self._layouts_lock:  # listener threads share the store
                self._layouts.pop(sid, None)
                self._layouts[sid] = read
                while len(self._layouts) > _LAYOUTS_KEPT:
                    del self._layouts[next(iter(self._layouts))]
        layout = self._layouts.get(sid)
        if layout is None:
            with self._layouts_lock:
                self._layouts.clear()
            return None
        return _Reply(switch, _meta(reply[2]), layout, reply[4:])

    def serving(self, switch_key: str) -> tuple[dict[str, str], SnapshotMeta | None]:
        """The kill switch record at ``switch_key`` and the snapshot it points readers to
        (the last good one while it is on), in one call."""
        reply = self._call("serving", None, "meta", switch_key=switch_key)
        return reply.switch, reply.meta

    def serving_top(
        self, switch_key: str, n: int, lists: Sequence[TopList] = ((None, None),)
    ) -> ServingTop:
        """What :meth:`serving` reads, plus the ``n`` riskiest rows of each top list of the
        snapshot it points to (an (owner, segment) pair picks a list as for :meth:`top`), in
        one call: all a digest's plan reads (every owner and segment it merges), so a plan
        costs one round trip."""
        args = _top_args(n, lists, "serving_top")
        return _serving_top(self._call("serving", None, "top", *args, switch_key=switch_key))

    def queue_serving_top(
        self,
        pipe: Pipeline,
        switch_key: str,
        n: int,
        lists: Sequence[TopList] = ((None, None),),
    ) -> Callable[[Any], ServingTop]:
        """:meth:`serving_top` queued on the caller's ``pipe``, to go out with its own
        commands in one round trip (a digest run sends it with its claim); returns what turns
        its reply into the answer.

        Sent as EVALSHA, which spares the script's 6 KB on the wire and the server's hashing
        of them at every digest. A pipeline cannot load a script the server lost (a restart,
        SCRIPT FLUSH), so the caller executes ``pipe`` with ``raise_on_error=False`` and hands
        the answer the NOSCRIPT error such a server gives; it is then read again with
        :meth:`serving_top`, which loads the script. A read writes nothing, so reading it
        twice is safe."""
        args = _top_args(n, lists, "serving_top")
        keys, argv = self._read_args("serving", None, "top", args, switch_key)
        pipe.execute_command(
            "EVALSHA", self._read_script.sha, len(keys), *keys, *argv, **{NEVER_DECODE: True}
        )

        def answer(raw: Any) -> ServingTop:
            if isinstance(raw, redis.exceptions.NoScriptError):
                return self.serving_top(switch_key, n, lists)
            reply = self._reply(raw)
            if reply is None:  # its layout was evicted meanwhile: read it all again
                return self.serving_top(switch_key, n, lists)
            return _serving_top(reply)

        return answer

    def latest(self) -> SnapshotMeta | None:
        """The newest snapshot, healthy or not; None before the first publish."""
        return self._call("latest", None, "meta").meta

    def last_good(self) -> SnapshotMeta | None:
        """The newest healthy snapshot (what the kill switch serves); None if there is none."""
        return self._call("last_good", None, "meta").meta

    def card(self, account_id: str, *, snapshot_id: str | None = None) -> dict[str, Any] | None:
        """One account's card in the latest (or given) snapshot; None if absent."""
        reply = self._call("latest", snapshot_id, "card", account_id, 0)
        if reply.layout is None or reply.results[0] is None:
            return None
        return _row(reply.results[0], reply.layout).card()

    def top(
        self,
        n: int,
        *,
        owner: str | None = None,
        segment: str | None = None,
        snapshot_id: str | None = None,
        min_risk: float = 0.0,
        for_digest: bool = False,
    ) -> list[dict[str, Any]]:
        """The ``n`` riskiest cards (risk >= ``min_risk``), highest first, optionally filtered;
        ``for_digest`` as for :meth:`Row.card`.

        A channel's book is an owner, a segment, or both; each has its own precomputed list.
        """
        if _top_count(n, "top") == 0:
            return []
        reply = self._call("latest", snapshot_id, "top", n, _top_field(owner, segment))
        if reply.layout is None:
            return []
        rows = [_row(raw, reply.layout) for raw in reply.results[0]]
        return [row.card(for_digest=for_digest) for row in rows if row.risk >= min_risk]

    def iter_cards(self, *, snapshot_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every card of the latest (or given) snapshot, in position order, a block at a
        time (exports and bulk reads; memory stays flat in the size of the book)."""
        reply = self._call("latest", snapshot_id, "meta")
        if reply.meta is None or reply.layout is None:
            return
        layout = reply.layout
        for keys, data in self._blocks(reply.meta.snapshot_id, with_data=True):
            risk, ids = fmt.unpack_keys(keys)
            for r, account_id, row in zip(risk.tolist(), ids, fmt.unpack_rows(data), strict=True):
                yield _decode(layout, account_id.decode(), r, fmt.unpack_row(row))

    def _blocks(self, sid: str, *, with_data: bool) -> Iterator[tuple[bytes, bytes]]:
        """Whole key (and data) blocks of a snapshot, in order, a few per round trip."""
        with translate_errors(self._r):
            shape = self._r.get(self._snap + sid + ":shape")
            if shape is None or not self._r.exists(self._snap + sid + ":meta"):
                raise SnapshotNotFound(
                    f"snapshot {sid!r} of {self._root[:-1]} is not stored; "
                    f"stored: {self.list_ids()}."
                )
            block, n = (int(x) for x in str(shape).split()[:2])
            count = math.ceil(n / block)
            for start in range(0, count, _READ_BATCH):
                pipe = self._r.pipeline(transaction=False)
                for k in range(start, min(start + _READ_BATCH, count)):
                    pipe.execute_command("GET", f"{self._snap}{sid}:k:{k}", **{NEVER_DECODE: True})
                    if with_data:
                        pipe.execute_command(
                            "GET", f"{self._snap}{sid}:d:{k}", **{NEVER_DECODE: True}
                        )
                replies = pipe.execute()
                if with_data:
                    yield from zip(replies[::2], replies[1::2], strict=True)
                else:
                    yield from ((keys, b"") for keys in replies)

    def risk_table(self, snapshot_id: str) -> RiskTable:
        """Every risk of a snapshot with its account id: 8 bytes and an id an account read, no
        card decoded."""
        ids: list[bytes] = []
        risks = []
        for keys, _ in self._blocks(snapshot_id, with_data=False):
            risk, block_ids = fmt.unpack_keys(keys)
            ids += block_ids
            risks.append(risk)
        table = np.array(ids, dtype=bytes)
        order = np.argsort(table, kind="stable")
        return RiskTable(
            snapshot_id, table[order], np.concatenate(risks)[order] if risks else np.empty(0)
        )

    def history(self, account_id: str, n: int = 8) -> list[tuple[SnapshotMeta, float]]:
        """(snapshot, risk) for the last ``n`` retained snapshots holding the account, oldest
        first: the points of a trend or sparkline."""
        reply = self._call("latest", None, "history", account_id, n)
        return _points(reply.results[0]) if reply.meta is not None else []

    def find(
        self, query: str, *, limit: int = 10, snapshot_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Cards matching ``query`` for ``/churn NAME``: the account with that exact id first,
        then names with a word starting with it, ignoring case and accents (exact name,
        prefix, start of a later word, after punctuation; then alphabetical).

        Bounded whatever the size of the book: one lexicographic lookup in the name index and
        the few blocks after it (``lookup`` says when more names match than were read).
        """
        found = self.lookup(query, limit=limit, snapshot_id=snapshot_id, id_variants=False)
        rows = ([found.by_id] if found.by_id else []) + found.matches
        return [row.card() for row in rows[:limit]]

    def lookup(
        self,
        query: str,
        *,
        limit: int,
        snapshot_id: str | None = None,
        switch_key: str = "",
        id_variants: bool = True,
        probes: Sequence[str] = (),
        probe_limit: int = 10,
        history: int = 8,
    ) -> Found:
        """Everything one `/churn` text needs, in one call: the snapshot (the given one, or
        the one the kill switch at ``switch_key`` points to, else the latest), the account
        whose id is ``query`` (as typed, upper or lower case with ``id_variants``), up to
        ``limit`` names matching it (best first), and when nothing matches, up to
        ``probe_limit`` names per probe (word prefixes to suggest from); plus the trend of the
        account the answer most likely shows."""
        raw = query.strip()
        wanted = normalize_name(raw)
        if not raw or limit < 1:
            return Found({}, None)
        variants = list(dict.fromkeys([raw, raw.upper(), raw.lower()] if id_variants else [raw]))
        probe_args = [normalize_name(p).encode()[: fmt.SUFFIX_CHARS] for p in probes]
        reply = self._call(
            "latest",
            snapshot_id,
            "find",
            len(variants),
            *variants,
            wanted.encode()[: fmt.SUFFIX_CHARS],
            limit,
            history,
            probe_limit,
            len(probe_args),
            *probe_args,
            switch_key=switch_key,
        )
        if reply.meta is None or reply.layout is None:
            return Found(reply.switch, reply.meta)
        layout = reply.layout
        by_id_raw, match_raw, more, close_raw, target, points, gone_raw, gone_by_id, newest = (
            reply.results
        )
        by_id = _row(by_id_raw, layout) if by_id_raw else None
        ranked = []
        for raw_row in match_raw:
            row = _row(raw_row, layout)
            name = normalize_name(row.account_name)
            rank = _rank(name, wanted)
            if rank is not None:
                ranked.append((rank, name, row.account_id, row))
        ranked.sort(key=lambda item: item[:3])
        return Found(
            reply.switch,
            reply.meta,
            by_id,
            [item[3] for item in ranked],
            bool(more),
            [_row(raw_row, layout) for raw_row in close_raw],
            target.decode() if target else None,
            _points(points),
            _unlisted(gone_raw, wanted, by_id=bool(gone_by_id)),
            bool(gone_by_id),
            len(gone_raw) >= UNLISTED_READ,
            newest.decode() if newest else None,
        )

    def list_ids(self) -> list[str]:
        """Ids in the retention window, oldest first (the pinned last good one may be older)."""
        with translate_errors(self._r):
            return [str(sid) for sid in self._r.lrange(self._history, 0, -1)]


def _evalsha(r: redis.Redis, script: Script, keys: list[str], argv: list[Any]) -> Any:
    """Run a registered script with binary replies (rows are packed bytes, which the client's
    ``decode_responses`` would refuse), loading it first if the server does not know it."""
    command = ("EVALSHA", script.sha, len(keys), *keys, *argv)
    try:
        return r.execute_command(*command, **{NEVER_DECODE: True})
    except redis.exceptions.NoScriptError:
        r.script_load(script.script)
        return r.execute_command(*command, **{NEVER_DECODE: True})


@functools.lru_cache(maxsize=64)
def _meta(raw: bytes) -> SnapshotMeta:
    """A snapshot's meta from its stored JSON, parsed once per text (every read brings it:
    each digest, each `/churn`; parsing and checking it cost ~40k instructions). The same
    text is the same meta, so readers share one object, which none of them changes."""
    return SnapshotMeta.from_json(raw)


def _row(raw: list[bytes], layout: _Layout) -> Row:
    risk, account_id, data = raw
    row = fmt.unpack_row(data)
    return Row(account_id.decode(), row[3], fmt.unpack_risk(risk), row, layout)


def _decode(
    layout: _Layout,
    account_id: str,
    risk: float,
    row: fmt.DataRow,
    *,
    for_digest: bool = False,
) -> dict[str, Any]:
    """The card of an account from its unpacked data row (``unpack_row``)."""
    previous, owner, segment, name, record = row
    return (layout.digest_codec if for_digest else layout.codec).decode(
        record,
        account_id=account_id,
        account_name=name,
        owner=layout.owners[owner],
        segment=layout.segments[segment],
        risk=risk,
        previous_risk=previous,
    )


def _points(raw: list[list[bytes]]) -> list[tuple[SnapshotMeta, float]]:
    return [(_meta(meta), fmt.unpack_risk(risk)) for meta, risk in raw]


def _pair_field(owner: str, segment: str) -> str:
    return f"os:{len(owner)}:{owner}:{segment}"


def _top_field(owner: str | None, segment: str | None) -> str:
    """The precomputed top list of an owner, a segment, both, or the whole book."""
    if owner is not None and segment is not None:
        return _pair_field(owner, segment)
    return f"o:{owner}" if owner is not None else "" if segment is None else f"s:{segment}"


def _top_count(n: int, method: str) -> int:
    """``n`` if a top list can answer it (it holds at most MAX_TOP), else a ValueError."""
    if not 0 <= n <= MAX_TOP:
        raise ValueError(
            f"The 'n' parameter of SnapshotStore.{method} must be between 0 and {MAX_TOP}. "
            f"Got {n!r} instead."
        )
    return n


def _top_args(n: int, lists: Sequence[TopList], method: str) -> tuple[Any, ...]:
    """The READ script's ``top`` arguments: rows wanted from each list, then the lists."""
    if not lists:
        raise ValueError(f"SnapshotStore.{method} needs at least one top list; got none.")
    return (_top_count(n, method), *(_top_field(owner, segment) for owner, segment in lists))


def _serving_top(reply: _Reply) -> ServingTop:
    layout = reply.layout
    if layout is None:
        return ServingTop(reply.switch, reply.meta)
    return ServingTop(
        reply.switch,
        reply.meta,
        [[_row(raw, layout) for raw in result] for result in reply.results],
    )


def _slice(chunk: ScoredChunk, start: int, stop: int) -> ScoredChunk:
    stop = min(stop, len(chunk))
    return ScoredChunk(
        chunk.account_id.cut(start, stop),
        chunk.account_name.cut(start, stop),
        chunk.owner.cut(start, stop),
        chunk.segment.cut(start, stop),
        np.asarray(chunk.risk, dtype=float)[start:stop],
        chunk.records.cut(start, stop),
        _abstained(chunk)[start:stop],
    )


def _concat(parts: list[ScoredChunk]) -> ScoredChunk:
    if len(parts) == 1:
        return parts[0]
    return ScoredChunk(
        Texts.from_packed(_joined([p.account_id for p in parts])),
        Texts.from_packed(_joined([p.account_name for p in parts])),
        Texts.from_packed(_joined([p.owner for p in parts])),
        Texts.from_packed(_joined([p.segment for p in parts])),
        np.concatenate([p.risk for p in parts]),
        _joined([p.records for p in parts]),
        np.concatenate([_abstained(p) for p in parts]),
    )


def _abstained(chunk: ScoredChunk) -> np.ndarray:
    """Which accounts of a chunk are not scored for lack of data (a bool per account)."""
    if chunk.abstained is None:
        return np.zeros(len(chunk), dtype=bool)
    return np.asarray(chunk.abstained, dtype=bool)


def _joined(parts: list[Packed]) -> Packed:
    """One packed column of the values of ``parts``, in order."""
    data, offsets, size = [], [np.zeros(1, dtype=np.int64)], 0
    for part in parts:
        at = np.asarray(part.offsets, dtype=np.int64)
        data.append(part.data[int(at[0]) : int(at[-1])])
        offsets.append(at[1:] - at[0] + size)
        size += int(at[-1] - at[0])
    return Packed(b"".join(data), np.concatenate(offsets))


def _unlisted(raw: list[list[bytes]], wanted: str, *, by_id: bool) -> list[UnlistedRow]:
    """The rows of accounts the export no longer lists, as the READ script found them: the
    one found by id, else those whose name matches ``wanted`` (the index holds each name's
    first characters only), best match first."""
    ranked = []
    for _, account_id, data in raw:
        _, _, _, name, day = fmt.unpack_row(data)
        row = UnlistedRow(account_id.decode(), name, day.decode())
        normal = normalize_name(name)
        rank = 0 if by_id else _rank(normal, wanted)
        if rank is not None:
            ranked.append((rank, normal, row.account_id, row))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked]


def _rank(name: str, wanted: str) -> int | None:
    """How well ``name`` matches: 0 exact, 1 prefix, 2 start of a later word, 3 after
    punctuation inside a word; None if no word of it starts with ``wanted``."""
    if name == wanted:
        return 0
    if name.startswith(wanted):
        return 1
    if f" {wanted}" in f" {name}":
        return 2
    if any(name.startswith(wanted, start) for start in fmt.word_starts(name)):
        return 3
    return None


def previous_risks(table: RiskTable | None, ids: list[bytes]) -> np.ndarray:
    """Each id's risk in the previous snapshot's ``table``, NaN where absent or none."""
    return np.full(len(ids), np.nan) if table is None else table.lookup(ids)
