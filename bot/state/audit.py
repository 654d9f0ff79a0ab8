"""The audit log: who did what, when and why, for every admin action and automatic trip.

A capped Redis stream per book: append-only, ordered by time, and readable newest first for
`/churn-admin status`. Capping (about 10,000 entries) keeps a forgotten deployment bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from redis.client import Pipeline

from bot.state.replies import as_fields, entries
from bot.state.store import book_root, translate_errors

MAX_ENTRIES = 10_000
#: ``json.dumps(..., sort_keys=True)``, with one encoder for every entry (``json.dumps``
#: with options builds a new one per call; every digest posted writes an entry).
_sorted_json = json.JSONEncoder(sort_keys=True).encode


@dataclass(frozen=True)
class AuditEntry:
    when: str
    who: str
    what: str
    why: str
    outcome: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(
        self,
        redis: redis.Redis,
        *,
        book: str = "default",
        prefix: str = "churnbot",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._r = redis
        self._key = book_root(prefix, book, owner="AuditLog") + "audit"
        self._clock = clock

    def record(
        self,
        *,
        who: str,
        what: str,
        why: str = "",
        outcome: str = "done",
        detail: dict[str, Any] | None = None,
        pipe: Pipeline | None = None,
    ) -> None:
        """Append one entry; ``outcome`` is e.g. done, refused, failed. With ``pipe``, the
        append is queued there, to go out in the same round trip as the write it tells of (a
        digest's "posted" with its finish); its reply there is the entry's id.

        The fields are those of an :class:`AuditEntry`, in its order (:meth:`recent` reads
        them back as one), written without making one: no caller reads the entry written, and
        a frozen dataclass costs ~15K instructions to make (every digest posted writes one)."""
        fields = as_fields(
            {
                "when": self._clock().astimezone(UTC).isoformat(),
                "who": who,
                "what": what,
                "why": why,
                "outcome": outcome,
                "detail": _sorted_json(detail or {}),
            }
        )
        if pipe is not None:
            pipe.xadd(self._key, fields, maxlen=MAX_ENTRIES, approximate=True)
            return
        with translate_errors(self._r):
            self._r.xadd(self._key, fields, maxlen=MAX_ENTRIES, approximate=True)

    def withdraw(self, entry_id: str) -> None:
        """Remove the entry ``entry_id``: one queued with a write that the same round trip
        refused (a digest's finish whose claim had run out: the run that holds it now writes
        the entry), so the log says what happened once."""
        with translate_errors(self._r):
            self._r.xdel(self._key, entry_id)

    def recent(self, count: int = 20) -> list[AuditEntry]:
        """The newest ``count`` entries, newest first."""
        with translate_errors(self._r):
            rows = entries(self._r.xrevrange(self._key, count=count))
        return [
            AuditEntry(
                f["when"], f["who"], f["what"], f["why"], f["outcome"], json.loads(f["detail"])
            )
            for _, f in rows
        ]
