"""Feedback events in a Redis Stream, written exactly once per click.

Why a stream with a claim, written by one Lua script:

* **Durable before "thanks".** The listener shows the user's choice only after
  :meth:`FeedbackStore.record` returned, i.e. after Redis accepted the entry (with AOF on,
  see the README for what the deployment must configure).
* **Once.** A double click, a Slack retry and the same click from two tabs derive the same
  idempotency key; the script looks up the claim, appends the entry and sets the claim in one
  atomic step, so two racing clicks cannot both append. redis-py 8 retries a command whose
  reply timed out, not knowing whether it ran: the retry runs the script again, finds the
  claim and returns the entry written the first time. Every entry also carries its ``idem``
  field, so a reader can drop a duplicate whatever wrote it.
* **Nothing half-written.** A script runs whole or not at all from other clients' point of
  view; with Redis away nothing is written and the caller gets :class:`StoreUnavailable`.
* **The refresh queued with the answer.** The same script appends the message's refresh to
  ``F:refresh`` (and keeps the message as the click showed it), so once a click is
  acknowledged its refresh is queued too, whatever happens to the web process next; the
  worker draws it (``bot.feedback.drain``).
* **The request's signature claimed with it.** A click's replay guard (``bot.state.replay``)
  is settled by the same script: a signature used before changes nothing and the request is
  refused, at no round trip of its own.
* **Privacy decided at the write.** Whether the user opted out is read inside the same
  script, so the stored event is anonymous exactly when the user was opted out at that moment.
* **Retention on every write.** ``XADD ... MINID`` drops entries older than the retention
  window as new ones arrive; :meth:`trim` does the same for quiet periods. Entry ids carry the
  app clock's milliseconds (``<ms>-*``), so the window is measured on the time the click was
  recorded; if that clock is behind the stream's last id (another process, clock skew) the
  script falls back to ``*``, which Redis keeps increasing.

Key layout (``F`` = ``<prefix>:{<book>}:feedback``, one hash tag with the book's snapshots)::

    F:events              stream  one entry per answer: FeedbackEvent.to_fields, user, consent
    F:claim:<idem>        string  the entry id of that click; expires after dedupe_days
    F:optout              set     Slack user ids whose feedback is stored without identity
    F:shown:<channel>:<ts>  hash  "<account>\\x1f<kind>\\x1f<user or ~entry>" -> entry id: who
                                  answered what on one message (its context lines); expires
    F:message:<channel>:<ts>  string  the message as Slack last sent it with a click (its
                                  text and blocks): what a refresh redraws; expires
    F:refresh             stream  messages to redraw after a click (``bot.feedback.refresh``),
                                  appended by the same script as the click's event
    F:outcomes            hash    account_id -> {"churn_date", "last_seen"} from account data
    F:once:<name>         string  a run fence (e.g. the weekly summary of one week)
    F:rewrite, F:rewrite:lock     the copy and the lock of a running ``forget``
    F:seen-signature:<signature>  string  a click request's signature, used once (the replay
                                  guard); expires with Slack's window
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import redis

from bot.feedback.config import FeedbackConfig
from bot.feedback.events import FeedbackEvent, Kind, MessageRef
from bot.feedback.outcomes import Outcome
from bot.state.replay import SeenSignature, SignatureReplayed
from bot.state.replies import as_fields, entries, text_hash
from bot.state.store import RELEASE_LOCK, StoreError, book_root, translate_errors

_SEP = "\x1f"
_CHUNK = 1_000
REWRITE_LOCK_S = 3_600
#: How far back a reader looks for a repeated ``idem``: far more entries than a retried write
#: can land behind its original.
DEDUPE_WINDOW = 10_000
#: Refreshes kept queued at most (Redis trims the oldest beyond, roughly): a bound for a web
#: process running with no worker to draw them, far above any real backlog.
REFRESH_QUEUE_MAX = 100_000

_RECORD = """
local stream, claim, optout, shown = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local refresh, message = KEYS[5], KEYS[6]
local user, claim_ttl, shown_ttl, shown_field = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job, body, queue_max = ARGV[7], ARGV[8], ARGV[9]
local seen, token = KEYS[7], ARGV[11]
if token ~= '' then
  local prior = redis.call('GET', seen)
  if prior and prior ~= token then return {-1, '', 0} end
  if not prior then redis.call('SET', seen, token, 'EX', ARGV[12]) end
