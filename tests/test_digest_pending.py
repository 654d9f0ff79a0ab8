"""The ``pending`` mark rides on the write before each post (the plan's save for part 1, the
previous part's ``ts`` for the next): a worker that dies just before a post leaves that part
pending, and the next run looks it up in Slack, finds nothing, and posts it exactly once."""

from __future__ import annotations

import pytest

from tests.slack_harness import publish
from tests.test_digest_posting import (
    DUE,
    TWO_PARTS,
    Rig,
    WorkerKilled,
    dying,
    expire_claims,
    maria_book,
    rig,  # noqa: F401  (the fixture)
)


@pytest.mark.parametrize(
    ("die_before", "looked_up_with"),
    [(1, "conversations.history"), (2, "conversations.replies")],
)
def test_a_part_marked_pending_by_the_previous_write_is_looked_up_then_posted_once(
    rig: Rig,  # noqa: F811
    die_before: int,
    looked_up_with: str,
) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    with pytest.raises(WorkerKilled):
        rig.new_poster(dying(rig, die_before=die_before)).run(rig.digest(), DUE)
    [slot_key] = rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:slot:*")
    record = rig.redis.hgetall(slot_key)
    assert record["pending"] == str(die_before)
    assert f"ts:{die_before}" not in record
    assert [p["part"] for p in rig.parts()] == list(range(1, die_before))
    assert not rig.emulator.calls(looked_up_with)

    expire_claims(rig)
    finished = rig.new_poster().run(rig.digest(), DUE)
    assert finished.status == "posted"
    assert rig.emulator.calls(looked_up_with), "the pending part was looked up first"
    assert [p["part"] for p in rig.parts()] == [1, 2], "each part exactly once"
    first, second = rig.parts()
    assert second["thread_ts"] == first["ts"], "part 2 went into part 1's thread"
    assert "pending" not in rig.redis.hgetall(slot_key)
