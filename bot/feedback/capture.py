"""Saving one answer within Slack's 3 s, and saying honestly when it could not be saved.

Why a deadline around the write: a Redis that refuses connections fails fast, but one that
stops answering makes each attempt wait for the socket timeout, and redis-py retries; inline,
the click would miss Slack's 3 s and the user would see Slack's own error instead of ours. The
write runs on a small pool and the listener waits at most :data:`DEADLINE_S`; past that the
user is told the save is unconfirmed and that clicking again is safe (the idempotency key
makes a repeat count once, whether or not the first write landed).
"""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from bot.deps import Deps
from bot.feedback.events import Correction, FeedbackEvent, Kind, idempotency_key
from bot.feedback.store import FeedbackStore, MessageRef, Recorded
from bot.render.feedback import FeedbackRef
from bot.state import SnapshotNotFound
from models.errors import ChurnbotError

log = logging.getLogger(__name__)
#: How long a click waits for its write: well inside Slack's 3 s, with room for the answer.
DEADLINE_S = 2.0


@dataclass(frozen=True)
class Saved:
    """``saved``: stored (or stored before, by the same click); ``not_saved``: the store said
    no; ``unconfirmed``: no answer within the deadline."""

    status: Literal["saved", "not_saved", "unconfirmed"]
    recorded: Recorded | None = None


def stored_card(deps: Deps, ref: FeedbackRef) -> dict[str, Any] | None:
    """The card the CSM saw, if its snapshot is still stored."""
    try:
        return deps.store.card(ref.account_id, snapshot_id=ref.snapshot_id)
    except SnapshotNotFound:
        return None


class Recorder:
    """Builds events for one app and writes them within the deadline."""

    def __init__(
        self,
        deps: Deps,
        store: FeedbackStore,
        secret: bytes,
        *,
        executor: ThreadPoolExecutor,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        self._deps = deps
        self._store = store
        self._secret = secret
        self._executor = executor
        self._deadline_s = deadline_s

    def event(
        self,
        kind: Kind,
        ref: FeedbackRef,
        user: str,
        *,
        card: Mapping[str, Any] | None,
        correction: Correction | None = None,
        once_per: tuple[str, ...] = (),
    ) -> FeedbackEvent:
        """The event of ``user``'s answer. Its idempotency key is (user, account, snapshot,
        kind) plus ``once_per``: not the click's ``action_ts``, which differs between a double
        click and between two tabs, both of which must count once."""
        return FeedbackEvent(
            event_id=uuid.uuid4().hex,
            idem=idempotency_key(
                self._secret, user, ref.account_id, ref.snapshot_id, kind, *once_per
            ),
            kind=kind,
            ref=ref,
            at=self._deps.clock(),
            segment=str((card or {}).get("segment") or ""),
            as_of=str((card or {}).get("as_of") or ""),
            correction=correction,
        )

    def save(
        self,
        build: Callable[[], FeedbackEvent],
        user: str,
        message: MessageRef | None,
    ) -> Saved:
        """Build (which may read the snapshot) and record the event, within the deadline."""

        def write() -> Recorded:
            return self._store.record(build(), user=user, message=message)

        future = self._executor.submit(write)
        try:
            return Saved("saved", future.result(timeout=self._deadline_s))
        except concurrent.futures.TimeoutError:
            log.warning("feedback write took longer than %.1f s; told the user", self._deadline_s)
            return Saved("unconfirmed")
        except ChurnbotError as exc:
            log.warning("feedback not saved: %s", exc)
            return Saved("not_saved")
