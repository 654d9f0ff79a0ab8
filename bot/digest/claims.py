"""Exactly-once records of digest slots in Redis: a claim (lease) and a progress record.

Why both: ``chat.postMessage`` has no idempotency key, and APScheduler may run a slot twice
(two workers during a deploy, a retried job, a fall-back hour). So every send is fenced:

* the **claim** ``SET claim token NX PX lease`` lets one runner at a time work on a slot; it
  expires by itself when its holder dies, and the holder renews it before every step;
* the **record** says how far the slot got: the planned messages, the ``ts`` of every part
  posted, the part being posted right now (``pending``), and a final state. A new holder
  continues after the last recorded part, and looks a ``pending`` part up in Slack before
  posting it again (the previous holder may have died between Slack's answer and the write).

Every write checks the claim token in the same Lua call, so a holder whose lease ran out can no
longer change anything. All keys of a digest share the hash tag ``{digest:<name>}``.

Key layout (``D`` = ``<prefix>:{digest:<name>}``)::

    D:claim:<channel>:<period>  string  holder token; PX lease
    D:slot:<channel>:<period>   hash    state, plan (JSON), ts:<n>, pending, started_at,
                                        finished_at, reason, who; stale:<n> (a posted part
                                        still to be edited into a re-made plan); failures,
                                        retry_at (Slack kept failing: when to try again);
                                        expires after ``keep``
    D:open                      set     slot ids started and not finished, so a restarted
                                        worker resumes them whatever their age
    D:last                      string  JSON {slot, snapshot_id, risks}: the channel's previous
                                        digest, for the "new" and "moved sharply" marks

And one key for every digest (``<prefix>:{scheduler}:slack_outage``, a hash): when Slack first
kept failing, and ``slot:<digest>:<slot id>`` -> what became of each digest it held up. The
first run that posts again takes the whole hash in one atomic call, so exactly one worker tells
the admins that Slack answers again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from bot.digest.compose import DigestPlan
from bot.digest.exposures import Exposure
from bot.digest.slots import Slot
from bot.render import Message
from bot.render.digest import compact_json
from bot.state.replies import text_hash, text_set
from bot.state.store import RELEASE_LOCK, StoreError, book_root, translate_errors

FINAL_STATES = ("done", "skipped", "failed")
_T = TypeVar("_T")
State = Literal["new", "posting", "done", "skipped", "failed"]

# KEYS: claim, record, last. ARGV: token, lease ms. Final -> {'finished', state, record};
# claimed -> {'claimed', state, record, last ('' before the first digest)}; held by another ->
# {'busy', pttl}. The record and the channel's previous digest come back with the claim, so a
# run starts in one round trip.
_CLAIM = """
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'done' or state == 'skipped' or state == 'failed' then
  return {'finished', state, redis.call('HGETALL', KEYS[2])}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local last = redis.call('GET', KEYS[3]) or ''
  return {'claimed', state or 'new', redis.call('HGETALL', KEYS[2]), last}
end
return {'busy', tostring(redis.call('PTTL', KEYS[1]))}
"""

# KEYS: claim, record, open. ARGV: token, lease ms, keep s, slot id to mark open ('' not),
# n pairs, k1, v1, ..., fields to delete.
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', KEYS[2], unpack(ARGV, 6, 5 + 2 * n)) end
for i = 6 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('SADD', KEYS[3], ARGV[4]) end
return 1
"""

# KEYS: claim, record, open, last. ARGV: token, keep s, state, at, reason, slot id,
# last JSON ('' keeps it), then optionally the field and value of the last part's ts (recorded
# with the finish: one round trip where two would leave nothing more certain).
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'finished_at', ARGV[4], 'reason', ARGV[5])
if #ARGV >= 9 then redis.call('HSET', KEYS[2], ARGV[8], ARGV[9]) end
redis.call('HDEL', KEYS[2], 'pending')
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[6])
if ARGV[7] ~= '' then redis.call('SET', KEYS[4], ARGV[7]) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: outage. Takes the whole record (and deletes it): only one caller gets it.
_TAKE_OUTAGE = """
local record = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return record
"""

