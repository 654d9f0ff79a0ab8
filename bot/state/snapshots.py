"""Scored snapshots of a book in Redis: published atomically, kept for trends, read fast.

Why it is built this way:

* **Atomic publish.** A snapshot's keys are written first (pipelined batches, memory flat in
  the size of the book), then one Lua script flips the pointers. Readers resolve the pointer
  and read in the same Lua call, so they see the old snapshot or the new one, never a mix, and
  never one that retention is deleting (a snapshot is readable while its ``meta`` key exists;
  deletion removes ``meta`` first).
* **History and fallback.** The last ``retention`` publishes are kept for trends; the last
  known good one is pinned even when it falls out of that window, because the kill switch
  serves it. An unhealthy publish moves ``latest`` only.
* **Nothing leaks.** Every data key of a snapshot is listed in its ``keys`` set; staged keys
  carry a TTL until the flip, so a publisher killed half-way leaves nothing for long.
* **Cluster ready.** Every key of a book shares the hash tag ``{book}``, so scripts and
  pipelines stay in one slot. A book is therefore served by one node; books spread.

Key layout (``P`` = ``<prefix>:{<book>}``)::

    P:history             list    snapshot ids, oldest -> newest (the retention window)
    P:latest              string  id of the newest snapshot
    P:last_good           string  id of the newest healthy snapshot
    P:published           set     ids whose keys exist (window + pinned last good + not yet deleted)
    P:snap:<id>:meta      string  SnapshotMeta as JSON; written by the flip, deleted first
    P:snap:<id>:keys      set     every data key below, for PERSIST at the flip and UNLINK later
    P:snap:<id>:cards     hash    account_id -> card JSON
    P:snap:<id>:risk      zset    account_id -> risk (top-N of the whole book)
    P:snap:<id>:by:owner:<owner>                          zset  account_id -> risk
    P:snap:<id>:by:segment:<segment>                      zset  account_id -> risk
    P:snap:<id>:by:owner+segment:<len(owner)>:<owner>:<segment>  zset  account_id -> risk
    P:snap:<id>:names     zset    "<normalized name>\\x1f<account_id>", score 0

A channel's filter (owner, segment, or both) is answered by one of the ``by:`` sets: top-N is
``O(log N + n)`` whatever the size of the book.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Any

import redis
from redis.typing import EncodableT

from bot.state.replies import as_fields, texts
from bot.state.store import StoreError, book_root, translate_errors
from models.errors import DataContractError

#: Staged keys live this long unless the flip makes them permanent.
STAGING_TTL_S = 86_400
#: Upper bound of ``top(n)``: a digest shows a handful; larger exports should stream instead.
MAX_TOP = 1_000
_SEP = "\x1f"
_CHUNK = 1_000
_REQUIRED = ("account_id", "account_name", "owner", "segment", "risk")
_ID_RE = re.compile(r"[^\s{}\x00-\x1f]{1,128}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# Makes a staged snapshot visible. Idempotent for the same id, so a retry after a lost reply
# neither pushes twice nor loses the ids to delete (they are recomputed from P:published).
# Keys derived from ARGV[1] share the book's hash tag, hence KEYS[1]'s slot.
_FLIP = """
local history, latest, last_good, published = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, id = ARGV[1], ARGV[2]
if not redis.call('LPOS', history, id) then
  local staged = redis.call('SMEMBERS', base .. id .. ':keys')
  for _, key in ipairs(staged) do
    if redis.call('EXISTS', key) == 0 then
      return redis.error_reply('STAGING_EXPIRED staged key ' .. key .. ' expired before the flip')
    end
  end
  for _, key in ipairs(staged) do redis.call('PERSIST', key) end
  redis.call('PERSIST', base .. id .. ':keys')
  redis.call('SET', base .. id .. ':meta', ARGV[3])
  redis.call('SADD', published, id)
  redis.call('RPUSH', history, id)
  redis.call('SET', latest, id)
  if ARGV[4] == '1' then redis.call('SET', last_good, id) end
  local excess = redis.call('LLEN', history) - tonumber(ARGV[5])
  if excess > 0 then redis.call('LTRIM', history, excess, -1) end
end
local keep = {}
for _, kept in ipairs(redis.call('LRANGE', history, 0, -1)) do keep[kept] = true end
local good = redis.call('GET', last_good)
if good then keep[good] = true end
local dropped = {}
for _, old in ipairs(redis.call('SMEMBERS', published)) do
  if not keep[old] then table.insert(dropped, old) end
end
return dropped
"""

# Resolves a snapshot (pointer KEYS[1], or the explicit id ARGV[2]) and reads from it in one
# atomic step. Reply: {} if the pointer is unset, {id} if the snapshot is gone,
# {id, 'ok', ...result} otherwise.
_READ = """
local id = ARGV[2]
if id == '' then
  id = redis.call('GET', KEYS[1])
  if not id then return {} end
