"""A channel's digest, composed from the serving snapshot and the channel's previous digest.

Which snapshot and which banner come from :mod:`bot.serving` (live scores, or the last known
good one with the "using last week's data" banner, or an honest "nothing to show"), so a digest
and ``/churn`` never disagree. "New" and "moved sharply" compare with what *this channel* was
last shown, not with the previous scoring run: a CSM remembers the last digest, not the
snapshot history.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.digest.channels import DigestConfig
from bot.digest.exposures import Exposure, exposure_json
from bot.digest.holdout import NO_HOLDOUT, Holdout
from bot.render import DigestContent, Message, digest_messages
from bot.render.digest import MAX_FALLBACK_TEXT, compact_json
from bot.render.parts import header, section
from bot.render.text import fit_mrkdwn
from bot.serving import Serving, serving_of
from bot.state.killswitch import state_from
from models.spec import ProductSpec
from models.track_record import TrackRecord

if TYPE_CHECKING:  # the snapshot store needs numpy, loaded when a digest first reads cards
    from redis.client import Pipeline

    from bot.state import KillSwitch, SnapshotStore
    from bot.state.snapshots import Row, ServingTop


@dataclass(frozen=True)
class DigestPlan:
    """What one run will post, fixed before the first part goes out so that a resumed run
    posts the rest of the same digest, whatever changed in between."""

    messages: tuple[Message, ...]
    snapshot_id: str | None
    shown: Mapping[str, float]  # account id -> risk, for the next digest's marks
    banner: str | None
    #: Made while the kill switch was on. A plan made with it off is re-made, with the banner,
    #: if the switch goes on before its last part is out (every part checks when it is sent).
    paused: bool = False
    #: What the save rates learn from: each shown account, and each one the holdout kept out
    #: (recorded by the poster when the digest is out; empty in a plan stored before).
    exposures: tuple[Exposure, ...] = ()

    @functools.cached_property
    def exposures_json(self) -> tuple[str, ...]:
        """Each exposure as the exposure log keeps it (:func:`exposure_json`), encoded once
        for both the stored plan and the log (encoding them twice cost ~170k instructions a
        digest of ten)."""
        return tuple(exposure_json(exposure) for exposure in self.exposures)

    @functools.cached_property
    def shown_json(self) -> str:
        """``shown`` as compact JSON, encoded once for both the stored plan and the
        channel's previous digest that the finish records (a risk's float repr is most of
        the cost, and the two encoded the same ten)."""
        return compact_json(dict(self.shown))


def select_cards(
    store: SnapshotStore, digest: DigestConfig, snapshot_id: str
) -> list[dict[str, Any]]:
    """The digest's riskiest accounts: every owner x segment index it names, merged by risk.

    Each index answers its own top-N, so the merge of their top-Ns holds the overall top-N.
    """
    return held_back(store, digest, snapshot_id)[0]


def held_back(
    store: SnapshotStore,
    digest: DigestConfig,
    snapshot_id: str,
    holdout: Holdout = NO_HOLDOUT,
    read: Sequence[Sequence[Row]] | None = None,
    *,
    for_digest: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shown, held out): the top-N without the accounts the holdout keeps back, and those
    of them that the top-N would have shown (the control group, ``bot.digest.holdout``).
    ``read``: the rows of each of the digest's top lists (:func:`top_lists`), when they were
    read with the snapshot (:func:`first_read`); else each list is read here. ``for_digest``:
    True may leave the cards' context items and healthy reason out (the Slack digest never
    shows them)."""
    merged: dict[str, dict[str, Any]] = {}
    for i, (owner, segment) in enumerate(top_lists(digest)):
        if read is not None:
            cards = [
                row.card(for_digest=for_digest) for row in read[i] if row.risk >= digest.min_risk
            ]
        else:
            cards = store.top(
                top_wanted(digest, holdout),
                owner=owner,
                segment=segment,
                snapshot_id=snapshot_id,
                min_risk=digest.min_risk,
                for_digest=for_digest,
            )
        for card in cards:
            merged[card["account_id"]] = card
    ranked = sorted(merged.values(), key=lambda card: (-card["risk"], card["account_id"]))
    if holdout.share <= 0:  # none held back (the default): no account to test, twice each
        return ranked[: digest.max_accounts], []
    held = [card for card in ranked[: digest.max_accounts] if holdout.holds(card["account_id"])]
    shown = [card for card in ranked if not holdout.holds(card["account_id"])]
    return shown[: digest.max_accounts], held


def top_lists(digest: DigestConfig) -> list[tuple[str | None, str | None]]:
    """The (owner, segment) top lists a digest merges: every owner x segment it names (None:
    any)."""
    owners: Sequence[str | None] = digest.owners or (None,)
    segments: Sequence[str | None] = digest.segments or (None,)
    return [(owner, segment) for owner in owners for segment in segments]


def top_wanted(digest: DigestConfig, holdout: Holdout) -> int:
    """How many rows each top list answers: the digest's accounts, and with a holdout enough
    more to refill the places of those it keeps out."""
    wanted = digest.max_accounts
    if holdout.share > 0:
        wanted = min(4 * wanted, int(wanted / (1 - holdout.share)) + 5)
    return wanted


def first_read(
    store: SnapshotStore, switch: KillSwitch, digest: DigestConfig, holdout: Holdout
) -> ServingTop:
    """What a plan reads, in one call: the kill switch, the snapshot it serves and the rows
    of each of the digest's top lists (every owner x segment it merges)."""
    return store.serving_top(switch.key, top_wanted(digest, holdout), top_lists(digest))