# KEYS: outage. ARGV: field, value. Updates a field only while an outage is on record.
_NOTE_OUTAGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: claim, record. ARGV: keep s, reason, at. Skips only a slot nobody started or holds;
# answers 'skipped' when it did, else 'was:<state>' or 'busy'.
_SKIP = """
local state = redis.call('HGET', KEYS[2], 'state')
if state then return 'was:' .. state end
if redis.call('EXISTS', KEYS[1]) == 1 then return 'busy' end
redis.call('HSET', KEYS[2], 'state', 'skipped', 'reason', ARGV[2], 'finished_at', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 'skipped'
"""


class ClaimLost(StoreError):
    """The slot's lease ran out and another runner may own it: this one must stop posting.
    ``outage``: the Slack outage record the same round trip took (:meth:`SlotClaims.finish`
    with ``take_outage``), for the caller to announce all the same: its post went through.
    ``then``: the replies of the commands the finish's ``then`` queued, which ran although
    the finish did not (the caller takes back what they wrote)."""

    def __init__(
        self,
        message: str,
        *,
        outage: dict[str, str] | None = None,
        then: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.outage = outage
        self.then = then


@dataclass(frozen=True)
class SlotRecord:
    """How far a slot got. ``stale``: posted parts of an earlier plan, to be edited into the
    current one; ``failures``: runs that Slack made give up (see ``retry_at``)."""

    state: State
    plan: DigestPlan | None = None
    ts: Mapping[int, str] = field(default_factory=dict)
    pending: int | None = None
    reason: str = ""
    who: str = ""
    stale: frozenset[int] = frozenset()
    failures: int = 0
    started_at: dt.datetime | None = None


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ``claimed`` (go on from ``record``), ``finished`` (nothing to
    do) or ``busy`` (another runner holds it for ``retry_in`` more seconds). ``previous``:
    with ``claimed``, the risks the channel's previous digest showed (:meth:`SlotClaims.previous`),
    read in the same call."""

    status: Literal["claimed", "finished", "busy"]
    record: SlotRecord
    retry_in: float | None = None
    previous: dict[str, float] | None = None


class SlotClaims:
    """Claims and records of every digest slot, under ``prefix``.

    ``lease``: how long a silent holder keeps a slot (renewed before every step, so it only
    has to outlast one Web API call or one wait). ``keep``: how long finished records stay, so
    a retried job weeks later still finds its slot done.

    Scripts are queued on a pipeline as the EVAL or EVALSHA command itself
    (``execute_command``): redis-py's ``eval`` and ``evalsha`` only hand their arguments on
    through two more calls, which copy them each time (~11K instructions a script, four
    a digest).
    """

    def __init__(
        self,
        r: redis.Redis,
        *,
        prefix: str = "churnbot",
        lease: dt.timedelta = dt.timedelta(seconds=60),
        keep: dt.timedelta = dt.timedelta(days=40),
    ) -> None:
        self._r = r
        self._prefix = prefix
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._keep_s = int(keep.total_seconds())
        self._claim = r.register_script(_CLAIM)
        self._write = r.register_script(_WRITE)
        self._finish = r.register_script(_FINISH)
        self._skip = r.register_script(_SKIP)
        self._release = r.register_script(RELEASE_LOCK)
        self._note_outage = r.register_script(_NOTE_OUTAGE)
        self._outage = f"{prefix}:{{scheduler}}:slack_outage"
        self._roots: dict[str, str] = {}

    # --- keys ---------------------------------------------------------------------------------

    def _root(self, digest: str) -> str:
        """The digest's key root, checked and built once per digest (a digest's run needs it
        five times; :func:`book_root` checks both names every time, ~3.5K instructions)."""
        root = self._roots.get(digest)
        if root is None:
            root = self._roots[digest] = book_root(
                self._prefix, f"digest:{digest}", owner="SlotClaims"
            )
        return root

    def _keys(self, slot: Slot) -> list[str]:
        """claim, record and the digest's open set."""
        root = self._root(slot.digest)
        return [root + "claim:" + slot.id, root + "slot:" + slot.id, root + "open"]

    def _claim_keys(self, slot: Slot) -> list[str]:
        """claim, record and the channel's previous digest (what a claim reads)."""
        return [*self._keys(slot)[:2], self._root(slot.digest) + "last"]

    # --- claiming -----------------------------------------------------------------------------

    def claim(self, slot: Slot, token: str) -> Claim:
        keys = self._claim_keys(slot)
        with translate_errors(self._r):
            return _claim(self._claim(keys=keys, args=[token, self._lease_ms]))

    def claim_and_read(
        self, slot: Slot, token: str, read: Callable[[Pipeline], Callable[[Any], _T]]
    ) -> tuple[Claim, Callable[[], _T]]:
        """:meth:`claim`, and the caller's read after it in the same round trip (a digest's
        run reads what its plan needs there): ``read`` queues it and returns what turns its
        reply into the answer. That answer comes as a call, made only if the caller needs it
        (not for a slot busy or done) and where it handles errors: a failed read raises
        there, after the claim, so the caller can release the slot it holds.

        The claim goes as EVALSHA (this runs once per digest; the script's source need not
        travel each time). A server that lost its scripts (a restart, SCRIPT FLUSH) answers
        NOSCRIPT and runs nothing of it, so the claim and the read, which writes nothing, go
        again with the claim's source (which the server then keeps for the next ones). The
        read may be EVALSHA too: its NOSCRIPT error goes to its answer, which reads again."""
        keys = self._claim_keys(slot)
        with translate_errors(self._r):
            answer, raw, answer_of = self._claim_with(read, keys, token, by_sha=True)
            if isinstance(answer, redis.exceptions.NoScriptError):
                answer, raw, answer_of = self._claim_with(read, keys, token, by_sha=False)
            if isinstance(answer, Exception):
                raise answer
            claim = _claim(answer)

        def read_answer() -> _T:
            if isinstance(raw, Exception) and not isinstance(raw, redis.exceptions.NoScriptError):
                with translate_errors(self._r):
                    raise raw
            return answer_of(raw)

        return claim, read_answer

    def _claim_with(
        self,
        read: Callable[[Pipeline], Callable[[Any], _T]],
        keys: list[str],
        token: str,
        *,
        by_sha: bool,
    ) -> tuple[Any, Any, Callable[[Any], _T]]:
        """One round trip of :meth:`claim_and_read`: the claim's and the read's replies (or
        the errors they answered), and what turns the read's into its answer."""
        pipe = self._r.pipeline(transaction=False)
        if by_sha:
            pipe.execute_command(
                "EVALSHA", self._claim.sha, len(keys), *keys, token, self._lease_ms
            )
        else:
            pipe.execute_command("EVAL", _CLAIM, len(keys), *keys, token, self._lease_ms)
        answer_of = read(pipe)
        answer, raw = pipe.execute(raise_on_error=False)
        return answer, raw, answer_of

    def renew(self, slot: Slot, token: str, seconds: float = 0.0) -> None:
        """Keep the lease for ``seconds`` more than one lease (before a long wait)."""
        self._fenced(slot, token, {}, (), extra_ms=int(seconds * 1000))

    def release(self, slot: Slot, token: str) -> None:
        """Give the slot up unfinished (a later run continues from the record)."""
        with translate_errors(self._r):
            self._release(keys=self._keys(slot)[:1], args=[token])

    # --- progress -----------------------------------------------------------------------------

    def save_plan(
        self,
        slot: Slot,
        token: str,
        plan: DigestPlan,
        *,
        at: dt.datetime,
        who: str,
        begin: int | None = None,
        and_read: str | None = None,
    ) -> dict[str, str]:
        """Store the plan; ``begin``: the part about to be posted, marked as
        :meth:`begin_part` does in the same write (one round trip fewer per digest);
        ``and_read``: a hash read right after the write, in the same round trip (the kill
        switch, read before every part), returned (empty without it)."""
        values: dict[str, str | bytes] = {
            "state": "posting",
            "plan": _plan_json(plan),
            "started_at": at.isoformat(),
            "scheduled_at": slot.scheduled_at.isoformat(),
            "manual": "1" if slot.manual else "0",
            "who": who,
        }
        if begin is not None:
            values["pending"] = str(begin)
        return self._fenced(slot, token, values, (), opens=True, and_read=and_read)

    def replace_plan(
        self, slot: Slot, token: str, plan: DigestPlan, *, posted: Collection[int]
    ) -> None:
        """Swap in a re-made plan; the ``posted`` parts of the old one become ``stale`` (to be
        edited), in the same write, so a crash in between still edits them."""
        values: dict[str, str | bytes] = {"plan": _plan_json(plan)}
        values.update({f"stale:{part}": "1" for part in posted})
        self._fenced(slot, token, values, ("pending",))

    def record_edit(self, slot: Slot, token: str, part: int, *, deleted: bool) -> None:
        """A stale part was edited into the current plan (or deleted: the plan is shorter)."""
        self._fenced(slot, token, {}, (f"stale:{part}", *((f"ts:{part}",) if deleted else ())))

    def postpone(self, slot: Slot, token: str, *, failures: int, retry_at: dt.datetime) -> None:
        """Slack made this run give up: count it and say when to try again, then let go."""
        self._fenced(slot, token, {"failures": str(failures), "retry_at": retry_at.isoformat()}, ())
        self.release(slot, token)

    def begin_part(self, slot: Slot, token: str, part: int) -> None:
        """Mark ``part`` as being posted: a run that takes over looks it up in Slack first."""
        self._fenced(slot, token, {"pending": str(part)}, ())

    def record_part(
        self,
        slot: Slot,
        token: str,
        part: int,
        ts: str,
        *,
        begin: int | None = None,
        and_read: str | None = None,
    ) -> dict[str, str]:
        """Record a posted part; ``begin``: the next part, marked as :meth:`begin_part` does
        in the same write, else nothing is left pending; ``and_read`` as for
        :meth:`save_plan`."""
        if begin is None:
            return self._fenced(slot, token, {f"ts:{part}": ts}, ("pending",), and_read=and_read)
        values = {f"ts:{part}": ts, "pending": str(begin)}
        return self._fenced(slot, token, values, (), and_read=and_read)

    def finish(
        self,
        slot: Slot,
        token: str,
        *,
        state: Literal["done", "skipped", "failed"],
        at: dt.datetime,
        reason: str = "",
        shown: DigestPlan | None = None,
        last_part: tuple[int, str] | None = None,
        first: Callable[[Pipeline], object] | None = None,
        then: Callable[[Pipeline], object] | None = None,
        outage_note: str | None = None,
        take_outage: bool = False,
    ) -> dict[str, str] | None:
        """Close the slot for good and drop the claim; ``shown`` becomes the channel's
        previous digest; ``last_part`` (part, ts), posted since :meth:`begin_part`, is
        recorded in the same call (as :meth:`record_part` would).

        A posted digest does more in the same round trip (a pipeline, in this order):
        ``first`` queues the caller's own commands (what the digest showed, written again by a
        run that resumes the slot); after the finish, ``then`` queues those that are true only
        if it closes the slot (the audit entry: if it did not, :class:`ClaimLost` brings
        their replies, for the caller to take them back), ``outage_note`` does what
        :meth:`outage_note` does, and ``take_outage`` takes the whole outage record (deleting
        it, so exactly one run gets it), which is returned (None if none was on record)."""
        last = ""
        if shown is not None:  # {slot, snapshot_id, risks}, the risks as the plan stored them
            last = (
                '{"slot":'
                + compact_json(slot.id)
                + ',"snapshot_id":'
                + compact_json(shown.snapshot_id)
                + ',"risks":'
                + shown.shown_json
                + "}"
            )
        keys = [*self._keys(slot), self._root(slot.digest) + "last"]
        args: list[EncodableT] = [token, self._keep_s, state, at.isoformat(), reason, slot.id, last]
        if last_part is not None:
            args += [f"ts:{last_part[0]}", last_part[1]]
        with translate_errors(self._r):
            then_replies: list[Any] = []
            if first is None and then is None and outage_note is None and not take_outage:
                done, outage = self._finish(keys=keys, args=args), None
            else:
                pipe = self._r.pipeline(transaction=False)
                if first is not None:
                    first(pipe)
                finish_at = len(pipe)  # ``first`` may have queued nothing
                pipe.execute_command("EVAL", _FINISH, len(keys), *keys, *args)
                if then is not None:
                    then(pipe)
                then_end = len(pipe)
                if outage_note is not None:
                    self._queue_outage_note(pipe, slot, outage_note)
                if take_outage:
                    pipe.execute_command("EVAL", _TAKE_OUTAGE, 1, self._outage)
                replies = pipe.execute()
                done = replies[finish_at]
                then_replies = replies[finish_at + 1 : then_end]
                outage = (_flat_hash(replies[-1]) or None) if take_outage else None
        if not done:
            raise ClaimLost(
                f"lost the claim on digest slot {slot.digest} {slot.id}",
                outage=outage,
                then=then_replies,
            )
        return outage

    def skip(self, slot: Slot, *, reason: str, at: dt.datetime) -> bool:
        """Mark a slot nobody started as skipped. True if this call skipped it; False if it
        was already started, finished or held (then it is left alone)."""
        with translate_errors(self._r):
            answer = self._skip(
                keys=self._keys(slot)[:2], args=[self._keep_s, reason, at.isoformat()]
            )
        return answer == "skipped"

    # --- reading ------------------------------------------------------------------------------

    def record(self, slot: Slot) -> SlotRecord | None:
        with translate_errors(self._r):
            return _record(text_hash(self._r.hgetall(self._keys(slot)[1])))

    def open_slots(
        self, digest: str, channel: str, *, due_by: dt.datetime | None = None
    ) -> list[tuple[dt.datetime, bool]]:
        """(scheduled time, manual) of every slot of ``digest`` started and not finished,
        oldest first: what a restarted worker must resume. With ``due_by``, only those not
        waiting for a later retry (``retry_at``)."""
        root = self._root(digest)
        with translate_errors(self._r):
            ids = sorted(text_set(self._r.smembers(root + "open")))
            pipe = self._r.pipeline(transaction=False)
            for slot_id in ids:
                pipe.hmget(
                    root + "slot:" + slot_id, ["scheduled_at", "manual", "state", "retry_at"]
                )
            rows = pipe.execute()
            gone = [
                slot_id
                for slot_id, (scheduled, *_) in zip(ids, rows, strict=True)
                if scheduled is None
            ]
            if gone:  # records outlived by the set (expired after ``keep``)
                self._r.srem(root + "open", *gone)
        return [
            (dt.datetime.fromisoformat(scheduled), manual == "1")
            for slot_id, (scheduled, manual, state, retry_at) in zip(ids, rows, strict=True)
            if scheduled
            and state == "posting"
            and slot_id.startswith(channel + ":")
            and (
                due_by is None or retry_at is None or dt.datetime.fromisoformat(retry_at) <= due_by
            )
        ]

    def previous(self, digest: str) -> dict[str, float] | None:
        """Risks the channel's previous digest showed, by account id; None before the first."""
        with translate_errors(self._r):
            raw = self._r.get(self._root(digest) + "last")
        return None if raw is None else json.loads(raw)["risks"]

    # --- Slack outages ------------------------------------------------------------------------

    def outage_started(self, slot: Slot, *, at: dt.datetime, state: str) -> None:
        """Note that Slack held up ``slot`` (``state`` says how it stands); the outage's start
        is kept from its first note."""
        with translate_errors(self._r):
            pipe = self._r.pipeline(transaction=True)
            pipe.hsetnx(self._outage, "since", at.isoformat())
            pipe.hset(self._outage, _outage_field(slot), state)
            pipe.execute()

    def outage_note(self, slot: Slot, state: str) -> None:
        """Say how a held-up slot ended, if an outage is still on record."""
        with translate_errors(self._r):
            self._note_outage(keys=[self._outage], args=[_outage_field(slot), state])

    def _queue_outage_note(self, pipe: Pipeline, slot: Slot, state: str) -> None:
        pipe.execute_command("EVAL", _NOTE_OUTAGE, 1, self._outage, _outage_field(slot), state)

    # --- helpers ------------------------------------------------------------------------------

    def _fenced(
        self,
        slot: Slot,
        token: str,
        values: Mapping[str, str | bytes],
        delete: tuple[str, ...],
        *,
        extra_ms: int = 0,
        opens: bool = False,
        and_read: str | None = None,
    ) -> dict[str, str]:
        """The fenced write; with ``and_read``, that hash is read after it in the same round
        trip and returned (EVAL there, not EVALSHA: a pipeline cannot load a lost script)."""
        pairs = [item for pair in values.items() for item in pair]
        lease = self._lease_ms + extra_ms
        args: list[EncodableT] = [
            token,
            lease,
            self._keep_s,
            slot.id if opens else "",
            len(values),
            *pairs,
            *delete,
        ]
        read: dict[str, str] = {}
        with translate_errors(self._r):
            if and_read is None:
                ok = self._write(keys=self._keys(slot), args=args)
            else:
                pipe = self._r.pipeline(transaction=False)
                pipe.execute_command("EVAL", _WRITE, 3, *self._keys(slot), *args)
                pipe.hgetall(and_read)
                ok, read = pipe.execute()
        if not ok:
            raise ClaimLost(
                f"lost the claim on digest slot {slot.digest} {slot.id} (its lease ran out); "
                "stopping so that the new holder alone posts"
            )
        return read