end
local anonymous = user == '' or redis.call('SISMEMBER', optout, user) == 1
local id = redis.call('GET', claim)
local fresh = 0
if not id then
  local fields = cjson.decode(ARGV[10])
  table.insert(fields, 'user')
  table.insert(fields, anonymous and '' or user)
  table.insert(fields, 'consent')
  table.insert(fields, anonymous and 'anonymous' or 'identified')
  local added = redis.pcall('XADD', stream, 'MINID', ARGV[5], ARGV[6] .. '-*', unpack(fields))
  if type(added) == 'table' and added.err then
    if not string.find(tostring(added.err), 'equal or smaller', 1, true) then return added end
    added = redis.call('XADD', stream, 'MINID', ARGV[5], '*', unpack(fields))
  end
  id, fresh = added, 1
  redis.call('SET', claim, id, 'EX', claim_ttl)
end
if shown_field ~= '' then
  local who = user
  if anonymous then who = '~' .. id end
  redis.call('HSET', shown, shown_field .. who, id)
  redis.call('EXPIRE', shown, shown_ttl)
end
if body ~= '' then redis.call('SET', message, body, 'EX', shown_ttl) end
if job ~= '' then
  redis.call('XADD', refresh, 'MAXLEN', '~', queue_max, '*',
             'job', job, 'anonymous', anonymous and '1' or '0')
end
return {fresh, id, anonymous and 1 or 0}
"""

# The last step of ``forget``: copy what arrived since the bulk copy (erasing the user there
# too, and deleting their claims), drop from the copy what retention removed meanwhile, and
# swap the copy in. Claim keys are built from ARGV[3], which carries the stream's hash tag.
_FINISH_REWRITE = """
local stream, copy = KEYS[1], KEYS[2]
local last, user, claims, forgotten = ARGV[1], ARGV[2], ARGV[3], 0
if redis.call('XLEN', stream) == 0 then
  redis.call('DEL', copy)
  return 0
end
for _, entry in ipairs(redis.call('XRANGE', stream, '(' .. last, '+')) do
  local fields = entry[2]
  local mine = false
  for i = 1, #fields, 2 do
    if fields[i] == 'user' and fields[i + 1] == user then mine = true end
  end
  if mine then
    forgotten = forgotten + 1
    for i = 1, #fields, 2 do
      if fields[i] == 'user' then fields[i + 1] = '' end
      if fields[i] == 'consent' then fields[i + 1] = 'forgotten' end
      if fields[i] == 'idem' then
        redis.call('DEL', claims .. fields[i + 1])
        fields[i + 1] = redis.sha1hex('forgotten' .. entry[1])
      end
    end
  end
  redis.call('XADD', copy, entry[1], unpack(fields))
