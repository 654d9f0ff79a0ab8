"""A digest run after Redis lost its Lua scripts (a restart, SCRIPT FLUSH) posts as before.

The claim and the plan's first read go by EVALSHA, so a server without the scripts answers
NOSCRIPT: the claim then runs nothing and goes again with its source, and the read, which
writes nothing, is read again loading its script. Every part still goes out once, with the
same text as a run on a server that had them, and the slot is finished once.

On the embedded store, a server of this test's own: SCRIPT FLUSH on the shared real Redis
would pull the scripts from under other people's runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.digest.claims import _CLAIM
from bot.state import connect
from tests.slack_harness import publish
from tests.test_digest_posting import DUE, TWO_PARTS, Rig, audit_whats, make_rig, maria_book

pytestmark = pytest.mark.clock


@pytest.fixture
def rig() -> Iterator[Rig]:
    with make_rig(connect(None)) as made:
        publish(made.deps, maria_book(TWO_PARTS))
        yield made


@pytest.mark.parametrize("lost", ["every script", "the read's"])
def test_a_run_after_the_server_lost_its_scripts_posts_each_part_once(rig: Rig, lost: str) -> None:
    rig.redis.script_flush()
    if lost == "the read's":
        rig.redis.script_load(_CLAIM)  # the claim goes by its SHA; only the read is refused

    outcome = rig.poster.run(rig.digest(), DUE)

    assert outcome.status == "posted"
    parts = rig.parts()
    assert [(p["part"], p["parts"]) for p in parts] == [(1, 2), (2, 2)]
    assert list(outcome.ts) == [p["ts"] for p in parts]
    rig.redis.script_flush()
    again = rig.poster.run(rig.digest(), DUE)  # the claim refused, then sent with its source
    assert again.status == "already_done"
    assert again.ts == outcome.ts
    assert audit_whats(rig).count(("digest posted", "done")) == 1


def test_the_text_is_what_a_server_with_the_scripts_gives(rig: Rig) -> None:
    with make_rig(connect(None)) as known:
        publish(known.deps, maria_book(TWO_PARTS))
        assert known.poster.run(known.digest(), DUE).status == "posted"
        rig.redis.script_flush()
        assert rig.poster.run(rig.digest(), DUE).status == "posted"
        assert shown(rig) == shown(known)
        assert len(shown(rig)) == 2


def shown(rig: Rig) -> list[str]:
    """Each message's text and blocks, its snapshot's id (random in each rig) left out."""
    meta = rig.deps.store.latest()
    assert meta is not None
    return [
        json.dumps([m["text"], m["blocks"]]).replace(meta.snapshot_id, "<snapshot>")
        for m in rig.emulator.history(rig.digest().channel)
    ]
