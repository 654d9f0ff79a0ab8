"""The next digest runs, written by the worker and read by the web process.

Why a Redis key and not the job store: the job store holds pickled jobs that only the worker
can (and should) unpickle; App Home and ``/churn-admin status`` need two strings per digest.
The worker rewrites the whole list after every change, so a removed digest disappears too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import redis

from bot.digest.channels import DigestConfig
from bot.digest.slots import describe
from bot.state.store import translate_errors


def upcoming_key(prefix: str) -> str:
    return f"{prefix}:{{scheduler}}:upcoming"


def record_upcoming(
    r: redis.Redis, prefix: str, runs: Iterable[tuple[DigestConfig, dt.datetime]]
) -> None:
    """Store (digest, next run time) pairs, soonest first, as display strings."""
    ordered = sorted(runs, key=lambda run: run[1])
    rows = [[f"{d.name} → {d.channel}", describe(when, d.zone)] for d, when in ordered]
    with translate_errors(r):
        r.set(upcoming_key(prefix), json.dumps(rows, ensure_ascii=False))


def read_upcoming(r: redis.Redis, prefix: str) -> list[tuple[str, str]]:
    """(digest and channel, when) of the next runs, soonest first; empty with no worker."""
    with translate_errors(r):
        raw = r.get(upcoming_key(prefix))
    return [] if raw is None else [(label, when) for label, when in json.loads(raw)]