end
local base = ARGV[1] .. id .. ':'
local meta = redis.call('GET', base .. 'meta')
if not meta then return {id} end
local op = ARGV[3]
if op == 'meta' then return {id, 'ok', meta} end
if op == 'card' then return {id, 'ok', redis.call('HGET', base .. 'cards', ARGV[4])} end
local ids = redis.call('ZREVRANGEBYSCORE', base .. ARGV[4], '+inf', ARGV[5], 'LIMIT', 0, ARGV[6])
if #ids == 0 then return {id, 'ok'} end
local reply = redis.call('HMGET', base .. 'cards', unpack(ids))
table.insert(reply, 1, 'ok')
table.insert(reply, 1, id)
return reply
"""


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
    def from_json(cls, text: str) -> SnapshotMeta:
        return cls(**json.loads(text))


def normalize_name(name: str) -> str:
    """Case-, accent- and spacing-insensitive form of an account name ("Société" -> "societe")."""
    decomposed = unicodedata.normalize("NFKD", name)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cc"))
    return " ".join(kept.casefold().split())


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
    if not account_id or _SEP in account_id:
        raise DataContractError(
            f"card #{position}: 'account_id' must be non-empty without control characters; "
            f"got {account_id!r} instead."
        )
    if not isinstance(risk, int | float) or not math.isfinite(risk):
        raise DataContractError(
            f"card #{position} (account_id={account_id!r}): 'risk' must be a finite number; "
            f"got {risk!r} instead."
        )
    return account_id, str(name), owner, segment, float(risk)


def _indexes(owner: str, segment: str) -> tuple[str, ...]:
    """Every index a card with this owner and segment belongs to."""
    return tuple(_index_suffix(o, s) for o in (owner, None) for s in (segment, None))


def _index_suffix(owner: str | None, segment: str | None) -> str:
    if owner is not None and segment is not None:
        return f"by:owner+segment:{len(owner)}:{owner}:{segment}"
    if owner is not None:
        return f"by:owner:{owner}"
    if segment is not None:
        return f"by:segment:{segment}"
    return "risk"


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
        self._flip = redis.register_script(_FLIP)
        self._read_script = redis.register_script(_READ)

    # --- publishing -------------------------------------------------------------------------

    def publish(self, meta: SnapshotMeta, cards: Iterable[Mapping[str, Any]]) -> None:
        """Store ``cards`` as snapshot ``meta.snapshot_id`` and make it the latest, atomically.

        ``cards`` may be a generator: it is consumed in batches, so memory stays flat for a
        book of millions. Refuses (SnapshotExists) an id already published, an empty snapshot,
        and a count that disagrees with ``meta.n_accounts`` (duplicate ids, truncated input);
        on any refusal readers keep the previous snapshot. Snapshots that fall out of the
        retention window are deleted afterwards (never the last known good one).
        """
        sid = meta.snapshot_id
        with translate_errors(self._r):
            if self._r.exists(self._snap + sid + ":meta"):
                raise SnapshotExists(
                    f"snapshot {sid!r} of {self._root[:-1]} is already published; "
                    "publish under a new id."
                )
            # Leftovers of an earlier attempt at this id that died half-way would mix in.
            self._unlink_data(sid)
            try:
                streamed = self._stage(sid, cards)
                stored = self._r.hlen(self._snap + sid + ":cards")
                if stored == 0:
                    raise DataContractError(
                        f"snapshot {sid!r} has no cards; an empty book is refused rather than "
                        "shown to users as one without risk."
                    )
                if stored != meta.n_accounts:
                    raise DataContractError(
                        f"snapshot {sid!r}: meta.n_accounts is {meta.n_accounts} but "
                        f"{stored} distinct accounts were stored ({streamed} cards streamed; "
                        "duplicate account_id or truncated input?)."
                    )
            except Exception:
                with suppress(redis.RedisError):  # if Redis is away, the staging TTL cleans up
                    self._unlink_data(sid)
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
                    ],
                )
            except redis.ResponseError as exc:
                raise StoreError(
                    f"snapshot {sid!r} was not published ({exc}); readers keep the previous "
                    "one. Publish it again."
                ) from None
            for old in sorted(dropped):
                self._delete_snapshot(old)

    def _stage(self, sid: str, cards: Iterable[Mapping[str, Any]]) -> int:
        """Write the snapshot's keys in pipelined batches; return how many cards were streamed."""
        base = self._snap + sid + ":"
        keyset = base + "keys"
        known: set[str] = set()
        streamed = 0
        iterator = iter(cards)
        while batch := list(islice(iterator, self._batch_size)):
            payload: dict[str, str] = {}
            names: dict[str, float] = {}
            by_key: defaultdict[str, dict[str, float]] = defaultdict(dict)
            for card in batch:
                account_id, name, owner, segment, risk = _checked(card, streamed)
                streamed += 1
                try:
                    payload[account_id] = json.dumps(
                        card, separators=(",", ":"), ensure_ascii=False
                    )
                except (TypeError, ValueError) as exc:
                    raise DataContractError(
                        f"card #{streamed - 1} (account_id={account_id!r}) is not JSON: {exc}"
                    ) from None
                names[f"{normalize_name(name)}{_SEP}{account_id}"] = 0
                for index in _indexes(owner, segment):
                    by_key[base + index][account_id] = risk
            # MULTI/EXEC: a batch's writes and the expiry of every key it creates apply
            # together or not at all. Without it, a publisher killed (or cut off) half-way
            # through sending a batch leaves keys Redis wrote but never got the EXPIRE for:
            # a snapshot's worth of memory kept forever under ``noeviction``. Later writes
            # (HSET, ZADD) keep a key's TTL. All keys share the book's hash tag: one slot.
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(base + "cards", mapping=as_fields(payload))
            pipe.zadd(base + "names", names)
            for key, members in by_key.items():
                pipe.zadd(key, members)
            new = {base + "cards", base + "names", *by_key} - known
            if new:
                pipe.sadd(keyset, *new)
                pipe.expire(keyset, STAGING_TTL_S)
                for key in new:
                    pipe.expire(key, STAGING_TTL_S)
            pipe.execute()
            known |= new
        return streamed

    def _unlink_data(self, sid: str) -> None:
        """UNLINK (freed in the background) every data key of ``sid`` and its key list."""
        keyset = self._snap + sid + ":keys"
        keys = sorted(self._r.smembers(keyset))
        for start in range(0, len(keys), _CHUNK):
            self._r.unlink(*keys[start : start + _CHUNK])
        self._r.unlink(keyset)

    def _delete_snapshot(self, sid: str) -> None:
        """Delete an old snapshot: meta first (readers then see it as gone), the id last."""
        self._r.unlink(self._snap + sid + ":meta")
        self._unlink_data(sid)
        self._r.srem(self._published, sid)

    # --- reading ----------------------------------------------------------------------------

    def _read(
        self, pointer: str, snapshot_id: str | None, op: str, *args: EncodableT
    ) -> tuple[str, list[Any]] | None:
        """Run ``op`` on the pointed (or given) snapshot; None if nothing is published yet."""
        with translate_errors(self._r):
            reply = self._read_script(
                keys=[pointer], args=[self._snap, snapshot_id or "", op, *args]
            )
        if not reply:
            return None
        if len(reply) == 1:
            raise SnapshotNotFound(
                f"snapshot {reply[0]!r} of {self._root[:-1]} is not stored (never published or "
                f"deleted by retention); stored: {self.list_ids()}."
            )
        return reply[0], reply[2:]

    def _meta(self, pointer: str) -> SnapshotMeta | None:
        found = self._read(pointer, None, "meta")
        return None if found is None else SnapshotMeta.from_json(found[1][0])

    def latest(self) -> SnapshotMeta | None:
        """The newest snapshot, healthy or not; None before the first publish."""
        return self._meta(self._latest)

    def last_good(self) -> SnapshotMeta | None:
        """The newest healthy snapshot (what the kill switch serves); None if there is none."""
        return self._meta(self._last_good)

    def card(self, account_id: str, *, snapshot_id: str | None = None) -> dict[str, Any] | None:
        """One account's card in the latest (or given) snapshot; None if absent."""
        found = self._read(self._latest, snapshot_id, "card", account_id)
        if found is None or found[1][0] is None:
            return None
        return json.loads(found[1][0])

    def top(
        self,
        n: int,
        *,
        owner: str | None = None,
        segment: str | None = None,
        snapshot_id: str | None = None,
        min_risk: float = 0.0,
    ) -> list[dict[str, Any]]:
        """The ``n`` riskiest cards (risk >= ``min_risk``), highest first, optionally filtered.

        A channel's book is an owner, a segment, or both; each combination has its own index.
        """
        if not 0 <= n <= MAX_TOP:
            raise ValueError(
                f"The 'n' parameter of SnapshotStore.top must be between 0 and {MAX_TOP}. "
                f"Got {n!r} instead."
            )
        if n == 0:
            return []
        suffix = _index_suffix(owner, segment)
        found = self._read(self._latest, snapshot_id, "top", suffix, repr(float(min_risk)), n)
        if found is None:
            return []
        return [json.loads(card) for card in found[1] if card is not None]

    def iter_cards(self, *, snapshot_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every card of the latest (or given) snapshot, in no particular order, a batch at a
        time (exports and bulk reads; memory stays flat in the size of the book)."""
        meta = self._meta(self._latest) if snapshot_id is None else None
        sid = snapshot_id or (meta.snapshot_id if meta else None)
        if sid is None:
            return
        with translate_errors(self._r):
            if not self._r.exists(self._snap + sid + ":meta"):
                raise SnapshotNotFound(
                    f"snapshot {sid!r} of {self._root[:-1]} is not stored; "
                    f"stored: {self.list_ids()}."
                )
            for _, card in self._r.hscan_iter(self._snap + sid + ":cards", count=_CHUNK):
                yield json.loads(card)

    def history(self, account_id: str, n: int = 8) -> list[tuple[SnapshotMeta, float]]:
        """(snapshot, risk) for the last ``n`` retained snapshots holding the account, oldest
        first: the points of a trend or sparkline."""
        with translate_errors(self._r):
            ids = texts(self._r.lrange(self._history, -n, -1)) if n > 0 else []
            pipe = self._r.pipeline(transaction=False)
            for sid in ids:
                pipe.get(self._snap + sid + ":meta")
                pipe.zscore(self._snap + sid + ":risk", account_id)
            replies = pipe.execute()
        points = []
        for meta, risk in zip(replies[::2], replies[1::2], strict=True):
            # A snapshot deleted since LRANGE, or one without the account, has no point.
            if meta is not None and risk is not None:
                points.append((SnapshotMeta.from_json(meta), float(risk)))
        return points

    def find(
        self,
        query: str,
        *,
        limit: int = 10,
        snapshot_id: str | None = None,
        substring: bool = True,
    ) -> list[dict[str, Any]]:
        """Cards matching ``query`` for ``/churn NAME``: the account with that exact id first,
        then names containing it, ignoring case and accents (exact name, prefix, word start,
        elsewhere; then alphabetical).

        Names starting with the query come from a lexicographic range of the name index
        (ZRANGEBYLEX: logarithmic). Only when those do not fill ``limit`` and ``substring``
        is true does the search scan the whole index on the server (ZSCAN MATCH), about
        0.1-0.15 s per 100k names (bench/state_read.py).
        """
        raw = query.strip()
        wanted = normalize_name(raw)
        if not raw or limit < 1:
            return []
        found = self._read(self._latest, snapshot_id, "card", raw)
        if found is None:
            return []
        sid, (exact,) = found
        results = [json.loads(exact)] if exact is not None else []
        names_key = self._snap + sid + ":names"
        with translate_errors(self._r):
            members = texts(
                self._r.zrangebylex(
                    names_key, f"[{wanted}", f"[{wanted}\U0010ffff", start=0, num=limit + 1
                )
            )
            if substring and len(members) < limit:
                pattern = "*" + _GLOB_SPECIAL.sub(r"\\\1", wanted) + "*" + _SEP + "*"
                members = [
                    member
                    for member, _ in self._r.zscan_iter(names_key, match=pattern, count=5_000)
                ]
            matches = []
            for member in set(members):
                name, _, account_id = member.rpartition(_SEP)
                if account_id != raw:
                    matches.append((_rank(name, wanted), name, account_id))
            ranked = [account_id for *_, account_id in sorted(matches)]
            wanted_ids = ranked[: limit - len(results)]
            cards = self._r.hmget(self._snap + sid + ":cards", wanted_ids) if wanted_ids else []
        results += [json.loads(card) for card in cards if card is not None]
        return results[:limit]

    def previous_risks(self, account_ids: Iterable[str], *, snapshot_id: str) -> dict[str, float]:
        """Risk of each given account in ``snapshot_id`` (absent accounts are left out), in
        bulk: the "change vs last snapshot" of a whole book without one call per account."""
        risk_key = self._snap + snapshot_id + ":risk"
        risks: dict[str, float] = {}
        with translate_errors(self._r):
            if not self._r.exists(self._snap + snapshot_id + ":meta"):
                raise SnapshotNotFound(
                    f"snapshot {snapshot_id!r} of {self._root[:-1]} is not stored; "
                    f"stored: {self.list_ids()}."
                )
            iterator = iter(account_ids)
            while chunk := list(islice(iterator, self._batch_size)):
                scores = self._r.zmscore(risk_key, chunk)
                risks.update(
                    (a, float(s)) for a, s in zip(chunk, scores, strict=True) if s is not None
                )
        return risks

    def list_ids(self) -> list[str]:
        """Ids in the retention window, oldest first (the pinned last good one may be older)."""
        with translate_errors(self._r):
            return texts(self._r.lrange(self._history, 0, -1))


def _rank(name: str, wanted: str) -> int:
    """How well ``name`` matches: 0 exact, 1 prefix, 2 start of a word, 3 elsewhere."""
    if name == wanted:
        return 0
    if name.startswith(wanted):
        return 1
    if f" {wanted}" in f" {name}":
        return 2
    return 3
