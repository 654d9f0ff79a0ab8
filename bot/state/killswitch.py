"""The kill switch: one shared on/off record per book, and which snapshot readers must see.

When the model or its data cannot be trusted, an admin (``/churn-admin``) or a health check
trips the switch; every process then serves the last known good snapshot with a banner instead
of a wrong answer. The record lives in one Redis hash (``<prefix>:{<book>}:killswitch``, same
hash tag as the book's snapshots) so every web process and the scheduler agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, get_args

import redis

from bot.state.replies import as_fields, text_hash
from bot.state.store import book_root, translate_errors

if TYPE_CHECKING:  # the snapshot store needs numpy; the switch alone does not
    from bot.state.snapshots import SnapshotMeta, SnapshotStore

Source = Literal["admin", "health_check", "none"]

# Trips only an untripped switch, so the first cause (the one to fix) is never overwritten by
# a later one; replies with the record as it now stands.
_TRIP = """
if redis.call('HGET', KEYS[1], 'on') ~= '1' then
  redis.call('HSET', KEYS[1], 'on', '1', 'reason', ARGV[1], 'who', ARGV[2], 'when', ARGV[3],
             'source', ARGV[4])
end
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class KillSwitchState:
    """The switch as last set. ``source`` is who set it: a person (``admin``), the automatic
    checks (``health_check``), or nobody yet (``none``, the default off state)."""

    on: bool
    reason: str
    who: str
    when: str
    source: Source


_NEVER_SET = KillSwitchState(on=False, reason="", who="", when="", source="none")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KillSwitch:
    """Read, trip and reset the kill switch of one book.

    ``clock`` is injected so tests control ``when`` without sleeping.
    """

    def __init__(
        self,
        redis: redis.Redis,
        *,
        book: str = "default",
        prefix: str = "churnbot",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._r = redis
        self._key = book_root(prefix, book, owner="KillSwitch") + "killswitch"
        self._clock = clock
        self._trip = redis.register_script(_TRIP)

    @property
    def key(self) -> str:
        """The record's key, for reads that take the switch and a snapshot in one call."""
        return self._key

    def state(self) -> KillSwitchState:
        """The current record; off and never set if nobody touched the switch."""
        with translate_errors(self._r):
            return state_from(text_hash(self._r.hgetall(self._key)))

    def trip(
        self, reason: str, *, who: str, source: Literal["admin", "health_check"]
    ) -> KillSwitchState:
        """Turn the switch on. Already on: nothing changes (the first reason stands; reset,
        then trip, to replace it). Returns the state as it now stands."""
        _check_text("reason", reason, "trip")
        _check_text("who", who, "trip")
        _check_source(source, "trip")
        with translate_errors(self._r):
            reply = self._trip(keys=[self._key], args=[reason, who, self._now(), source])
        return state_from(dict(zip(reply[::2], reply[1::2], strict=True)))

    def reset(
        self, *, who: str, source: Literal["admin", "health_check"] = "admin"
    ) -> KillSwitchState:
        """Turn the switch off, recording who did it and when (one HSET: atomic)."""
        _check_text("who", who, "reset")
        _check_source(source, "reset")
        record = {"on": "0", "reason": "", "who": who, "when": self._now(), "source": source}
        with translate_errors(self._r):
            self._r.hset(self._key, mapping=as_fields(record))
        return state_from(record)

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError(
                f"The 'clock' of KillSwitch must return an aware datetime. Got {now!r} instead."
            )
        return now.astimezone(UTC).isoformat()


def state_from(record: dict[str, str]) -> KillSwitchState:
    """The switch as its stored record says (empty: off and never set)."""
    if not record:
        return _NEVER_SET
    return KillSwitchState(
        on=record["on"] == "1",
        reason=record["reason"],
        who=record["who"],
        when=record["when"],
        source=record["source"],  # type: ignore[arg-type]
    )


def _check_text(name: str, value: str, method: str) -> None:
    if not value.strip():
        raise ValueError(
            f"The '{name}' parameter of KillSwitch.{method} must be a non-empty string. "
            f"Got {value!r} instead."
        )


def _check_source(source: str, method: str) -> None:
    allowed = [s for s in get_args(Source) if s != "none"]
    if source not in allowed:
        raise ValueError(
            f"The 'source' parameter of KillSwitch.{method} must be one of {allowed}. "
            f"Got {source!r} instead."
        )


def serving_snapshot(
    store: SnapshotStore, switch: KillSwitch
) -> tuple[SnapshotMeta | None, KillSwitchState]:
    """The snapshot readers must be shown, with the switch state that chose it.

    Off: the latest. On: the last known good, which may be None; the caller then says
    honestly that no trustworthy scores exist yet instead of showing untrusted ones. One
    Redis call reads both, so the choice and the snapshot always agree.
    """
    record, meta = store.serving(switch.key)
    return meta, state_from(record)
