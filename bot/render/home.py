"""A CSM's own book: the App Home tab (with system status for admins) and ``/churn mine``.

Why admins see status here: when the kill switch is on or a scoring run failed, the person
who can act needs the reason, who tripped it and what runs next without asking anyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.views import View

from bot.render.parts import (
    MAX_LIST_LINE,
    account_summary,
    banner_block,
    capped,
    context,
    divider,
    header,
    list_lines,
    person_slot,
    section,
    show_button,
)
from bot.render.text import fit_mrkdwn, minute_utc

if TYPE_CHECKING:  # annotations only: the snapshot store needs numpy
    from bot.state.killswitch import KillSwitchState
    from bot.state.snapshots import SnapshotMeta

#: Most accounts the Home tab lists; the tab's 100-block limit must also hold the status.
MAX_HOME_ACCOUNTS = 20
#: Most accounts ``/churn mine`` lists, and its context's budget: with ``MAX_LIST_LINE`` they
#: keep the answer under Slack's ~13k characters of blocks whatever the data (a test proves it).
MAX_MINE_ACCOUNTS = 10
MAX_MINE_CONTEXT = 500
#: For a Slack user churnbot cannot map to an owner CSM: the one thing that helps is the mapping.
NOT_MAPPED = (
    "I don't know which accounts are yours: ask an admin to map your Slack user "
    "to your CSM name in config/slack.yaml (owners)."
)
#: For a user mapped to an owner who has no account in the scores (a wrong email, a new CSM).
_NO_ACCOUNTS = (
    "No account in the current scores belongs to {}. If some are yours, ask an admin to map "
    "your Slack user to your CSM name in config/slack.yaml (owners)."
)


@dataclass(frozen=True)
class AdminStatus:
    """What an admin sees: the serving model, the last scoring run, the kill switch, and
    the next digests as (channel, when) pairs, soonest first."""

    champion_model: str | None
    last_run: SnapshotMeta | None
    kill_switch: KillSwitchState
    next_digests: Sequence[tuple[str, str]] = ()


def home_view(
    *,
    user_cards: Sequence[Mapping[str, Any]],
    status: AdminStatus | None,
    banner: str | None,
    owner: str | None,
    scores: bool = True,
) -> dict[str, Any]:
    """The Home tab for ``views.publish``; ``status`` is None for anyone but an admin.

    ``owner`` is the CSM the user maps to (None: not mapped) and ``user_cards`` their
    accounts, riskiest first, whatever their risk: an empty list then means the mapping finds
    nothing, and the user is told how to fix it rather than reassured. ``scores`` False: there
    are no scores to show at all (the banner says why), so nothing is said about accounts.
    """
    blocks = [header("Your accounts at risk")]
    if banner:
        blocks.append(banner_block(banner))
    shown, more = capped(user_cards, MAX_HOME_ACCOUNTS)
    blocks += [section(account_summary(card, reasons=1)) for card in shown]
    if more:
        blocks.append(context(fit_mrkdwn("… and {} more.", more)))
    if not user_cards and (scores or owner is None):
        blocks.append(_no_accounts(owner))
    if status is not None:
        blocks += _status_blocks(status)
    return View(type="home", blocks=blocks).to_dict()


def mine_blocks(
    owner: str, cards: Sequence[Mapping[str, Any]], *, banner: str | None, freshness: str
) -> list[dict[str, Any]]:
    """The ephemeral ``/churn mine`` answer: the owner's riskiest accounts, each with a
    "Show" button for the full card; cards come ordered by risk, highest first."""
    blocks = [banner_block(banner)] if banner else []
    blocks.append(header("Your accounts most at risk"))
    blocks.append(context(fit_mrkdwn("{} · {}", owner, freshness, limit=MAX_MINE_CONTEXT)))
    shown, more = capped(cards, MAX_MINE_ACCOUNTS)
    blocks += [
        section(
            account_summary(card, reasons=1, limit=MAX_LIST_LINE),
            accessory=show_button(card),
        )
        for card in shown
    ]
    if more:
        blocks.append(context(fit_mrkdwn("… and {} more.", more)))
    if not cards:
        blocks.append(_no_accounts(owner))
    return blocks


def _no_accounts(owner: str | None) -> dict[str, Any]:
    """How to get mapped, for a user whose mapping finds no account."""
    if owner is None:
        return section(fit_mrkdwn("{}", NOT_MAPPED))
    return section(fit_mrkdwn(_NO_ACCOUNTS, owner, limit=MAX_LIST_LINE))


def _status_blocks(status: AdminStatus) -> list[dict[str, Any]]:
    return [
        divider(),
        header("System status (admins)"),
        section(fit_mrkdwn("*Champion model:* {}", status.champion_model or "none registered")),
        section(_run_text(status.last_run)),
        section(_switch_text(status.kill_switch)),
        section(_schedule_text(status.next_digests)),
    ]


def _run_text(run: SnapshotMeta | None) -> str:
    if run is None:
        return "*Last scoring run:* none yet"
    checks, check_pieces = list_lines(
        "{} {}: {}",
        [
            ("✅" if check.get("ok") else "❌", check.get("name", "?"), check.get("message", ""))
            for check in run.health
        ],
    )
    return fit_mrkdwn(
        "*Last scoring run:* `{}` · data as of {} · {}\n" + checks,
        run.snapshot_id,
        run.as_of,
        "✅ healthy" if run.healthy else "❌ unhealthy",
        *check_pieces,
    )


def _switch_text(state: KillSwitchState) -> str:
    if state.on:
        return fit_mrkdwn(
            f"*Kill switch:* 🛑 ON — {{}}\n_tripped by {person_slot(state.who)} ({{}}) at {{}}_",
            state.reason,
            state.who,
            state.source,
            minute_utc(state.when),
        )
    if state.source == "none":
        return "*Kill switch:* off (never tripped)"
    return fit_mrkdwn(
        f"*Kill switch:* off\n_last reset by {person_slot(state.who)} at {{}}_",
        state.who,
        minute_utc(state.when),
    )


def _schedule_text(next_digests: Sequence[tuple[str, str]]) -> str:
    if not next_digests:
        return "*Next digests:* none scheduled"
    lines, pieces = list_lines("• {} — {}", next_digests)
    return fit_mrkdwn("*Next digests:*\n" + lines, *pieces)
