"""The feedback stream against the real Redis (and the embedded store): once, private, trimmed."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from bot.feedback.config import FeedbackConfig
from bot.feedback.events import Correction, FeedbackEvent, Kind, MessageRef, idempotency_key
from bot.feedback.outcomes import Outcome
from bot.feedback.store import FeedbackStore, RewriteRunning, forgotten_idem
from bot.render.feedback import FeedbackRef

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
SECRET = b"test-secret"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def event(
    user: str,
    kind: Kind = "helpful",
    *,
    account: str = "ACC-000001",
    at: dt.datetime = NOW,
    correction: Correction | None = None,
) -> FeedbackEvent:
    ref = FeedbackRef(
        account, "20261123T090000-abc", "20261123-abcdef0123", 0.81, "usage-drop", "digest"
    )
    return FeedbackEvent(
        event_id=uuid.uuid4().hex,
        idem=idempotency_key(SECRET, user, account, ref.snapshot_id, kind),
        kind=kind,
        ref=ref,
        at=at,
        segment="smb",
        as_of="2026-11-23",
        correction=correction,
    )


def everything(client: redis.Redis, prefix: str) -> str:
    """Every key under ``prefix`` with its whole content, as text."""
    read = {
        "stream": client.xrange,
        "hash": client.hgetall,
        "set": client.smembers,
        "string": client.get,
        "zset": lambda key: client.zrange(key, 0, -1),
    }
    return " ".join(
        f"{key}={read[client.type(key)](key)}" for key in client.scan_iter(match=f"{prefix}:*")
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str, clock: Clock) -> FeedbackStore:
    return FeedbackStore(
        redis_client, FeedbackConfig(retention_days=30), prefix=key_prefix, clock=clock
    )


def test_an_event_is_stored_once_and_read_back_whole(store: FeedbackStore) -> None:
    correction = Correction("renewed", ("renewal",), "reconnect", "", "Signed for 2 years")
    first = store.record(
        event("U0CSM00001", "correction", correction=correction), user="U0CSM00001"
    )
    again = store.record(
        event("U0CSM00001", "correction", correction=correction), user="U0CSM00001"
    )
    assert first.fresh
    assert not again.fresh
    assert again.entry_id == first.entry_id
    [stored] = list(store.events())
    assert stored.correction == correction
    assert (stored.user, stored.consent, stored.kind) == ("U0CSM00001", "identified", "correction")
    assert stored.entry_id == first.entry_id
    assert stored.at == NOW


def test_any_text_survives_the_write_unchanged(store: FeedbackStore) -> None:
    """The fields travel to the script as one JSON argument: quotes, escapes, emoji outside
    the basic plane, other scripts and control characters come back as they went in."""
    note = 'Said "no" \\ twice;\nnext: 🙂🚀 Ünïcödé 日本語 \t\x01 end'
    correction = Correction("not_at_risk", (), "", 'Call "the" CFO 📞', note)
    store.record(event("U0CSM00001", "correction", correction=correction), user="U0CSM00001")
    [stored] = list(store.events())
    assert stored.correction == correction


def body_of(store: FeedbackStore, message: MessageRef) -> dict[str, Any] | None:
    """The text and blocks kept for ``message``, as a refresh reads them."""
    return store.message_states([message])[0].body


def choices_of(
    store: FeedbackStore, message: MessageRef
) -> dict[str, dict[Kind, list[str | None]]]:
    """Who answered what on ``message``, as a refresh reads it."""
    return store.message_states([message])[0].choices


def test_a_click_queues_its_refresh_and_keeps_its_message_in_the_same_write(
    store: FeedbackStore, redis_client: redis.Redis
) -> None:
    message = MessageRef("C1", "1.2")
    body = '{"text":"digest","blocks":[{"type":"divider"}]}'
    store.set_opted_out("U0OMAR0001", True)
    store.record(
        event("U0CSM00001"), user="U0CSM00001", message=message, refresh="job-1", message_body=body
    )
    store.record(event("U0OMAR0001"), user="U0OMAR0001", message=message, refresh="job-2")
    store.record(event("U0OMAR0001"), user="U0OMAR0001", message=message, refresh="job-3")
    store.record(event("U0CSM00001", "action_done"), user="U0CSM00001", message=message)
    queued = [fields for _, fields in redis_client.xrange(store.refresh_stream)]
    assert queued == [
        {"job": "job-1", "anonymous": "0"},
        {"job": "job-2", "anonymous": "1"},
        {"job": "job-3", "anonymous": "1"},  # a repeat is shown again too
    ]
    assert body_of(store, message) == {"text": "digest", "blocks": [{"type": "divider"}]}
    assert body_of(store, MessageRef("C1", "9.9")) is None
    store.keep_message(MessageRef("C1", "9.9"), body)
    assert body_of(store, MessageRef("C1", "9.9")) == body_of(store, message)


def test_racing_clicks_write_one_entry(store: FeedbackStore, redis_client: redis.Redis) -> None:
    start = threading.Barrier(16)

    def click(_: int) -> bool:
        start.wait(timeout=10)
        return store.record(event("U0CSM00001"), user="U0CSM00001").fresh

    with ThreadPoolExecutor(max_workers=16) as pool:
        fresh = list(pool.map(click, range(16)))
    assert fresh.count(True) == 1
    assert redis_client.xlen(store.stream) == 1


def test_every_entry_carries_its_own_idempotency_field_and_readers_use_it(
    store: FeedbackStore, redis_client: redis.Redis
) -> None:
    """Even an entry some other writer duplicated (a blind retry of XADD) is read once."""
    store.record(event("U0CSM00001"), user="U0CSM00001")
    [(_, fields)] = redis_client.xrange(store.stream)
    assert len(fields["idem"]) == 32
    redis_client.xadd(store.stream, fields)
    assert len(list(store.events())) == 1


def test_opt_out_is_applied_inside_the_write(store: FeedbackStore) -> None:
    store.set_opted_out("U0CSM00001", True)
    assert store.is_opted_out("U0CSM00001")
    recorded = store.record(event("U0CSM00001"), user="U0CSM00001", message=MessageRef("C1", "1.2"))
    assert recorded.anonymous
    store.set_opted_out("U0CSM00001", False)
    store.record(
        event("U0CSM00001", "action_done"), user="U0CSM00001", message=MessageRef("C1", "1.2")
    )
    anonymous, named = list(store.events())
    assert (anonymous.user, anonymous.consent) == (None, "anonymous")
    assert (named.user, named.consent) == ("U0CSM00001", "identified")
    assert choices_of(store, MessageRef("C1", "1.2")) == {
        "ACC-000001": {"helpful": [None], "action_done": ["U0CSM00001"]}
    }


def test_events_older_than_the_retention_window_are_removed(
    store: FeedbackStore, clock: Clock
) -> None:
    store.record(event("U1", at=NOW), user="U1")
    store.record(event("U2", at=NOW + dt.timedelta(days=20)), user="U2")
    clock.now = NOW + dt.timedelta(days=31)
    assert store.trim() == 1
    assert [e.user for e in store.events()] == ["U2"]
    # Writing trims too: a month later, the next click removes what fell out of the window.
    clock.now = NOW + dt.timedelta(days=60)
    store.record(event("U3", at=clock.now), user="U3")
    assert [e.user for e in store.events()] == ["U3"]


def test_a_clock_behind_the_stream_still_appends_in_order(store: FeedbackStore) -> None:
    """Another process's clock ahead of ours: ids keep increasing, nothing is refused."""
    late = store.record(event("U1", at=NOW + dt.timedelta(minutes=5)), user="U1")
    early = store.record(event("U2", at=NOW), user="U2")
    assert [e.entry_id for e in store.events()] == [late.entry_id, early.entry_id]


