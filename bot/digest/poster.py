"""One digest run, exactly once per channel and period: claim, plan, post, record, finish.

The sequence (records in :mod:`bot.digest.claims`):

1. **Claim** the slot (channel + period). Finished already: nothing to do. Held by a live
   runner: report ``busy`` with the time its lease has left, so the caller can retry then.
   What a plan reads (the kill switch, the snapshot it serves, the channel's top rows) is
   read in the same round trip, after the claim, and used only if a plan is to be made.
2. **Plan** once: a slot nobody started is skipped if it is later than the grace window;
   otherwise the messages are composed from the serving snapshot (live, or last good with the
   banner while the kill switch is on) and stored before anything is posted. A run that picks
   up a started slot posts the stored plan, so the parts always belong to one digest.
3. **Post** the parts in order, the first in the channel and the rest as replies in its thread
   (the channel gets one digest, its continuation one click away and never interleaved with
   other messages). Before each part the record says ``pending`` (written with the plan's
   save or the previous part's ``ts``, not in a call of its own); after it, the part's ``ts``.
   A part still ``pending`` when a run resumes is looked up in Slack before it is posted.
   **The kill switch is read before every part** (in the same round trip as that write, a
   pipeline that reads it after the write): a plan made while it was off is made again
   on the last good snapshot, with the banner, and the parts already posted are edited into
   it (``chat.update``), so no part shows live scores without the banner once the switch is on.
4. **Finish**: the record is closed, the claim dropped, the shown risks kept for next time's
   "new" and "moved sharply" marks, and the audit log says what happened. What the digest
   showed (the exposures) goes first; the audit entry and the take of a Slack outage record
   after, in the same round trip as the finish (an entry sent with a finish that came after
   the lease is taken back: the run holding the slot writes its own).

So a digest of one part costs three Redis round trips (claim and reads; plan and switch;
finish and the rest), and each further part one more (its ``ts`` and the switch).

A channel the bot cannot post to ends the slot as ``failed`` and tells the admins. Slack being
down beyond the sender's budget leaves the slot open with a later ``retry_at`` (5 min, then
doubling up to an hour), logged at error level and counted; the worker's resume job tries again
then, until the digest's period ends (its next scheduled run), when the slot is closed as
failed. The first run that posts after such failures tells the admins, once, what Slack held up.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.deps import Deps
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.claims import ClaimLost, SlotClaims, SlotRecord
from bot.digest.compose import DigestPlan, plan_now, queue_first_read
from bot.digest.exposures import ExposureLog
from bot.digest.holdout import NO_HOLDOUT, Holdout, current_holdout
from bot.digest.metrics import WorkerMetrics
from bot.digest.sender import (
    ChannelUnavailable,
    DigestSender,
    DigestSendError,
    PartMarker,
    SendGaveUp,
)
from bot.digest.slots import Slot, due_fire_time, manual_slot, next_fire_time, scheduled_slot
from bot.feedback.track_record import track_summary
from bot.notify import notify_admins
from bot.state.audit import AuditLog
from bot.state.killswitch import KillSwitchState, state_from
from models.errors import ChurnbotError
from models.spec import ProductSpec
from models.track_record import TrackRecord

if TYPE_CHECKING:  # the snapshot store needs numpy, loaded when a digest first reads cards
    from redis.client import Pipeline

    from bot.state import KillSwitch, SnapshotStore
    from bot.state.snapshots import ServingTop

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
#: When Slack stays down beyond the sender's budget, try the slot again this much later...
RETRY_AFTER_FAILURE = dt.timedelta(minutes=5)
#: ... doubling after every further failure, up to this.
MAX_RETRY_INTERVAL = dt.timedelta(hours=1)
#: How long the holdout and track record read for one run serve its other digests (a slot
#: resumed later reads them again).
RUN_SETTINGS_FOR = dt.timedelta(minutes=1)
#: A run's holdout and track record (:class:`_RunSettings`).
_Settings = tuple[Holdout, TrackRecord | None]

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
        metrics: WorkerMetrics | None = None,
        owner_users: Mapping[str, str] | None = None,
        track_record: Callable[[], TrackRecord | None] | None = None,
        holdout: Callable[[], Holdout] = lambda: NO_HOLDOUT,
        exposures: ExposureLog | None = None,
    ) -> None:
        self._owner_users = owner_users or {}
        self._exposures = exposures
        self._claims = claims
        self._sender = sender
        self._store = store
        self._switch = switch
        self._audit = audit
        self._spec = spec
        self._channels = channels
        self._clock = clock
        self._notify = notify
        self._metrics = metrics
        self._run_settings = _RunSettings(holdout, track_record)

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
        outcome = self.run_due(digest)
        if outcome is None:
            log.warning(
                "digest %s fired at %s with no scheduled time in the grace window",
                digest.name,
                self._clock().isoformat(),
            )
        return outcome

    def run_due(
        self, digest: DigestConfig, *, unless: Collection[dt.datetime] = ()
    ) -> Outcome | None:
        """The run of the latest fire time within the grace window; None if there is none,
        or it is one of ``unless`` (open slots that wait for their retry time)."""
        due = due_fire_time(digest.trigger(), self._clock(), self.grace)
        if due is None or due in unless:
            return None
        return self.run(digest, due)

    def run_now(self, digest: DigestConfig, *, who: str) -> Outcome:
        """``/churn-admin digest now``: a run outside the schedule, once per minute."""
        return self._run(
            digest, manual_slot(digest.name, digest.channel, digest.zone, self._clock()), who
        )

    def open_slots(
        self, digest: DigestConfig, *, due: bool = False
    ) -> list[tuple[dt.datetime, bool]]:
        """(scheduled time, manual) of the digest's started, unfinished slots; with ``due``,
        only those whose retry time (if Slack made them wait) has come."""
        return self._claims.open_slots(
            digest.name, digest.channel, due_by=self._clock() if due else None
        )

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
        # The holder's token: 32 random hex digits, the shape uuid4().hex had, without making
        # a UUID object of them (which cost 4x as much; every run makes a token).
        token = secrets.token_hex(16)
        # Before the claim: the plan's reads go out with it, and how many rows they take
        # depends on the holdout (read once per run, so this is no round trip of its own).
        settings = self._run_settings.of(slot, self._clock())
        claim, read = self._claims.claim_and_read(
            slot,
            token,
            lambda pipe: queue_first_read(pipe, self._store, self._switch, digest, settings[0]),
        )
        if claim.status == "finished":
            log.info("digest %s %s already %s", digest.name, slot.id, claim.record.state)
            return Outcome("already_done", slot, tuple(_ordered(claim.record)), claim.record.state)
        if claim.status == "busy":
            log.info("digest %s %s is being posted by another run", digest.name, slot.id)
            return Outcome("busy", slot, retry_in=(claim.retry_in or 0) + 1)
        record = claim.record
        try:
            if record.failures and self._period_over(digest, slot):
                return self._period_ended(digest, slot, token, who, record)
            outcome = self._run_claimed(
                digest, slot, token, record, who, claim.previous, settings, read
            )
        except ChannelUnavailable as exc:
            return self._give_up(digest, slot, token, who, exc, "channel_unavailable")
        except SendGaveUp as exc:
            return self._postpone(digest, slot, token, who, exc, record)
        except DigestSendError as exc:
            return self._give_up(digest, slot, token, who, exc, "failed")
        except ClaimLost as exc:
            log.warning("%s", exc)
            if exc.outage is not None:  # taken with a finish that came too late: still true
                self._slack_answers_again(exc.outage)
            return Outcome("busy", slot, reason=str(exc), retry_in=1.0)
        except Exception:
            with suppress(ChurnbotError):  # Redis may be what failed; the lease then expires
                self._claims.release(slot, token)
            raise
        return outcome

    def _run_claimed(
        self,
        digest: DigestConfig,
        slot: Slot,
        token: str,
        record: SlotRecord,
        who: str,
        previous: Mapping[str, float] | None,
        settings: _Settings,
        read: Callable[[], ServingTop],
    ) -> Outcome:
        """Post the slot's plan (made now if there is none yet); ``previous``: the risks the
        channel's last digest showed, and ``read``: what a plan reads first, made with the
        run's ``settings``, both read with the claim."""
        plan = record.plan
        if plan is None:
            now = self._clock()
            if not slot.manual and now - slot.scheduled_at > self.grace:
                reason = self._late_reason(slot, "the worker was down or busy")
                self._claims.finish(slot, token, state="skipped", at=now, reason=reason)
                self._skipped(digest, slot, reason, who)
                return Outcome("skipped", slot, reason=reason)
            plan = self._plan(digest, slot, previous, settings=settings, read=read())
            switch = self._claims.save_plan(
                slot, token, plan, at=now, who=who, begin=1, and_read=self._switch.key
            )
            begun: int | None = 1
            known: KillSwitchState | None = state_from(switch)
        else:
            begun = known = None
        plan, ts, last_part = self._post_parts(
            digest, slot, token, plan, record, previous, begun=begun, switch=known
        )
        now = self._clock()
        exposures = self._exposures

        def audit(pipe: Pipeline) -> None:
            self._record(
                who,
                "digest posted",
                slot.key,
                "done",
                digest,
                slot,
                pipe=pipe,
                parts=len(ts),
                ts=ts,
                snapshot_id=plan.snapshot_id,
                fallback=plan.banner is not None,
            )

        try:
            outage = self._claims.finish(
                slot,
                token,
                state="done",
                at=now,
                shown=plan,
                last_part=last_part,
                # before finishing, in the same round trip: a resumed run records them again
                first=None
                if exposures is None
                else lambda pipe: exposures.record(
                    digest.name, plan.exposures, at=now, pipe=pipe, encoded=plan.exposures_json
                ),
                then=audit,  # right after it: true only if the finish is
                outage_note=(
                    f"posted late, after {record.failures} failed run(s)"
                    if record.failures
                    else None
                ),
                take_outage=True,
            )
        except ClaimLost as lost:  # the run that holds the slot now writes the entry
            with suppress(ChurnbotError):  # Redis may be what failed: then the entry stays
                for entry_id in lost.then:
                    self._audit.withdraw(entry_id)
            raise
        log.info("digest %s posted to %s (%s part(s))", digest.name, digest.channel, len(ts))
        self._count("posted")
        self._slack_answers_again(outage)
        return Outcome("posted", slot, tuple(ts))

    def _plan(
        self,
        digest: DigestConfig,
        slot: Slot,
        previous: Mapping[str, float] | None,
        *,
        settings: _Settings | None = None,
        read: ServingTop | None = None,
    ) -> DigestPlan:
        """The plan of ``digest`` now; ``read``: what it reads first, as read with the claim
        under the run's ``settings`` (a plan made again reads both afresh)."""
        holdout, track_record = settings or self._run_settings.of(slot, self._clock())
        return plan_now(
            self._store,
            self._switch,
            self._spec,
            digest,
            previous,
            moved_sharply=self._channels.moved_sharply,
            now=self._clock(),
            owner_users=self._owner_users,
            holdout=holdout,
            track_record=track_record,
            read=read,
        )

    def _post_parts(
        self,
        digest: DigestConfig,
        slot: Slot,
        token: str,
        plan: DigestPlan,
        record: SlotRecord,
        previous: Mapping[str, float] | None,
        *,
        begun: int | None = None,
        switch: KillSwitchState | None = None,
    ) -> tuple[DigestPlan, list[str], tuple[int, str] | None]:
        """Post what is left of ``plan`` (re-made if the kill switch went on); return the plan
        that went out, the ``ts`` of its parts, and (part, ts) of the last part if this run
        posted it: that one is recorded with the finish, in the same Redis call (until then
        the record says it is pending, so a run that takes over looks it up first).

        ``begun``: the part this run's last write already marked pending (the plan's save, or
        the previous part's record), so it is not marked again in a call of its own; the
        kill switch is still read before every part, in the same round trip as that write when
        there is one (``switch``: what the plan's save read)."""
        posted = dict(record.ts)
        stale = set(record.stale)

        def keepalive(seconds: float) -> None:
            self._claims.renew(slot, token, seconds)

        pending = record.pending
        if pending is not None and pending not in posted:  # the previous holder died around it
            found = self._sender.find(
                digest.channel,
                PartMarker(slot.id, pending, len(plan.messages)),
                thread_ts=posted.get(1) if pending > 1 else None,
                keepalive=keepalive,
            )
            if found is not None:
                self._claims.record_part(slot, token, pending, found)
                posted[pending] = found
        while True:
            if stale:
                self._edit_stale(digest, slot, token, plan, posted, stale, keepalive)
                switch = None  # read again after the edits
            todo = [part for part in range(1, len(plan.messages) + 1) if part not in posted]
            if not todo:
                return plan, [posted[part] for part in range(1, len(plan.messages) + 1)], None
            state, switch = switch or self._switch.state(), None
            if not plan.paused and state.on:
                # made again on the last good snapshot, with the banner
                plan = self._plan(digest, slot, previous)
                self._claims.replace_plan(slot, token, plan, posted=posted.keys())
                stale = set(posted)
                begun = None  # the new plan's write cleared the pending mark
                log.warning(
                    "digest %s %s: the kill switch went on while it was being posted; the rest "
                    "comes from the last good scores and %s posted part(s) are edited to match",
                    digest.name,
                    slot.id,
                    len(stale),
                )
                continue
            part = todo[0]
            if begun != part:
                self._claims.begin_part(slot, token, part)
            ts = self._sender.post(
                digest.channel,
                plan.messages[part - 1],
                PartMarker(slot.id, part, len(plan.messages)),
                thread_ts=posted[1] if part > 1 else None,
                keepalive=keepalive,
            )
            posted[part] = ts
            if len(todo) == 1:  # the last one: nothing is edited after it (stale is empty)
                ts_all = [posted[n] for n in range(1, len(plan.messages) + 1)]
                return plan, ts_all, (part, ts)
            begun = todo[1]
            switch = state_from(
                self._claims.record_part(
                    slot, token, part, ts, begin=begun, and_read=self._switch.key
                )
            )

    def _edit_stale(
        self,
        digest: DigestConfig,
        slot: Slot,
        token: str,
        plan: DigestPlan,
        posted: dict[int, str],
        stale: set[int],
        keepalive: Callable[[float], None],
    ) -> None:
        """Turn parts posted from an earlier plan into the current plan's (a shorter plan
        removes the extra ones)."""
        total = len(plan.messages)
        for part in sorted(stale):
            if part <= total:
                marker = PartMarker(slot.id, part, total)
                self._sender.update(
                    digest.channel,
                    posted[part],
                    plan.messages[part - 1],
                    marker,
                    keepalive=keepalive,
                )
                self._claims.record_edit(slot, token, part, deleted=False)
            else:
                self._sender.delete(digest.channel, posted[part], keepalive=keepalive)
                self._claims.record_edit(slot, token, part, deleted=True)
                del posted[part]
            stale.discard(part)

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
        self._count("failed")
        return Outcome(status, slot, reason=str(error))

    def _period_end(self, digest: DigestConfig, slot: Slot) -> dt.datetime | None:
        """When the slot's digest is replaced by the next scheduled one."""
        return next_fire_time(digest.trigger(), slot.scheduled_at)

    def _period_over(self, digest: DigestConfig, slot: Slot) -> bool:
        end = self._period_end(digest, slot)
        return end is not None and self._clock() >= end

    def _postpone(
        self,
        digest: DigestConfig,
        slot: Slot,
        token: str,
        who: str,
        error: SendGaveUp,
        record: SlotRecord,
    ) -> Outcome:
        """Slack kept failing: try again later, slower each time, until the period ends."""
        now = self._clock()
        failures = record.failures + 1
        wait = min(RETRY_AFTER_FAILURE * 2 ** (failures - 1), MAX_RETRY_INTERVAL)
        end = self._period_end(digest, slot)
        retry_at = now + wait if end is None else min(now + wait, end)
        self._claims.postpone(slot, token, failures=failures, retry_at=retry_at)
        self._claims.outage_started(slot, at=now, state="still being retried")
        log.error(
            "digest %s %s not posted: Slack keeps failing (%s); %s failed run(s), next try at "
            "%s, given up when its period ends at %s",
            digest.name,
            slot.id,
            error,
            failures,
            retry_at.isoformat(),
            end.isoformat() if end else "never",
        )
        self._record(who, "digest delayed", str(error), "failed", digest, slot, failures=failures)
        self._count("delayed")
        if self._metrics is not None:
            self._metrics.slack_failing.set(1)
        return Outcome("failed", slot, reason=str(error), retry_in=(retry_at - now).total_seconds())

    def _period_ended(
        self, digest: DigestConfig, slot: Slot, token: str, who: str, record: SlotRecord
    ) -> Outcome:
        """Slack failed the slot until the next digest was due: close it for good."""
        reason = (
            f"Slack kept failing through the whole period ({record.failures} failed run(s)); "
            "the next scheduled digest replaces it"
        )
        self._claims.finish(slot, token, state="failed", at=self._clock(), reason=reason)
        self._claims.outage_note(slot, "not posted: Slack failed until its next run was due")
        log.error("digest %s %s not posted: %s", digest.name, slot.id, reason)
        self._record(who, "digest failed", reason, "failed", digest, slot)
        self._count("failed")
        return Outcome("failed", slot, reason=reason)

    def _slack_answers_again(self, outage: dict[str, str] | None) -> None:
        """After a post: if Slack had been failing, tell the admins once what it held up
        (``outage``: the record this run's finish took; only one run takes it)."""
        if self._metrics is not None:
            self._metrics.slack_failing.set(0)
        if outage is None:
            return
        since = outage.pop("since", "")
        lines = [
            f"• *{key.split(':', 2)[1]}* ({key.split(':', 2)[2]}): {state}"
            for key, state in sorted(outage.items())
            if key.startswith("slot:")
        ]
        log.warning("Slack answers again (failing since %s): %s", since, "; ".join(lines))
        self._notify(
            ":white_check_mark: Slack is answering the churn digest worker again (it kept "
            f"failing from {since} on). Digests it held up:\n" + "\n".join(lines)
        )

    def _skipped(self, digest: DigestConfig, slot: Slot, reason: str, who: str) -> None:
        log.warning("digest %s %s skipped: %s", digest.name, slot.id, reason)
        self._count("skipped")
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
        *,
        pipe: Pipeline | None = None,
        **detail: Any,
    ) -> None:
        self._audit.record(
            who=who,
            what=what,
            why=why,
            outcome=outcome,
            detail={"digest": digest.name, "channel": digest.channel, "slot": slot.id, **detail},
            pipe=pipe,
        )

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.digest_runs[outcome].inc()


