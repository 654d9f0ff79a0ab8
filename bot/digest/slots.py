"""Periods: which scheduled time a run belongs to, as pure functions of a trigger and a clock.

Why the period key is the local wall-clock time (``2026-11-01T01:30``) without its UTC offset:
on the fall-back day a 01:30 America/New_York schedule fires twice, at 01:30 EDT and again at
01:30 EST (APScheduler 3.11 does so on purpose: the wall clock shows 01:30 twice). Both fires
get the same key, so the second finds the first one's record and posts nothing. A
spring-forward 02:30 fires at 03:30 (the wall clock skips 02:30), and its key says 03:30, the
time the channel saw it.

All arithmetic is done in UTC: adding a timedelta to an aware local time moves the wall clock,
not the instant, and near a transition that lands on the wrong side of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

#: Bound on fire times walked in one call (a bad clock must not spin forever).
MAX_FIRE_TIMES = 10_000
#: How far before a window the walk starts. A CronTrigger asked from a point inside the hour a
#: spring-forward skips (e.g. 03:00 EDT) jumps over that day's shifted 02:30 (03:30 EDT),
#: although a walk from the previous fire finds it, as the scheduler does. Starting a day early
#: makes every search see the scheduler's own sequence.
_WALK_BACK = dt.timedelta(days=1)
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Slot:
    """One period of one digest: what the exactly-once records are keyed by."""

    digest: str
    channel: str
    key: str
    scheduled_at: dt.datetime  # UTC
    manual: bool = False

    @property
    def id(self) -> str:
        """Channel and period, e.g. ``C0CSEAST01:2026-11-23T09:00``."""
        return f"{self.channel}:{self.key}"


def period_key(fire_time: dt.datetime, zone: ZoneInfo) -> str:
    """The local wall-clock minute of ``fire_time`` in ``zone`` (see the module docstring)."""
    _check_aware("fire_time", fire_time)
    return fire_time.astimezone(dt.UTC).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def scheduled_slot(digest: str, channel: str, zone: ZoneInfo, fire_time: dt.datetime) -> Slot:
    return Slot(digest, channel, period_key(fire_time, zone), fire_time.astimezone(dt.UTC))


def manual_slot(digest: str, channel: str, zone: ZoneInfo, now: dt.datetime) -> Slot:
    """``/churn-admin digest now``: its own period per minute, so a double submit posts once."""
    minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return Slot(digest, channel, "now-" + period_key(minute, zone), minute, manual=True)


def fire_times(trigger: BaseTrigger, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Every fire time in ``(after, until]``, oldest first, as UTC datetimes."""
    _check_aware("after", after)
    _check_aware("until", until)
    found: list[dt.datetime] = []
    previous: dt.datetime | None = None
    start = after.astimezone(dt.UTC) - _WALK_BACK
    for _ in range(MAX_FIRE_TIMES):
        fire = trigger.get_next_fire_time(previous, start)
        if fire is None or fire > until:
            break
        if fire > after:
            found.append(fire.astimezone(dt.UTC))
        previous, start = fire, fire.astimezone(dt.UTC) + _TICK
    return found


def next_fire_time(trigger: BaseTrigger, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after ``after``, in UTC (walked like :func:`fire_times`)."""
    _check_aware("after", after)
    previous: dt.datetime | None = None
    start = after.astimezone(dt.UTC) - _WALK_BACK
    for _ in range(MAX_FIRE_TIMES):
        fire = trigger.get_next_fire_time(previous, start)
        if fire is None or fire > after:
            return None if fire is None else fire.astimezone(dt.UTC)
        previous, start = fire, fire.astimezone(dt.UTC) + _TICK
    return None


def due_fire_time(
    trigger: BaseTrigger, now: dt.datetime, grace: dt.timedelta
) -> dt.datetime | None:
    """The latest fire time in ``[now - grace, now]``: the run a job firing at ``now`` is for.

    APScheduler does not tell a job its scheduled time, but with ``coalesce=True`` the run it
    starts is always the latest one due, and it never starts one older than the grace window.
    """
    times = fire_times(trigger, now - grace - _TICK, now)
    return times[-1] if times else None


def describe(fire_time: dt.datetime, zone: ZoneInfo) -> str:
    """``Mon 23 Nov 09:00 EST``: how App Home and status show a next run."""
    local = fire_time.astimezone(zone)
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


def _check_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(
            f"The '{name}' parameter must be an aware datetime (naive times are read in the "
            f"host's zone). Got {value!r} instead."
        )