end
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1][1]
redis.call('XTRIM', copy, 'MINID', first)
redis.call('RENAME', copy, stream)
return forgotten
"""


class RewriteRunning(StoreError):
    """Another ``forget`` is rewriting the stream right now."""


@dataclass(frozen=True)
class Recorded:
    """What :meth:`FeedbackStore.record` did: ``fresh`` False means the click was a repeat
    and ``entry_id`` is the entry the first one wrote."""

    entry_id: str
    fresh: bool
    anonymous: bool


@dataclass(frozen=True)
class MessageState:
    """What a refresh redraws a message from: its text and blocks as last kept (None if
    none are) and who answered what on it: account -> kind -> users (None: anonymous), in
    the order they answered."""

    body: dict[str, Any] | None
    choices: dict[str, dict[Kind, list[str | None]]]


def stream_ms(moment: dt.datetime) -> int:
    """``moment`` in the milliseconds a stream entry id starts with (how reads select by
    time, here and in ``bot.feedback.stats.recorded_since``)."""
    return int(moment.timestamp() * 1000)


def forgotten_idem(entry_id: str) -> str:
    """The ``idem`` an entry gets when its user is forgotten: unique, and not derived from
    the user (the same as the Lua rewrite computes)."""
    return hashlib.sha1(f"forgotten{entry_id}".encode()).hexdigest()


class FeedbackStore:
    """Record, read, trim and rewrite the feedback events of one book."""

    def __init__(
        self,
        client: redis.Redis,
        config: FeedbackConfig,
        *,
        prefix: str = "churnbot",
        book: str = "default",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._r = client
        self._config = config
        self._clock = clock
        root = book_root(prefix, book, owner="FeedbackStore") + "feedback:"
        self._root = root
        self.stream = root + "events"
        self._optout = root + "optout"
        self._outcomes = root + "outcomes"
        self.refresh_stream = root + "refresh"
        self._rewrite = root + "rewrite"
        self._record = client.register_script(_RECORD)
        self._finish = client.register_script(_FINISH_REWRITE)
        self._release = client.register_script(RELEASE_LOCK)

    @property
    def config(self) -> FeedbackConfig:
        return self._config

    def _min_id(self) -> int:
        return max(0, stream_ms(self._clock() - self._config.retention))

    def _shown_key(self, message: MessageRef) -> str:
        return f"{self._root}shown:{message.channel}:{message.ts}"

    def _message_key(self, message: MessageRef) -> str:
        return f"{self._root}message:{message.channel}:{message.ts}"

    # --- writing ------------------------------------------------------------------------

    def record(
        self,
        event: FeedbackEvent,
        *,
        user: str | None,
        message: MessageRef | None = None,
        refresh: str = "",
        message_body: str = "",
        seen: SeenSignature | None = None,
    ) -> Recorded:
        """Append ``event`` once per idempotency key; anonymous if ``user`` opted out.

        ``message`` also records who answered what on that message, for its context lines
        (a repeat records it too, so a click that only reached the store still shows up).
        ``refresh`` (an encoded ``bot.feedback.refresh.RefreshJob``) is queued in the same
        step, with whether the answer was stored anonymously; ``message_body`` (JSON text and
        blocks, as the click showed them) is kept for that refresh to redraw. ``seen``, the
        request's replay guard, is settled in the same step: SignatureReplayed (and nothing
        written) if its signature was used before.
        """
        shown_field = f"{event.ref.account_id}{_SEP}{event.kind}{_SEP}" if message else ""
        # One JSON argument rather than one per field: redis-py encodes each argument on
        # its own, which cost more than the rest of the call.
        fields = json.dumps(
            [part for pair in event.to_fields().items() for part in pair], ensure_ascii=False
        )
        with translate_errors(self._r):
            fresh, entry_id, anonymous = self._record(
                keys=[
                    self.stream,
                    self._root + "claim:" + event.idem,
                    self._optout,
                    self._shown_key(message) if message else self._root + "shown:-",
                    self.refresh_stream,
                    self._message_key(message) if message else self._root + "message:-",
                    seen.key(self._root) if seen else self._root + "seen-signature:-",
                ],
                args=[
                    user or "",
                    self._config.dedupe_days * 86_400,
                    self._config.message_state_days * 86_400,
                    shown_field,
                    self._min_id(),
                    stream_ms(event.at),
                    refresh,
                    message_body if message else "",
                    REFRESH_QUEUE_MAX,
                    fields,
                    seen.token if seen else "",
                    seen.ttl_s if seen else 0,
                ],
            )
        if seen is not None:
            seen.first = fresh != -1
            if not seen.first:
                raise SignatureReplayed("this signature was already used (a replayed request)")
        return Recorded(entry_id=entry_id, fresh=bool(fresh), anonymous=bool(anonymous))

    def trim(self) -> int:
        """Delete the events older than the retention window; return how many went."""
        with translate_errors(self._r):
            return int(self._r.xtrim(self.stream, minid=self._min_id(), approximate=False))

    def set_opted_out(self, user: str, opted_out: bool) -> None:
        with translate_errors(self._r):
            if opted_out:
                self._r.sadd(self._optout, user)
            else:
                self._r.srem(self._optout, user)

    def is_opted_out(self, user: str) -> bool:
        with translate_errors(self._r):
            return bool(self._r.sismember(self._optout, user))

    def claim_once(self, name: str, ttl: dt.timedelta) -> bool:
        """True the first time ``name`` is claimed within ``ttl`` (a fence against a second
        scheduler or a rerun doing the same job twice)."""
        with translate_errors(self._r):
            return bool(
                self._r.set(self._root + "once:" + name, "1", nx=True, ex=int(ttl.total_seconds()))
            )

    def keep_message(self, message: MessageRef, body: str) -> None:
        """Keep ``message`` as Slack showed it (``body``: JSON text and blocks) for its
        refreshes: a modal's submission does not carry the message it was opened from, and
        reading it back would need a history scope the app does not ask for."""
        with translate_errors(self._r):
            self._r.set(
                self._message_key(message), body, ex=self._config.message_state_days * 86_400
            )

    def set_outcomes(self, outcomes: Mapping[str, Outcome]) -> None:
        """Replace the known outcomes with ``outcomes`` (staged, then renamed into place)."""
        staging = self._outcomes + ":staging"
        items = iter(outcomes.items())
        with translate_errors(self._r):
            self._r.delete(staging)
            while chunk := list(islice(items, _CHUNK)):
                self._r.hset(
                    staging,
                    mapping={
                        account: json.dumps(
                            {
                                "churn_date": o.churn_date.isoformat() if o.churn_date else None,
                                "last_seen": o.last_seen.isoformat(),
                            }
                        )
                        for account, o in chunk
                    },
                )
            if outcomes:
                self._r.rename(staging, self._outcomes)
            else:
                self._r.delete(self._outcomes)

    # --- reading ------------------------------------------------------------------------

    def events(self, since: dt.datetime | None = None) -> Iterator[FeedbackEvent]:
        """Stored events recorded at or after ``since`` (all if None), oldest first, read in
        chunks; an entry repeating an ``idem`` among the last :data:`DEDUPE_WINDOW` entries
        (what a blind retry of a write would leave) is skipped."""
        start = str(stream_ms(since)) if since else "-"
        recent: deque[str] = deque(maxlen=DEDUPE_WINDOW)
        seen: set[str] = set()
        while True:
            with translate_errors(self._r):
                rows = entries(self._r.xrange(self.stream, min=start, max="+", count=_CHUNK))
            for entry_id, fields in rows:
                idem = fields["idem"]
                if idem in seen:
                    continue
                if len(recent) == recent.maxlen:
                    seen.discard(recent[0])
                recent.append(idem)
                seen.add(idem)
                yield FeedbackEvent.from_fields(entry_id, fields)
            if len(rows) < _CHUNK:
                return
            start = "(" + rows[-1][0]

    def message_states(self, messages: list[MessageRef]) -> list[MessageState]:
        """What redrawing each of ``messages`` needs (its kept body and its choices), read in
        one round trip: a drain draws the messages due together, and each command sent on its
        own would cost the drain (and Redis, which serves the clicks too) far more."""
        if not messages:
            return []
        with translate_errors(self._r):
            pipe = self._r.pipeline(transaction=False)
            for message in messages:
                pipe.get(self._message_key(message))
                pipe.hgetall(self._shown_key(message))
            replies = pipe.execute()
        return [
            MessageState(json.loads(kept) if kept else None, _choices(text_hash(shown)))
            for kept, shown in zip(replies[::2], replies[1::2], strict=True)
        ]

    def outcomes(self, account_ids: list[str]) -> dict[str, Outcome]:
        """The known outcomes of ``account_ids`` (accounts without one are left out)."""
        found: dict[str, Outcome] = {}
        for start in range(0, len(account_ids), _CHUNK):
            chunk = account_ids[start : start + _CHUNK]
            with translate_errors(self._r):
                values = self._r.hmget(self._outcomes, chunk)
            for account, value in zip(chunk, values, strict=True):
                if value is not None:
                    data = json.loads(value)
                    churn = data["churn_date"]
                    found[account] = Outcome(
                        churn_date=dt.date.fromisoformat(churn) if churn else None,
                        last_seen=dt.date.fromisoformat(data["last_seen"]),
                    )
        return found

    # --- erasing ------------------------------------------------------------------------

    def forget(self, user: str) -> int:
        """Erase ``user`` from every stored event and message line; return how many events.

        A stream entry cannot be edited, and ``XDEL`` only marks an entry deleted (its bytes
        stay in the stream's nodes), so the stream is rewritten: copied entry by entry, with
        the same ids, into a staging stream where the user's entries lose ``user`` (consent
        becomes ``forgotten``, ``idem`` a value not derived from the user); a last atomic step
        copies what arrived meanwhile and renames the copy over the original. Clicks keep
        being recorded during the copy. The user's claims are deleted too.
        """
        lock, token = self._rewrite + ":lock", secrets.token_hex(16)
        with translate_errors(self._r):
            if not self._r.set(lock, token, nx=True, ex=REWRITE_LOCK_S):
                raise RewriteRunning(
                    f"another `churnbot feedback forget` is rewriting {self.stream}; "
                    "try again when it has finished."
                )
            try:
                forgotten = self._rewrite_without(user)
                self._scrub_shown(user)
            finally:
                self._release(keys=[lock], args=[token])
        return forgotten

    def _rewrite_without(self, user: str) -> int:
        claims: list[str] = []
        self._r.delete(self._rewrite)
        last, start = "0-0", "-"
        while rows := entries(self._r.xrange(self.stream, min=start, max="+", count=_CHUNK)):
            pipe = self._r.pipeline(transaction=False)
            for entry_id, fields in rows:
                if fields.get("user") == user:
                    claims.append(self._root + "claim:" + fields["idem"])
                    fields = {
                        **fields,
                        "user": "",
                        "consent": "forgotten",
                        "idem": forgotten_idem(entry_id),
                    }
                pipe.xadd(self._rewrite, as_fields(fields), id=entry_id)
            pipe.execute()
            last = rows[-1][0]
            start = "(" + last
        forgotten = len(claims) + int(
            self._finish(
                keys=[self.stream, self._rewrite], args=[last, user, self._root + "claim:"]
            )
        )
        for start_index in range(0, len(claims), _CHUNK):
            self._r.unlink(*claims[start_index : start_index + _CHUNK])
        return forgotten

    def _scrub_shown(self, user: str) -> None:
        """Turn the user's entries in message lines into anonymous ones."""
        suffix = _SEP + user
        for key in self._r.scan_iter(match=self._root + "shown:*", count=_CHUNK):
            for field, entry_id in text_hash(self._r.hgetall(key)).items():
                if field.endswith(suffix):
                    pipe = self._r.pipeline(transaction=True)
                    pipe.hdel(key, field)
                    pipe.hset(key, field[: -len(user)] + "~" + entry_id, entry_id)
                    pipe.execute()


def _choices(stored: Mapping[str, str]) -> dict[str, dict[Kind, list[str | None]]]:
    """A message's shown hash as account -> kind -> users, in the order they answered."""
    result: dict[str, dict[Kind, list[str | None]]] = {}
    for field, _ in sorted(stored.items(), key=lambda item: _entry_order(item[1])):
        account, kind, who = field.split(_SEP)
        users = result.setdefault(account, {}).setdefault(kind, [])  # type: ignore[arg-type]
        users.append(None if who.startswith("~") else who)
    return result


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