def queue_first_read(
    pipe: Pipeline, store: SnapshotStore, switch: KillSwitch, digest: DigestConfig, holdout: Holdout
) -> Callable[[Any], ServingTop]:
    """:func:`first_read` queued on ``pipe``; returns what turns its reply into the answer.
    The poster sends it with its claim, so planning costs no round trip of its own. Sent by
    the script's SHA: :meth:`~bot.digest.claims.SlotClaims.claim_and_read` hands a NOSCRIPT
    error to the answer, which reads again."""
    return store.queue_serving_top(pipe, switch.key, top_wanted(digest, holdout), top_lists(digest))


def marks(
    cards: Sequence[Mapping[str, Any]],
    previous: Mapping[str, float] | None,
    moved_sharply: float,
) -> tuple[frozenset[str], frozenset[str]]:
    """(new, moved sharply) account ids versus the channel's previous digest.

    No previous digest marks nothing: on a channel's first digest every account would be
    "new", which tells the CSM nothing.
    """
    if previous is None:
        return frozenset(), frozenset()
    new = frozenset(c["account_id"] for c in cards if c["account_id"] not in previous)
    moved = frozenset(
        c["account_id"]
        for c in cards
        if c["account_id"] in previous
        and abs(c["risk"] - previous[c["account_id"]]) >= moved_sharply - 1e-9
    )
    return new, moved


def digest_content(
    digest: DigestConfig,
    serving: Serving,
    cards: Sequence[Mapping[str, Any]],
    previous: Mapping[str, float] | None,
    moved_sharply: float,
    owner_users: Mapping[str, str] | None = None,
    track_record: TrackRecord | None = None,
) -> DigestContent:
    """The renderer's input for a digest with something to show (``serving.meta`` set);
    ``owner_users`` (owner -> Slack user id) lets it mention owners instead of emails;
    ``track_record`` is the line on how often flagged accounts churned."""
    assert serving.meta is not None
    new, moved = marks(cards, previous, moved_sharply)
    return DigestContent(
        title=digest.heading,
        channel_label=digest.name,
        owners=digest.owners,
        segments=digest.segments,
        owner_users=owner_users or {},
        freshness=serving.freshness,
        banner=serving.banner,
        cards=cards,
        snapshot_id=serving.meta.snapshot_id,
        new_ids=new,
        moved_ids=moved,
        track_record=track_record,
    )


def unavailable_message(digest: DigestConfig, why: str) -> Message:
    """The honest digest when no trustworthy snapshot exists: never a blank, never a guess."""
    return Message(
        text=fit_mrkdwn("{}: {}", digest.heading, why, limit=MAX_FALLBACK_TEXT),
        blocks=[header(digest.heading), section(fit_mrkdwn("{}", why))],
    )


def plan_digest(
    store: SnapshotStore,
    digest: DigestConfig,
    serving: Serving,
    previous: Mapping[str, float] | None,
    *,
    moved_sharply: float,
    max_blocks: int = 50,
    max_chars: int = 12_000,
    owner_users: Mapping[str, str] | None = None,
    holdout: Holdout = NO_HOLDOUT,
    track_record: TrackRecord | None = None,
    read: Sequence[Sequence[Row]] | None = None,
) -> DigestPlan:
    """Everything a run posts, split within Slack's limits by :func:`digest_messages`;
    ``read`` as for :func:`held_back`."""
    if serving.meta is None:
        why = serving.unavailable or "no scores to show"
        return DigestPlan((unavailable_message(digest, why),), None, {}, None, serving.switch.on)
    sid = serving.meta.snapshot_id
    cards, held = held_back(store, digest, sid, holdout, read, for_digest=True)
    content = digest_content(
        digest, serving, cards, previous, moved_sharply, owner_users, track_record
    )
    messages = digest_messages(content, max_blocks=max_blocks, max_chars=max_chars)
    shown = {card["account_id"]: float(card["risk"]) for card in cards}
    exposures = tuple(
        [Exposure.from_card(card, snapshot_id=sid) for card in cards]
        + [Exposure.from_card(card, snapshot_id=sid, held_out=True) for card in held]
    )
    return DigestPlan(
        tuple(messages), sid, shown, serving.banner, serving.switch.on, exposures=exposures
    )


def plan_now(
    store: SnapshotStore,
    switch: KillSwitch,
    spec: ProductSpec,
    digest: DigestConfig,
    previous: Mapping[str, float] | None,
    *,
    moved_sharply: float,
    now: dt.datetime,
    max_blocks: int = 50,
    max_chars: int = 12_000,
    owner_users: Mapping[str, str] | None = None,
    holdout: Holdout = NO_HOLDOUT,
    track_record: TrackRecord | None = None,
    read: ServingTop | None = None,
) -> DigestPlan:
    """The digest as it would go out at ``now``: live scores, or the last good ones with the
    banner while the kill switch is on, or the honest "nothing to show"; ``holdout`` keeps
    its share of accounts out. ``read``: what :func:`queue_first_read` read with the same
    ``holdout`` (the poster's claim brought it), else it is read here."""
    if read is None:
        read = first_read(store, switch, digest, holdout)
    return plan_digest(
        store,
        digest,
        serving_of(read.meta, state_from(read.switch), spec, now),
        previous,
        moved_sharply=moved_sharply,
        max_blocks=max_blocks,
        max_chars=max_chars,
        owner_users=owner_users,
        holdout=holdout,
        track_record=track_record,
        read=read.lists,
    )
