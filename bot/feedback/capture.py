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
from bot.feedback.refresh import Redraw
from bot.feedback.store import FeedbackStore, MessageRef, Recorded
from bot.render.feedback import FeedbackKey, FeedbackRef
from bot.render.text import escape_mrkdwn
from bot.state import SnapshotNotFound
from bot.state.deadline import capped
from models.errors import ChurnbotError

log = logging.getLogger(__name__)
#: How long a click waits for its write: well inside Slack's 3 s, with room for the answer.
DEADLINE_S = 2.0


@dataclass(frozen=True)
class Saved:
    """``saved``: stored (or stored before, by the same click); ``not_saved``: the store said
    no; ``unconfirmed``: no answer within the deadline; ``gone``: the score the button refers
    to is no longer stored, so the answer cannot be tied to it (``detail`` says so)."""

    status: Literal["saved", "not_saved", "unconfirmed", "gone"]
    recorded: Recorded | None = None
    event: FeedbackEvent | None = None
    detail: str = ""


class ScoreGone(ChurnbotError):
    """A button's snapshot, or its account in it, is no longer stored (retention deleted it)."""


def stored_card(deps: Deps, ref: FeedbackRef | FeedbackKey) -> dict[str, Any] | None:
    """The card the CSM saw, if its snapshot is still stored."""
    try:
        return deps.store.card(ref.account_id, snapshot_id=ref.snapshot_id)
    except SnapshotNotFound:
        return None


def resolve_button(
    deps: Deps, button: FeedbackKey | FeedbackRef
) -> tuple[FeedbackRef, dict[str, Any] | None]:
    """The score a clicked button refers to, and the card the CSM saw.

    A short key is read back from its snapshot (ScoreGone when it is gone: without it the
    model version and the risk shown are unknown). An older button's full reference stands
    on its own; its card may be gone (None).
    """
    if isinstance(button, FeedbackRef):
        return button, stored_card(deps, button)
    card = stored_card(deps, button)
    if card is None:
        account, snapshot = escape_mrkdwn(button.account_id), escape_mrkdwn(button.snapshot_id)
        raise ScoreGone(
            f"⚠️ The scores this button refers to (account {account} in snapshot {snapshot}) "
            "are no longer kept, so an answer cannot be tied to the score you saw, and nothing "
            f"was saved. Ask for the account again with `/churn {account}` and answer on "
            "today's card."
        )
    return button.ref(card), card


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

    def button_event(
        self, kind: Kind, button: FeedbackKey | FeedbackRef, user: str
    ) -> FeedbackEvent:
        """The event of ``user``'s click on ``button``, its score read back from the
        snapshot (ScoreGone when that is no longer stored)."""
        ref, card = resolve_button(self._deps, button)
        return self.event(kind, ref, user, card=card)

    def save(
        self,
        build: Callable[[], FeedbackEvent],
        user: str,
        message: MessageRef | None,
        redraw: Redraw | None = None,
    ) -> Saved:
        """Build (which may read the snapshot) and record the event, within the deadline;
        with ``redraw``, the message's refresh is queued in the same step (nothing is left
        to do in this process once the click is acknowledged)."""
        body = redraw.body() if redraw else ""

        def write() -> tuple[FeedbackEvent, Recorded]:
            event = build()
            job = redraw.job(event, message).encode() if redraw else ""
            recorded = self._store.record(
                event, user=user, message=message, refresh=job, message_body=body
            )
            return event, recorded

        future = self._executor.submit(write)
        try:
            # Within the request's own Redis budget too, when it has one (bot.web).
            event, recorded = future.result(timeout=capped(self._deadline_s))
            return Saved("saved", recorded, event)
        except concurrent.futures.TimeoutError:
            log.warning("feedback write took longer than %.1f s; told the user", self._deadline_s)
            return Saved("unconfirmed")
        except ScoreGone as exc:
            log.info("feedback on a score no longer stored: %s", exc)
            return Saved("gone", detail=str(exc))
        except ChurnbotError as exc:
            log.warning("feedback not saved: %s", exc)
            return Saved("not_saved")