def test_forget_rewrites_the_stream_without_the_user_keeping_ids_and_others(
    store: FeedbackStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    message = MessageRef("C1", "1.2")
    mine = store.record(event("U0CSM00001"), user="U0CSM00001", message=message)
    theirs = store.record(event("U0OMAR0001"), user="U0OMAR0001", message=message)
    store.record(event("U0CSM00001", "action_done", account="ACC-2"), user="U0CSM00001")
    assert store.forget("U0CSM00001") == 2
    events = list(store.events())
    assert [e.entry_id for e in events][:2] == [mine.entry_id, theirs.entry_id]
    assert [(e.user, e.consent) for e in events] == [
        (None, "forgotten"),
        ("U0OMAR0001", "identified"),
        (None, "forgotten"),
    ]
    assert events[0].idem == forgotten_idem(mine.entry_id)
    assert "U0CSM00001" not in everything(redis_client, key_prefix), "no copy of the id is left"
    assert choices_of(store, message) == {"ACC-000001": {"helpful": [None, "U0OMAR0001"]}}
    # The forgotten user's claims are gone; someone else's stay.
    assert not store.record(event("U0OMAR0001"), user="U0OMAR0001").fresh
    assert store.forget("U0NOBODY01") == 0


def test_only_one_forget_runs_at_a_time(
    store: FeedbackStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    redis_client.set(f"{key_prefix}:{{default}}:feedback:rewrite:lock", "someone", ex=60)
    with pytest.raises(RewriteRunning, match="another `churnbot feedback forget`"):
        store.forget("U0CSM00001")


def test_outcomes_replace_the_previous_ones(store: FeedbackStore) -> None:
    first = {
        "A": Outcome(dt.date(2026, 5, 1), dt.date(2026, 4, 27)),
        "B": Outcome(None, dt.date(2026, 11, 16)),
    }
    store.set_outcomes(first)
    assert store.outcomes(["A", "B", "C"]) == first
    store.set_outcomes({"C": Outcome(None, dt.date(2026, 11, 16))})
    assert set(store.outcomes(["A", "B", "C"])) == {"C"}


def test_a_fence_claims_once(store: FeedbackStore) -> None:
    assert store.claim_once("weekly:2026-11-16", dt.timedelta(days=14))
    assert not store.claim_once("weekly:2026-11-16", dt.timedelta(days=14))