class _RunSettings:
    """The holdout and the track record of one run, read by its first digest and shared by
    the others: a run posts every digest of one scheduled time (500 channels at Monday 09:00
    are 500 jobs), and both are the same for all of them. One run then applies one holdout,
    and each digest makes two Redis round trips fewer. Read again for another scheduled time,
    or :data:`RUN_SETTINGS_FOR` after they were read (a slot resumed later sees the settings
    in force then). Thread-safe: the scheduler runs digests on a pool of threads."""

    def __init__(
        self,
        holdout: Callable[[], Holdout],
        track_record: Callable[[], TrackRecord | None] | None,
    ) -> None:
        self._holdout = holdout
        self._track_record = track_record
        self._lock = threading.Lock()
        self._read: tuple[dt.datetime, dt.datetime, Holdout, TrackRecord | None] | None = None

    def of(self, slot: Slot, now: dt.datetime) -> _Settings:
        with self._lock:
            read = self._read
            if read is None or read[0] != slot.scheduled_at or now - read[1] >= RUN_SETTINGS_FOR:
                track = self._track_record() if self._track_record else None
                read = self._read = (slot.scheduled_at, now, self._holdout(), track)
            return read[2], read[3]


def _ordered(record: SlotRecord) -> list[str]:
    return [record.ts[part] for part in sorted(record.ts)]


def _minutes(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def build_poster(
    deps: Deps, sender: DigestSender, *, metrics: WorkerMetrics | None = None
) -> DigestPoster:
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
        metrics=metrics,
        owner_users=settings.slack.owner_users,
        holdout=lambda: current_holdout(deps),
        track_record=lambda: track_summary(deps).record,
        exposures=ExposureLog(deps.redis, prefix=deps.prefix),
    )
