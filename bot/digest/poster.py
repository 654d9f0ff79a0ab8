"""One digest run, exactly once per channel and period: claim, plan, post, record, finish.

The sequence (records in :mod:`bot.digest.claims`):

1. **Claim** the slot (channel + period). Finished already: nothing to do. Held by a live
   runner: report ``busy`` with the time its lease has left, so the caller can retry then.
2. **Plan** once: a slot nobody started is skipped if it is later than the grace window;
   otherwise the messages are composed from the serving snapshot (live, or last good with the
   banner while the kill switch is on) and stored before anything is posted. A run that picks
   up a started slot posts the stored plan, so the parts always belong to one digest.
3. **Post** the parts in order, the first in the channel and the rest as replies in its thread
   (the channel gets one digest, its continuation one click away and never interleaved with
   other messages). Before each part the record says ``pending``; after it, the part's ``ts``.
   A part still ``pending`` when a run resumes is looked up in Slack before it is posted.
4. **Finish**: the record is closed, the claim dropped, the shown risks kept for next time's
   "new" and "moved sharply" marks, and the audit log says what happened.

A channel the bot cannot post to ends the slot as ``failed`` and tells the admins; Slack being
down beyond the retry budget leaves the slot resumable and asks for a retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from bot.deps import Deps
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.claims import ClaimLost, SlotClaims, SlotRecord
from bot.digest.compose import DigestPlan, plan_now
from bot.digest.sender import (
    ChannelUnavailable,
    DigestSender,
    DigestSendError,
    PartMarker,
    SendGaveUp,
)
from bot.digest.slots import Slot, due_fire_time, manual_slot, scheduled_slot
from bot.notify import notify_admins
from bot.state import KillSwitch, SnapshotStore
from bot.state.audit import AuditLog
from models.errors import ChurnbotError
from models.spec import ProductSpec

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
#: When Slack stays down beyond the sender's budget, try the slot again this much later.
RETRY_AFTER_FAILURE = dt.timedelta(minutes=5)

Status = Literal["posted", "already_done", "busy", "skipped", "failed", "channel_unavailable"]


@dataclass(frozen=True)
class Outcome:
    """What a run did. ``retry_in`` (seconds) is set when the slot should be tried again."""

    status: Status
    slot: Slot
    ts: tuple[str, ...] = ()
    reason: str = ""
    retry_in: float | None = None


class DigestPoster:
    """Runs digests exactly once; every collaborator is injected (clock included)."""

    def __init__(
        self,
        *,
        claims: SlotClaims,
        sender: DigestSender,
        store: SnapshotStore,
        switch: KillSwitch,
        audit: AuditLog,
        spec: ProductSpec,
        channels: ChannelsConfig,
        clock: Callable[[], dt.datetime],
        notify: Callable[[str], None],
    ) -> None:
        self._claims = claims
        self._sender = sender
        self._store = store
        self._switch = switch
        self._audit = audit
        self._spec = spec
        self._channels = channels
        self._clock = clock
        self._notify = notify

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._channels.grace_seconds)

    # --- entry points -------------------------------------------------------------------------

    def run(
        self, digest: DigestConfig, scheduled_at: dt.datetime, *, manual: bool = False
    ) -> Outcome:
        """The run of ``digest`` scheduled at ``scheduled_at`` (a job, a retry, a test);
        ``manual`` takes up a ``digest now`` slot of that minute again."""
        make = manual_slot if manual else scheduled_slot
        return self._run(
            digest, make(digest.name, digest.channel, digest.zone, scheduled_at), SCHEDULER
        )

    def fire(self, digest: DigestConfig) -> Outcome | None:
        """What a scheduler job calls: the run of the latest fire time within the grace window
        (APScheduler does not pass a job its scheduled time; with coalescing it is this one)."""
        now = self._clock()
        due = due_fire_time(digest.trigger(), now, self.grace)
        if due is None:
            log.warning(
                "digest %s fired at %s with no scheduled time in the grace window",
                digest.name,
                now.isoformat(),
            )
            return None
        return self.run(digest, due)

    def run_now(self, digest: DigestConfig, *, who: str) -> Outcome:
        """``/churn-admin digest now``: a run outside the schedule, once per minute."""
        return self._run(
            digest, manual_slot(digest.name, digest.channel, digest.zone, self._clock()), who
        )

    def open_slots(self, digest: DigestConfig) -> list[tuple[dt.datetime, bool]]:
        """(scheduled time, manual) of the digest's started, unfinished slots."""
        return self._claims.open_slots(digest.name, digest.channel)

    def skip_missed(self, digest: DigestConfig, scheduled_at: dt.datetime, why: str) -> bool:
        """Record a run that will not happen (beyond the grace window); True if newly skipped.
        A run already started or finished is left alone."""
        slot = scheduled_slot(digest.name, digest.channel, digest.zone, scheduled_at)
        reason = self._late_reason(slot, why)
        if not self._claims.skip(slot, reason=reason, at=self._clock()):
            return False
        self._skipped(digest, slot, reason, SCHEDULER)
        return True

    # --- the run ------------------------------------------------------------------------------

    def _run(self, digest: DigestConfig, slot: Slot, who: str) -> Outcome:
        token = uuid.uuid4().hex
        claim = self._claims.claim(slot, token)
        if claim.status == "finished":
            log.info("digest %s %s already %s", digest.name, slot.id, claim.record.state)
            return Outcome("already_done", slot, tuple(_ordered(claim.record)), claim.record.state)
        if claim.status == "busy":
            log.info("digest %s %s is being posted by another run", digest.name, slot.id)
            return Outcome("busy", slot, retry_in=(claim.retry_in or 0) + 1)
        try:
            return self._run_claimed(digest, slot, token, claim.record, who)
        except ChannelUnavailable as exc:
            return self._give_up(digest, slot, token, who, exc, "channel_unavailable")
        except SendGaveUp as exc:
            self._claims.release(slot, token)
            log.warning("digest %s %s postponed: %s", digest.name, slot.id, exc)
            self._record(who, "digest delayed", str(exc), "failed", digest, slot)
            return Outcome(
                "failed", slot, reason=str(exc), retry_in=RETRY_AFTER_FAILURE.total_seconds()
            )
        except DigestSendError as exc:
            return self._give_up(digest, slot, token, who, exc, "failed")
        except ClaimLost as exc:
            log.warning("%s", exc)
            return Outcome("busy", slot, reason=str(exc), retry_in=1.0)
        except Exception:
            with suppress(ChurnbotError):  # Redis may be what failed; the lease then expires
                self._claims.release(slot, token)
            raise

    def _run_claimed(
        self, digest: DigestConfig, slot: Slot, token: str, record: SlotRecord, who: str
    ) -> Outcome:
        plan = record.plan
        if plan is None:
            now = self._clock()
            if not slot.manual and now - slot.scheduled_at > self.grace:
                reason = self._late_reason(slot, "the worker was down or busy")
                self._claims.finish(slot, token, state="skipped", at=now, reason=reason)
                self._skipped(digest, slot, reason, who)
                return Outcome("skipped", slot, reason=reason)
            plan = self._plan(digest)
            self._claims.save_plan(slot, token, plan, at=now, who=who)
        ts = self._post_parts(digest, slot, token, plan, record)
        self._claims.finish(slot, token, state="done", at=self._clock(), shown=plan)
        log.info("digest %s posted to %s (%s part(s))", digest.name, digest.channel, len(ts))
        self._record(
            who,
            "digest posted",
            slot.key,
            "done",
            digest,
            slot,
            parts=len(ts),
            ts=ts,
            snapshot_id=plan.snapshot_id,
            fallback=plan.banner is not None,
        )
        return Outcome("posted", slot, tuple(ts))

    def _plan(self, digest: DigestConfig) -> DigestPlan:
        return plan_now(
            self._store,
            self._switch,
            self._spec,
            digest,
            self._claims.previous(digest.name),
            moved_sharply=self._channels.moved_sharply,
            now=self._clock(),
        )

    def _post_parts(
        self, digest: DigestConfig, slot: Slot, token: str, plan: DigestPlan, record: SlotRecord
    ) -> list[str]:
        posted = dict(record.ts)
        total = len(plan.messages)

        def keepalive(seconds: float) -> None:
            self._claims.renew(slot, token, seconds)

        for part, message in enumerate(plan.messages, start=1):
            if part in posted:
                continue
            marker = PartMarker(slot.id, part, total)
            thread_ts = posted[1] if part > 1 else None
            ts = None
            if record.pending == part:  # the previous holder died around this post
                ts = self._sender.find(
                    digest.channel, marker, thread_ts=thread_ts, keepalive=keepalive
                )
            if ts is None:
                self._claims.begin_part(slot, token, part)
                ts = self._sender.post(
                    digest.channel, message, marker, thread_ts=thread_ts, keepalive=keepalive
                )
            self._claims.record_part(slot, token, part, ts)
            posted[part] = ts
        return [posted[part] for part in range(1, total + 1)]

    # --- outcomes -----------------------------------------------------------------------------

    def _give_up(
        self,
        digest: DigestConfig,
        slot: Slot,
        token: str,
        who: str,
        error: DigestSendError,
        status: Status,
    ) -> Outcome:
        """A problem only a person can fix: close the slot, tell the admins, audit it."""
        self._claims.finish(slot, token, state="failed", at=self._clock(), reason=str(error))
        log.error("digest %s %s not posted: %s", digest.name, slot.id, error)
        self._notify(
            f":warning: The churn digest *{digest.name}* ({slot.key} {digest.timezone}) could "
            f"not be posted to <#{digest.channel}>: {error}"
        )
        self._record(who, "digest failed", str(error), "failed", digest, slot)
        return Outcome(status, slot, reason=str(error))

    def _skipped(self, digest: DigestConfig, slot: Slot, reason: str, who: str) -> None:
        log.warning("digest %s %s skipped: %s", digest.name, slot.id, reason)
        self._record(who, "digest skipped", reason, "skipped", digest, slot)

    def _late_reason(self, slot: Slot, why: str) -> str:
        late = self._clock() - slot.scheduled_at
        return (
            f"due at {slot.key} but {_minutes(late)} late, beyond the "
            f"{_minutes(self.grace)} grace window ({why})"
        )

    def _record(
        self,
        who: str,
        what: str,
        why: str,
        outcome: str,
        digest: DigestConfig,
        slot: Slot,
        **detail: Any,
    ) -> None:
        self._audit.record(
            who=who,
            what=what,
            why=why,
            outcome=outcome,
            detail={"digest": digest.name, "channel": digest.channel, "slot": slot.id, **detail},
        )


def _ordered(record: SlotRecord) -> list[str]:
    return [record.ts[part] for part in sorted(record.ts)]


def _minutes(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def build_poster(deps: Deps, sender: DigestSender) -> DigestPoster:
    """A poster on the app's state, telling admins through the sender's client."""
    settings = deps.settings
    return DigestPoster(
        claims=SlotClaims(deps.redis, prefix=deps.prefix),
        sender=sender,
        store=deps.store,
        switch=deps.switch,
        audit=deps.audit,
        spec=settings.spec,
        channels=settings.channels,
        clock=deps.clock,
        notify=lambda text: notify_admins(deps, sender.client, text),
    )
