"""Which scores a user sees right now, and how honest to be about them.

Live scores when the kill switch is off and the snapshot is within the freshness SLA; otherwise
the scores served (the last known good snapshot while the switch is on) come with a banner that
says how old they really are and why; an honest message when there is nothing good to show.
Every surface (card, pick list, ``/churn mine``, digest, home) asks here.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.render import fallback_banner
from bot.state.killswitch import KillSwitch, KillSwitchState, serving_snapshot
from models.spec import ProductSpec

if TYPE_CHECKING:  # the snapshot store needs numpy, loaded when a worker first reads a card
    from bot.state.snapshots import SnapshotMeta, SnapshotStore


@dataclass(frozen=True)
class Serving:
    meta: SnapshotMeta | None
    switch: KillSwitchState
    banner: str | None
    freshness: str
    unavailable: str | None  # why nothing can be shown, when meta is None


def current(
    store: SnapshotStore, switch: KillSwitch, spec: ProductSpec, now: dt.datetime
) -> Serving:
    """What readers see now (one Redis call: the switch and the snapshot it points to)."""
    meta, state = serving_snapshot(store, switch)
    return serving_of(meta, state, spec, now)


def serving_of(
    meta: SnapshotMeta | None, state: KillSwitchState, spec: ProductSpec, now: dt.datetime
) -> Serving:
    """The banner and freshness line for ``meta`` as chosen by the switch in ``state`` (for
    a caller that read both along with its own data, such as `/churn`)."""
    if meta is None:
        why = state.reason if state.on else "no scores have been published yet"
        return Serving(
            None,
            state,
            None,
            "",
            f"No trustworthy churn scores to show right now ({why}). "
            "An admin has been told; scores return after the next good scoring run.",
        )
    created, freshness = _scored(meta.as_of, meta.created_at)
    age_hours = (now - created).total_seconds() / 3600
    banner = None
    if state.on:
        banner = fallback_banner(created, now, f"live scores are paused: {state.reason}")
    elif age_hours > spec.freshness_sla_hours:
        banner = fallback_banner(
            created,
            now,
            f"no scoring run in the last {spec.freshness_sla_hours:g} hours "
            f"(last one {age_hours:.0f} hours ago)",
        )
    return Serving(meta, state, banner, freshness, None)


@functools.lru_cache(maxsize=64)
def _scored(as_of: str, created_at: str) -> tuple[dt.datetime, str]:
    """When a snapshot was scored and the freshness line that says so, parsed and formatted
    once per snapshot: every digest and `/churn` answer of it asks, and parsing the ISO
    timestamp and formatting it through strftime cost ~20K instructions each time."""
    created = dt.datetime.fromisoformat(created_at)
    return created, f"Data as of {as_of} · scored {created:%Y-%m-%d %H:%M} UTC"
