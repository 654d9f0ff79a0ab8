"""Drawing the queued refreshes of feedback messages: the worker's side of the refresh queue.

The web process queues a :class:`~bot.feedback.refresh.RefreshJob` with each click (in the
script that stores it); a *drain* reads the queue through a consumer group:

* **Coalesced.** A refresh draws the message from stored state (the message as the last click
  showed it, plus every answer so far), so several clicks on one message need one draw. The
  drain draws a message at most once per :data:`MIN_INTERVAL_S`; clicks that arrive in
  between wait and share the next draw (Slack allows about one update a second anyway).
* **Nothing lost.** An entry is acknowledged (and deleted) only after its draw. If a drain
  dies after reading, its entries stay pending in the group, and any drain claims them again
  once they have been idle for :data:`CLAIM_IDLE_S` (``XAUTOCLAIM``). A draw may then happen
  twice; it is idempotent.
* **Rate limits.** A 429 puts that message back with Slack's ``Retry-After`` and the drain goes
  on with the others; nothing sleeps.

The drain runs in ``churnbot worker``; setups that serve the app with no worker beside it (the
demo, Socket Mode, the tests) start one in process with :func:`running_drain`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.deps import Deps
from bot.digest.sender import _retry_after, build_client
from bot.feedback import feedback_store
from bot.feedback.events import MessageRef
from bot.feedback.refresh import RefreshJob
from bot.feedback.render import recorded_text, with_choices
from bot.feedback.store import FeedbackStore, MessageState
from bot.listeners.churn import card_answer
from bot.serving import current
from bot.state.replies import Entry, entries
from bot.state.store import StoreError, translate_errors
from models.errors import ChurnbotError

log = logging.getLogger(__name__)

GROUP = "refresh"
#: Least time between two draws of one message.
MIN_INTERVAL_S = 1.0
#: A pending entry idle this long belongs to a drain presumed dead, and is claimed again.
CLAIM_IDLE_S = 60.0
#: How often a drain looks for such entries.
CLAIM_EVERY_S = 10.0
#: Entries read at a time.
BATCH = 100
#: Tries of a draw that fails for a reason other than a rate limit, and the pause between.
MAX_ATTEMPTS = 5
RETRY_S = 5.0
#: The longest a drain thread blocks on Redis waiting for new entries (also how long it may
#: take to notice it should stop).
BLOCK_S = 0.1
#: A drain thread's pause after Redis failed it.
ERROR_PAUSE_S = 1.0
#: How long a drain reuses a ``/churn`` card it drew again.
CARD_KEEP_S = 30.0
#: Consumers of dead drains, with nothing pending, are removed from the group after this.
FORGET_CONSUMER_S = 24 * 3600.0


class RetryLater(Exception):
    """A draw that may succeed later: after ``seconds`` (Slack's Retry-After on a 429), or
    after the drain's own pause (None) for a failure that may pass."""

    def __init__(self, reason: str, seconds: float | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds


#: The ``/churn`` card of (account, snapshot) drawn again, if that snapshot is still served.
CardBlocks = Callable[[str, str], list[dict[str, Any]] | None]


class Painter:
    """Draws one message from stored state; raises :class:`RetryLater` when worth retrying."""

    def __init__(self, store: FeedbackStore, client: WebClient, card_blocks: CardBlocks) -> None:
        self._store = store
        self._client = client
        self._card_blocks = card_blocks

    def draw(self, job: RefreshJob, state: MessageState | None, *, anonymous: bool) -> None:
        """Draw ``job``'s message from ``state``, as read for it (None when it has none)."""
        base = state.body if state else None
        blocks = (base or {}).get("blocks")
        if job.ephemeral and not blocks:
            blocks = self._card_blocks(job.account_id, job.snapshot_id)
        if job.message is None or state is None or not blocks:
            # Nothing to redraw: confirm to the clicker in a message of their own.
            self._post(job.response_url, text=recorded_text(job.kind, anonymous=anonymous))
            return
        updated = with_choices(blocks, state.choices)
        text = str((base or {}).get("text") or f"Feedback on {job.account_id}")
        if job.ephemeral:
            self._post(job.response_url, text=text, blocks=updated, replace_original=True)
            return
        try:
            self._client.chat_update(
                channel=job.message.channel, ts=job.message.ts, text=text, blocks=updated
            )
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                raise RetryLater("rate limited", _retry_after(exc.response.headers)) from None
            if exc.response.status_code >= 500:
                raise RetryLater(f"Slack answered {exc.response.status_code}") from None
            log.warning("could not show a feedback answer: %s", exc.response.get("error"))
        except (SlackClientError, OSError) as exc:
            raise RetryLater(f"Slack unreachable: {exc}") from None

    def _post(
        self,
        url: str | None,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        replace_original: bool = False,
    ) -> None:
        """Post to the clicker's response_url (an ephemeral answer, or their card replaced)."""
        if not url:
            return
        try:
            response = WebhookClient(url, timeout=10).send(
                text=text,
                blocks=blocks,
                response_type="ephemeral",
                replace_original=replace_original,
            )
        except (SlackClientError, OSError) as exc:
            raise RetryLater(f"Slack unreachable: {exc}") from None
        if response.status_code == 429:
            raise RetryLater("rate limited", _retry_after(response.headers))
        if response.status_code >= 500:
            raise RetryLater(f"Slack answered {response.status_code}")
        if response.status_code != 200:
            log.warning("could not show a feedback answer: %s", response.body[:200])


@dataclass
class _Pending:
    """A message read from the queue and not drawn yet: its latest job, every entry it
    stands for, and when it may be drawn."""

    job: RefreshJob
    anonymous: bool
    ids: list[str]
    due: float
    attempts: int = 0


class RefreshDrain:
    """One consumer of the refresh queue. :meth:`step` reads what is new (and, now and then,
    what a dead drain left pending) and draws every message that is due; time comes from
    ``clock`` (monotonic seconds), so tests step it without sleeping. ``claim_idle_s``: how
    long another drain's entry must have been idle before this one takes it over."""

    def __init__(
        self,
        r: redis.Redis,
        store: FeedbackStore,
        painter: Painter,
        *,
        clock: Callable[[], float] = time.monotonic,
        consumer: str | None = None,
        min_interval_s: float = MIN_INTERVAL_S,
        claim_idle_s: float = CLAIM_IDLE_S,
    ) -> None:
        self.redis = r
        self.store = store
        self.painter = painter
        self.clock = clock
        self.consumer = consumer or f"drain-{uuid.uuid4().hex[:12]}"
        self.min_interval_s = min_interval_s
        self.claim_idle_s = claim_idle_s
        self._pending: dict[MessageRef | str, _Pending] = {}
        self._drawn_at: dict[MessageRef | str, float] = {}
        self._next_claim: float | None = None
        self._grouped = False

    @property
    def stream(self) -> str:
        return self.store.refresh_stream

    def step(self, *, block_s: float = 0.0) -> int:
        """Read, then draw what is due; return how many messages were drawn (or dropped).

        ``block_s``: wait that long for new entries when nothing is due sooner."""
        now = self.clock()
        due = self.next_due()
        wait = block_s if due is None else max(0.0, min(block_s, due - now))
        self.read(block_s=wait)
        return self.draw_due()

    def next_due(self) -> float | None:
        """When the next held message may be drawn (None: nothing held)."""
        return min((p.due for p in self._pending.values()), default=None)

    def backlog(self) -> int:
        """Entries queued and not yet drawn, by any drain (0: every refresh is done)."""
        with translate_errors(self.redis):
            return int(self.redis.xlen(self.stream))

    def read(self, *, block_s: float = 0.0) -> int:
        """Take new entries (and, every :data:`CLAIM_EVERY_S`, idle ones of dead drains)
        into this drain's hold; return how many were taken."""
        self._ensure_group()
        now = self.clock()
        try:
            claimed: list[Entry] = []
            if self._next_claim is None or now >= self._next_claim:
                self._next_claim = now + CLAIM_EVERY_S
                claimed = self._claim_idle()
            with translate_errors(self.redis):
                read = self.redis.xreadgroup(
                    GROUP,
                    self.consumer,
                    {self.stream: ">"},
                    count=BATCH,
                    block=int(block_s * 1000) or None,
                )
        except StoreError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped = False  # the stream was deleted (or Redis lost it): start again
            return 0
        taken = self._hold(claimed)
        for _, rows in cast("list[tuple[str, list[Entry]]]", read or []):
            taken += self._hold(rows)
        return taken

    def draw_due(self) -> int:
        """Draw every held message that is due; acknowledge (and delete) what is done."""
        now = self.clock()
        due = [(key, p) for key, p in self._pending.items() if p.due <= now]
        try:
            states = self._states([pending.job for _, pending in due])
        except ChurnbotError as exc:  # Redis: keep them held, try again after a pause
            for _, pending in due:
                pending.due = now + RETRY_S
            log.warning("could not read what to show on %d message(s): %s", len(due), exc)
            return 0
        done: list[str] = []
        drawn = 0
        for key, pending in due:
            try:
                self.painter.draw(pending.job, states.get(key), anonymous=pending.anonymous)
            except RetryLater as later:
                pending.attempts += 1
                if later.seconds is not None or pending.attempts < MAX_ATTEMPTS:
                    pending.due = now + (RETRY_S if later.seconds is None else later.seconds)
                    log.info(
                        "feedback on %s shown again in %.0f s: %s", key, pending.due - now, later
                    )
                    continue
                log.warning("gave up showing feedback on %s: %s", key, later)
            except ChurnbotError as exc:  # Redis: keep it held, try again after a pause
                pending.due = now + RETRY_S
                log.warning("could not read what to show on %s: %s", key, exc)
                continue
            except Exception:  # a bug drawing this one: the others still go
                pending.attempts += 1
                log.exception("could not show feedback on %s", key)
                if pending.attempts < MAX_ATTEMPTS:
                    pending.due = now + RETRY_S
                    continue
            done.extend(pending.ids)
            del self._pending[key]
            self._drawn_at[key] = now
            drawn += 1
        self._acknowledge(done)
        self._forget_drawn_before(now - self.min_interval_s)
        return drawn

    # --- internals ----------------------------------------------------------------------

    def _states(self, jobs: list[RefreshJob]) -> dict[MessageRef | str, MessageState]:
        """The stored state of the messages of ``jobs``, all read in one round trip."""
        messages = list({job.message: None for job in jobs if job.message})
        states = self.store.message_states(messages)
        return dict(zip(messages, states, strict=True))

    def _ensure_group(self) -> None:
        if self._grouped:
            return
        try:
            with translate_errors(self.redis):
                # From the start: refreshes queued before any drain ever ran are drawn too.
                self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except StoreError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped = True

    def _hold(self, rows: list[tuple[str, dict[str, str]]]) -> int:
        now = self.clock()
        held = {entry_id for pending in self._pending.values() for entry_id in pending.ids}
        taken = 0
        for entry_id, fields in rows:
            if entry_id in held:
                continue  # claimed back from ourselves while waiting for its turn
            try:
                job = RefreshJob.decode(fields["job"])
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("dropped an unreadable refresh %s: %r", entry_id, exc)
                self._acknowledge([entry_id])
                continue
            anonymous = fields.get("anonymous") == "1"
            key: MessageRef | str = job.message or entry_id
            pending = self._pending.get(key)
            if pending is None:
                last = self._drawn_at.get(key)
                due = now if last is None else max(now, last + self.min_interval_s)
                self._pending[key] = _Pending(job, anonymous, [entry_id], due)
            else:  # the newest click's job: its response_url is the freshest
                pending.job, pending.anonymous = job, anonymous
                pending.ids.append(entry_id)
            taken += 1
        return taken

    def _claim_idle(self) -> list[Entry]:
        """Entries that another drain read and never finished, now this one's."""
        idle_ms = int(self.claim_idle_s * 1000)
        with translate_errors(self.redis):
            _, rows, *_ = self.redis.xautoclaim(
                self.stream, GROUP, self.consumer, idle_ms, start_id="0-0", count=BATCH
            )
            consumers = self.redis.xinfo_consumers(self.stream, GROUP)
            for consumer in consumers:
                idle_s = int(consumer["idle"]) / 1000
                if (
                    consumer["name"] != self.consumer
                    and int(consumer["pending"]) == 0
                    and idle_s > FORGET_CONSUMER_S
                ):
                    self.redis.xgroup_delconsumer(self.stream, GROUP, consumer["name"])
        return entries([row for row in rows if row and row[0] is not None])

    def _acknowledge(self, ids: list[str]) -> None:
        if not ids:
            return
        with translate_errors(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

    def _forget_drawn_before(self, moment: float) -> None:
        for key in [k for k, at in self._drawn_at.items() if at < moment]:
            del self._drawn_at[key]


class DrainThread:
    """A drain stepping in a daemon thread until stopped; a failure of Redis pauses it, and
    nothing read is lost meanwhile (entries stay pending).

    The thread runs at config/feedback.yaml's ``refresh_nice`` (see :func:`lower_priority`):
    a redraw may wait a moment, a click's answer may not, and the drain often shares its
    cores with a web process (``churnbot serve`` on the embedded store runs it in the web
    process itself)."""

    def __init__(self, drain: RefreshDrain) -> None:
        self.drain = drain
        self.nice = drain.store.config.refresh_nice
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedback-refresh", daemon=True)

    def start(self) -> DrainThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        lower_priority(self.nice)
        while not self._stop.is_set():
            try:
                self.drain.step(block_s=BLOCK_S)
            except ChurnbotError as exc:
                log.warning("feedback refreshes paused: %s", exc)
                self._stop.wait(ERROR_PAUSE_S)
            except Exception:
                log.exception("feedback refreshes failed; trying again")
                self._stop.wait(ERROR_PAUSE_S)


def lower_priority(nice: int) -> None:
    """Raise the calling thread's niceness by ``nice``, on Linux, where each thread has its
    own (elsewhere this would renice the whole process, or fail, so it does nothing).

    Only this thread yields: the rest of its process (the scheduler of ``churnbot worker``,
    a web process's request threads) keeps its priority. The kernel weighs niceness among
    the threads of one autogroup (one session, ``/proc/sys/kernel/sched_autogroup_enabled``)
    or cgroup; a web process started in a session (or a systemd unit) of its own competes
    with the worker's as a group, and yielding across them is the deployment's job (e.g.
    ``CPUWeight=`` of the units). Within one process the GIL is shared: a niced drain
    preempted while holding it keeps the other threads waiting until it runs again, which is
    one more reason the drain of a deployment runs in ``churnbot worker``, not beside request
    threads. Raising niceness needs no privilege; a failure is logged and the drain runs as
    it is."""
    if nice <= 0 or sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:
        log.warning("the feedback refreshes run at normal priority: %s", exc)


class ServedCards:
    """``/churn`` cards drawn again for their refresh, kept :data:`CARD_KEEP_S` per (account,
    snapshot): a card answered by many CSMs (each one's card is a message of its own) is read
    and rendered once, not once per click; a short while, so a banner (kill switch, stale
    data) still shows up within seconds.

    Drawing a card may start work on ``deps.background`` (the track record computed after a
    card); here it goes to a pool of the drain's own, because a thread inherits the niceness
    of the thread that starts it, and the drain's must not pass to the pool that tells users
    their click was not saved."""

    def __init__(self, deps: Deps, clock: Callable[[], float]) -> None:
        own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refresh-background")
        self._deps = dataclasses.replace(deps, background=own)
        self._clock = clock
        self._kept: dict[tuple[str, str], tuple[float, list[dict[str, Any]] | None]] = {}

    def __call__(self, account_id: str, snapshot_id: str) -> list[dict[str, Any]] | None:
        now = self._clock()
        kept = self._kept.get((account_id, snapshot_id))
        if kept is not None and now - kept[0] < CARD_KEEP_S:
            return kept[1]
        deps = self._deps
        serving = current(deps.store, deps.switch, deps.settings.spec, deps.clock())
        blocks = None
        if serving.meta is not None and serving.meta.snapshot_id == snapshot_id:
            card = deps.store.card(account_id, snapshot_id=snapshot_id)
            blocks = card_answer(deps, card, serving)[1] if card else None
        self._kept = {k: v for k, v in self._kept.items() if now - v[0] < CARD_KEEP_S}
        self._kept[(account_id, snapshot_id)] = (now, blocks)
        return blocks


def build_drain(
    deps: Deps,
    client: WebClient | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> RefreshDrain:
    """The drain of ``deps``' feedback queue, drawing through ``client`` (default: a Web API
    client with no automatic retries, so a 429 never sleeps in the drain)."""
    store = feedback_store(deps)
    client = client or build_client(deps.settings.env)
    painter = Painter(store, client, ServedCards(deps, clock))
    return RefreshDrain(deps.redis, store, painter, clock=clock, **options)


@contextlib.contextmanager
def running_drain(deps: Deps, client: WebClient | None = None) -> Iterator[DrainThread]:
    """A drain thread for the length of the block: for a setup that serves the app with no
    ``churnbot worker`` beside it."""
    thread = DrainThread(build_drain(deps, client)).start()
    try:
        yield thread
    finally:
        thread.stop()
