"""What each posted digest showed (and held out), kept long enough to learn whether acting
helped.

A digest's slot record and the snapshots it read are gone after a few weeks, but whether an
account churned is known only a horizon (a quarter) later. So when a digest is posted, each
account it showed is recorded with what the CSM saw (risk band, segment, recommended action,
model version, as-of date), and so is each account the holdout kept out of it
(``held_out``), the control group of the save rates (``bot.feedback.save_rates``).

Key layout (``E`` = ``<prefix>:{<book>}:exposures``, one hash tag with the book's feedback)::

    E             zset   week (its Monday, ISO) -> that Monday as days since 1970-01-01
    E:<monday>    hash   "<account>\\x1f<digest>" -> Exposure as JSON; expires after ``keep``

An account shown by several digests in one week has one field per digest; a digest posted
twice in a week (a `digest now`) overwrites its own fields, so nothing counts twice.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _escaped
from typing import Any, NamedTuple

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from bot.feedback.metrics import week_start
from bot.state.replies import members, text_hash
from bot.state.store import book_root, translate_errors

_SEP = "\x1f"
#: Compact JSON, one encoder for every call (``json.dumps`` with options builds a new one).
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_EPOCH = dt.date(1970, 1, 1)
#: A year of retention plus a horizon: the last exposures of the year get their outcome.
DEFAULT_KEEP = dt.timedelta(days=365 + 120)

# KEYS: the index, the week's hash. ARGV: keep s, the week (ISO), its day number, the oldest
# day number kept, then field, value, ... (HSET in batches: Lua's unpack has a stack limit).
_RECORD = """
for i = 5, #ARGV, 200 do
  redis.call('HSET', KEYS[2], unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
return 1
"""


class Exposure(NamedTuple):
    """One account as one digest showed it (or, ``held_out``, would have shown it).

    A named tuple, immutable as the frozen dataclass it was, because a digest makes one per
    account it shows or holds out: a frozen dataclass sets each of the nine fields through
    ``object.__setattr__``, ~14K instructions an exposure against ~3K. Read its fields by
    name (:meth:`_asdict` gives them as a dict, as ``vars`` did)."""

    account_id: str
    segment: str
    band: str
    risk: float
    action: str
    model_version: str
    as_of: str
    snapshot_id: str
    held_out: bool = False

    @classmethod
    def from_card(
        cls, card: Mapping[str, Any], *, snapshot_id: str, held_out: bool = False
    ) -> Exposure:
        # The fields in their order, made into the tuple directly: the class's own __new__
        # is a Python function that only does that, at a call's cost (a keyword call costs
        # more still), and every account a digest shows or holds out makes one.
        return tuple.__new__(
            cls,
            (
                str(card["account_id"]),
                str(card.get("segment") or "unknown"),
                str(card.get("band") or "unknown"),
                float(card["risk"]),
                str((card.get("action") or {}).get("rule") or "unknown"),
                str(card.get("model_version") or "unknown"),
                str(card.get("as_of") or ""),
                snapshot_id,
                held_out,
            ),
        )


def exposure_json(exposure: Exposure) -> str:
    """An exposure as the log keeps it (compact JSON, ASCII-escaped). A digest's plan stores
    these same texts (:attr:`~bot.digest.compose.DigestPlan.exposures_json`), so a digest
    encodes each of its exposures once, not once for the plan and again for the log.

    The texts are what ``_compact_json(exposure._asdict())`` gives
    (tests/test_digest_plan_json.py compares them), filled into the shape of the object rather
    than encoded key by key: the encoder escaped the nine keys of every exposure again, ~33k
    instructions an exposure against ~15k. A risk that is not a finite number is left to the
    encoder (NaN, Infinity)."""
    e = exposure
    risk = e.risk
    return _EXPOSURE_JSON % (
        _escaped(e.account_id),
        _escaped(e.segment),
        _escaped(e.band),
        float.__repr__(risk) if math.isfinite(risk) else _compact_json(risk),
        _escaped(e.action),
        _escaped(e.model_version),
        _escaped(e.as_of),
        _escaped(e.snapshot_id),
        "true" if e.held_out else "false",
    )


#: The shape of :func:`exposure_json`'s texts: the fields of :class:`Exposure`, in order.
_EXPOSURE_JSON = (
    '{"account_id":%s,"segment":%s,"band":%s,"risk":%s,"action":%s,"model_version":%s,'
    '"as_of":%s,"snapshot_id":%s,"held_out":%s}'
)


class ExposureLog:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "churnbot",
        book: str = "default",
        keep: dt.timedelta = DEFAULT_KEEP,
    ) -> None:
        self._r = client
        self._key = book_root(prefix, book, owner="ExposureLog") + "exposures"
        self._keep = keep

    def record(
        self,
        digest: str,
        exposures: Sequence[Exposure],
        *,
        at: dt.datetime,
        pipe: Pipeline | None = None,
        encoded: Sequence[str] | None = None,
    ) -> None:
        """Record what ``digest`` showed at ``at``, in one atomic call; weeks older than
        ``keep`` are dropped from the index as new ones arrive (their hashes expire). With
        ``pipe``, the call is queued there, to go out with the caller's other commands in one
        round trip (EVAL, not EVALSHA: a pipeline cannot load a script the server lost),
        queued as the EVAL command itself: redis-py's ``eval`` only hands its arguments on
        through another call, which copies all of them (a digest's exposures are most of
        its arguments). ``encoded``: each exposure's :func:`exposure_json`, when the caller
        has them."""
        week = week_start(at.astimezone(dt.UTC).date())
        if encoded is None:
            encoded = [exposure_json(e) for e in exposures]
        fields = [
            item
            for e, text in zip(exposures, encoded, strict=True)
            for item in (f"{e.account_id}{_SEP}{digest}", text)
        ]
        if not fields:
            return
        days = (week - _EPOCH).days
        keys = [self._key, f"{self._key}:{week.isoformat()}"]
        args: list[EncodableT] = [
            int(self._keep.total_seconds()),
            week.isoformat(),
            days,
            days - self._keep.days,
        ]
        if pipe is not None:
            pipe.execute_command("EVAL", _RECORD, len(keys), *keys, *args, *fields)
            return
        with translate_errors(self._r):
            self._r.eval(_RECORD, len(keys), *keys, *args, *fields)

    def weeks(self) -> list[dt.date]:
        with translate_errors(self._r):
            return [dt.date.fromisoformat(w) for w in members(self._r.zrange(self._key, 0, -1))]

    def read(self) -> Iterator[tuple[dt.date, str, Exposure]]:
        """(week, digest, exposure) of every recorded week, oldest first."""
        for week in self.weeks():
            with translate_errors(self._r):
                stored = text_hash(self._r.hgetall(f"{self._key}:{week.isoformat()}"))
            for field, value in sorted(stored.items()):
                digest = field.split(_SEP, 1)[1]
                yield week, digest, Exposure(**json.loads(value))
