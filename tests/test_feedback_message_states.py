"""What the refresh drain reads to redraw messages: every due message in one round trip, the
same as reading each one on its own (real Redis and the embedded store)."""

from __future__ import annotations

import json

import pytest
import redis

from bot.feedback.config import FeedbackConfig
from bot.feedback.events import MessageRef
from bot.feedback.store import FeedbackStore
from tests.test_feedback_store import event


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> FeedbackStore:
    return FeedbackStore(redis_client, FeedbackConfig(), prefix=key_prefix)


def test_messages_are_read_together_as_each_reads_alone(store: FeedbackStore) -> None:
    digest, card, untouched = (
        MessageRef("C1", "1.1"),
        MessageRef("C2", "2.2"),
        MessageRef("C3", "3.3"),
    )
    body = json.dumps({"text": "Churn risk — ✓", "blocks": [{"type": "divider"}]})
    store.keep_message(digest, body)
    store.set_opted_out("U0ANON0001", True)
    # A digest a whole channel answered: many fields, names in odd characters, anonymous ones.
    users = [f"U0{n:08d}" for n in range(300)] + ["U0ANON0001", 'W\x1e"é\\']
    for n, user in enumerate(users):
        kind = ("helpful", "not_helpful", "action_done")[n % 3]
        account = f"ACC-{n % 7:06d}"
        store.record(event(user, kind, account=account), user=user, message=digest)
    store.record(event("U0CSM00001"), user="U0CSM00001", message=card)

    states = store.message_states([digest, card, untouched])

    assert [state.body for state in states] == [json.loads(body), None, None]
    assert states == [store.message_states([m])[0] for m in (digest, card, untouched)]
    assert [state.choices for state in states][1:] == [
        {"ACC-000001": {"helpful": ["U0CSM00001"]}},
        {},
    ]
    assert states[0].choices["ACC-000000"]["helpful"][:2] == ["U000000000", "U000000021"]
    assert None in states[0].choices["ACC-000006"]["helpful"], "the opted-out one, unnamed"
    assert store.message_states([]) == []