#: The record of a slot nobody started, the one every digest's claim finds: one object for
#: all (a frozen dataclass costs ~15K instructions to make), its ``ts`` read-only so that no
#: run can change what every other run is handed.
_NEW = SlotRecord("new", ts=MappingProxyType({}))


def _record(raw: Mapping[str, str]) -> SlotRecord | None:
    """A slot record from its hash (None if there is none)."""
    if not raw:
        return None
    return SlotRecord(
        state=raw.get("state", "posting"),  # type: ignore[arg-type]
        plan=_plan_from_json(raw["plan"]) if "plan" in raw else None,
        ts={int(k[3:]): v for k, v in raw.items() if k.startswith("ts:")},
        pending=int(raw["pending"]) if "pending" in raw else None,
        reason=raw.get("reason", ""),
        who=raw.get("who", ""),
        stale=frozenset(int(k[6:]) for k in raw if k.startswith("stale:")),
        failures=int(raw.get("failures", "0")),
        started_at=dt.datetime.fromisoformat(raw["started_at"]) if "started_at" in raw else None,
    )


def _outage_field(slot: Slot) -> str:
    """The slot's field in the outage record (what the recovery notice lists)."""
    return f"slot:{slot.digest}:{slot.id}"


def _claim(answer: list[Any]) -> Claim:
    """The claim script's answer, decoded."""
    status, detail = _text(answer[0]), _text(answer[1])
    if status == "busy":
        return Claim("busy", SlotRecord("posting"), retry_in=max(int(detail), 0) / 1000)
    record = _record(_flat_hash(answer[2]))
    if status == "finished":
        return Claim("finished", record or SlotRecord(detail))  # type: ignore[arg-type]
    last = _text(answer[3])
    previous = json.loads(last)["risks"] if last else None
    return Claim("claimed", record or _NEW, previous=previous)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _flat_hash(flat: list[bytes | str]) -> dict[str, str]:
    """A hash as a script returns it: HGETALL's flat list of fields and values."""
    if not flat:  # none (a new slot's record, the outage record): ~6K instructions spared
        return {}
    items = [_text(item) for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def _plan_json(plan: DigestPlan) -> bytes:
    """The plan as compact JSON, UTF-8 encoded as Redis stores it. Each message's blocks are
    the renderer's own JSON text when it kept it (:attr:`Message.blocks_json`), and the
    exposures the exposure log's texts (:attr:`DigestPlan.exposures_json`) and the risks
    shown the plan's own (:attr:`DigestPlan.shown_json`), spliced in rather than encoded a
    second time. Encoded piece by piece and joined once as bytes: the blocks'
    text holds emoji, four bytes a character as a ``str``, and each concatenation of the
    whole plan as text copied all of them again (~250k instructions a digest)."""
    pieces = [b'{"messages":[']
    for number, message in enumerate(plan.messages):
        blocks = message.blocks_json
        pieces += (
            b'{"text":' if number == 0 else b',{"text":',
            compact_json(message.text).encode(),
            b',"blocks":',
            (compact_json(message.blocks) if blocks is None else blocks).encode(),
            b"}",
        )
    pieces += (
        b'],"snapshot_id":',
        compact_json(plan.snapshot_id).encode(),
        b',"shown":',
        plan.shown_json.encode(),
        b',"banner":',
        compact_json(plan.banner).encode(),
        b',"paused":true' if plan.paused else b',"paused":false',
        b',"exposures":[',
        ",".join(plan.exposures_json).encode(),
        b"]}",
    )
    return b"".join(pieces)


def _plan_from_json(text: str | bytes) -> DigestPlan:
    data = json.loads(text)
    return DigestPlan(
        messages=tuple(Message(**message) for message in data["messages"]),
        snapshot_id=data["snapshot_id"],
        shown=data["shown"],
        banner=data["banner"],
        paused=data.get("paused", False),
        exposures=tuple(Exposure(**exposure) for exposure in data.get("exposures", [])),
    )
