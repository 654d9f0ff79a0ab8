"""Saving one answer within Slack's 3 s, and saying honestly when it could not be saved.

Why a deadline around the write: a Redis that refuses connections fails fast, but one that
stops answering makes each attempt wait for the socket timeout, and redis-py retries; unbounded,
the click would miss Slack's 3 s and the user would see Slack's own error instead of ours. The
write runs in the request's thread within :data:`DEADLINE_S` (``bot.state.deadline`` bounds
every Redis call in it); a write that found no answer in that time is reported unconfirmed and
tried again after the answer, and the user is told that clicking again is safe (the
idempotency key makes a repeat count once, whether or not the first write landed).

Why the click costs so little: the card a button refers to is read once per process and kept
(:class:`Cards`; a snapshot never changes once published), and the message a click came from
is kept in Redis once per process and message (:class:`KeptMessages`), so a click usually
costs one Redis call: the script that stores it, queues its refresh and claims the request's
signature (the web door's replay guard, ``bot.state.replay``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
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
from bot.state import replay
from bot.state.deadline import capped, deadline
from bot.state.replay import SignatureReplayed
from models.errors import ChurnbotError

log = logging.getLogger(__name__)
#: How long a click waits for its write: well inside Slack's 3 s, with room for the answer.
DEADLINE_S = 2.0
#: Writes that ran out of time, tried again at once after the answer.
LATE_WRITERS = 2
#: Cards kept per process (about 1 KB each).
CARDS_KEPT = 2_048
#: How long a process trusts that a message it kept is still kept (Redis keeps it for days).
KEEP_MESSAGE_S = 3_600.0


@dataclass(frozen=True)
class Saved:
    """``saved``: stored (or stored before, by the same click); ``not_saved``: the store said
    no; ``unconfirmed``: no answer within the deadline; ``gone``: the score the button refers
    to is no longer stored, so the answer cannot be tied to it (``detail`` says so);
    ``replayed``: the request's signature was used before, nothing was written (the web door
    refuses it)."""

    status: Literal["saved", "not_saved", "unconfirmed", "gone", "replayed"]
    recorded: Recorded | None = None
    event: FeedbackEvent | None = None
    detail: str = ""


class ScoreGone(ChurnbotError):
    """A button's snapshot, or its account in it, is no longer stored (retention deleted it)."""


class Cards:
    """The cards buttons refer to, read from the snapshot store once and then kept (the most
    recent :data:`CARDS_KEPT`): a snapshot never changes once published, and a digest's
    accounts are clicked by a whole channel. A card that is not stored is never kept."""

    def __init__(self, deps: Deps, size: int = CARDS_KEPT) -> None:
        self._deps = deps
        self._size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def get(self, ref: FeedbackRef | FeedbackKey) -> dict[str, Any] | None:
        """The card the CSM saw, if its snapshot is still stored."""
        key = (ref.account_id, ref.snapshot_id)
        with self._lock:
            card = self._kept.get(key)
            if card is not None:
                self._kept.move_to_end(key)
                return card
        from bot.state.snapshots import SnapshotNotFound  # numpy: loaded once the app is served

        try:
            card = self._deps.store.card(ref.account_id, snapshot_id=ref.snapshot_id)
        except SnapshotNotFound:
            return None
        if card is not None:
            with self._lock:
                self._kept[key] = card
                while len(self._kept) > self._size:
                    self._kept.popitem(last=False)
        return card


class KeptMessages:
    """Which messages this process kept in Redis lately (for their refreshes), so the next
    click on one does not send the same message again."""

    def __init__(
        self, *, for_s: float = KEEP_MESSAGE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._for_s = for_s
        self._clock = clock
        self._lock = threading.Lock()
        self._at: dict[MessageRef, float] = {}

    def recent(self, message: MessageRef | None) -> bool:
        if message is None:
            return False
        with self._lock:
            at = self._at.get(message)
        return at is not None and self._clock() - at < self._for_s

    def add(self, message: MessageRef | None) -> None:
        if message is None:
            return
        now = self._clock()
        with self._lock:
            self._at[message] = now
            for old in [m for m, at in self._at.items() if now - at >= self._for_s]:
                del self._at[old]


def resolve_button(
    cards: Cards, button: FeedbackKey | FeedbackRef
) -> tuple[FeedbackRef, dict[str, Any] | None]:
    """The score a clicked button refers to, and the card the CSM saw.

    A short key is read back from its snapshot (ScoreGone when it is gone: without it the
    model version and the risk shown are unknown). An older button's full reference stands
    on its own; its card may be gone (None).
    """
    if isinstance(button, FeedbackRef):
        return button, cards.get(button)
    card = cards.get(button)
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
        deadline_s: float = DEADLINE_S,
    ) -> None:
        self._deps = deps
        self._store = store
        self._secret = secret
        self._deadline_s = deadline_s
        self.cards = Cards(deps)
        self._kept = KeptMessages()
        # Not deps.background: late writes wait on a slow Redis, and must not hold up the
        # notes that tell users their answer was not (surely) saved.
        self._late = ThreadPoolExecutor(max_workers=LATE_WRITERS, thread_name_prefix="late-write")

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
        ref, card = resolve_button(self.cards, button)
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
        body = redraw.body() if redraw and not self._kept.recent(message) else ""
        seen = replay.pending()  # the request's replay guard, claimed by the same script

        def write() -> tuple[FeedbackEvent, Recorded]:
            event = build()
            job = redraw.job(event, message).encode() if redraw else ""
            recorded = self._store.record(
                event, user=user, message=message, refresh=job, message_body=body, seen=seen
            )
            return event, recorded

        budget = capped(self._deadline_s)  # within the request's own Redis budget (bot.web)
        started = time.monotonic()
        try:
            with deadline(budget):
                event, recorded = write()
        except ScoreGone as exc:
            log.info("feedback on a score no longer stored: %s", exc)
            return Saved("gone", detail=str(exc))
        except SignatureReplayed:
            return Saved("replayed")
        except ChurnbotError as exc:
            if time.monotonic() - started < budget:
                log.warning("feedback not saved: %s", exc)
                return Saved("not_saved")
            # No answer in time: the user hears so now, and the write is tried again after
            # the answer, without the deadline (the idempotency key keeps it to one event).
            log.warning("feedback write took longer than %.1f s; told the user", budget)
            self._late.submit(_write_late, write)
            return Saved("unconfirmed")
        if body:
            self._kept.add(message)
        return Saved("saved", recorded, event)


def _write_late(write: Callable[[], object]) -> None:
    """A write that did not answer within a click's deadline, tried again after the answer."""
    try:
        write()
    except ChurnbotError as exc:
        log.warning("a feedback write that ran out of time failed again: %s", exc)
    except SignatureReplayed:
        log.warning("a feedback write that ran out of time was a replayed request")
