"""What a message looks like after people answered: a context line under each account.

Why a line and not greyed-out buttons: a digest is shared by a channel of CSMs, so one
person's click must not take the buttons away from everybody else. The line says who answered
what ("👍 <@U1>, <@U2> · ✅ <@U3>"), anonymous answers are counted without a name, and the
buttons stay for the next person. The line replaces the divider under the account (or an
earlier line), so a full digest message never gains a block; if the names would push the
message past Slack's size limit the lines fall back to counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from bot.feedback.events import Kind
from bot.render.digest import MAX_BLOCKS_JSON, MAX_MESSAGE_BLOCKS
from bot.render.feedback import ACTIONS_PREFIX

Choices = Mapping[str, Mapping[Kind, Sequence[str | None]]]

KIND_EMOJI: dict[Kind, str] = {
    "helpful": "👍",
    "not_helpful": "👎",
    "correction": "✏️",
    "action_done": "✅",
}
KIND_LABEL: dict[Kind, str] = {
    "helpful": "helpful",
    "not_helpful": "not helpful",
    "correction": "a correction",
    "action_done": "action done",
}
#: Names shown per answer before "and N more".
MAX_NAMES = 5
_USER = re.compile(r"[UW][A-Z0-9]{2,}")
LINE_PREFIX = "fbc:"


def _names(users: Sequence[str | None], *, names: bool) -> str:
    """ "<@U1>, <@U2> and 3 more": only well-formed user ids become mentions."""
    named = [u for u in users if names and u is not None and _USER.fullmatch(u)]
    shown = named[:MAX_NAMES]
    rest = len(users) - len(shown)
    if not shown:
        return str(len(users))
    text = ", ".join(f"<@{user}>" for user in shown)
    return f"{text} and {rest} more" if rest else text


def choice_line(answers: Mapping[Kind, Sequence[str | None]], *, names: bool = True) -> str:
    """One account's line, in a fixed order of answers; empty when nobody answered."""
    parts = [
        f"{KIND_EMOJI[kind]} {_names(answers[kind], names=names)}"
        for kind in KIND_EMOJI
        if answers.get(kind)
    ]
    return " · ".join(parts)


def _line_block(account_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "block_id": LINE_PREFIX + account_id,
        "elements": [{"type": "mrkdwn", "text": text}],
    }


def _apply(
    blocks: Sequence[Mapping[str, Any]], choices: Choices, *, names: bool
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        if block_id.startswith(LINE_PREFIX):
            continue  # an earlier line: rebuilt below from the current choices
        after_line = bool(result) and str(result[-1].get("block_id", "")).startswith(LINE_PREFIX)
        if block.get("type") == "divider" and after_line:
            continue  # the line takes the divider's place
        result.append(dict(block))
        if block.get("type") == "actions" and block_id.startswith(ACTIONS_PREFIX):
            account_id = block_id.removeprefix(ACTIONS_PREFIX)
            line = choice_line(choices.get(account_id, {}), names=names)
            if line:
                result.append(_line_block(account_id, line))
    return result


def with_choices(blocks: Sequence[Mapping[str, Any]], choices: Choices) -> list[dict[str, Any]]:
    """``blocks`` with each answered account's line put (or refreshed) under its buttons.

    Names when they fit Slack's limits, counts otherwise.
    """
    named = _apply(blocks, choices, names=True)
    size = len(json.dumps(named, separators=(",", ":"), ensure_ascii=False))
    if len(named) <= MAX_MESSAGE_BLOCKS and size <= MAX_BLOCKS_JSON:
        return named
    return _apply(blocks, choices, names=False)


def failure_text(status: Literal["not_saved", "unconfirmed"], *, retry: str) -> str:
    """What to tell someone whose answer was not (or not surely) saved; ``retry`` says how
    to try again ("click the button", "press Save")."""
    if status == "not_saved":
        return (
            "⚠️ Your feedback was *not* saved: churnbot cannot reach its data store right now. "
            f"Please {retry} again in a minute; a repeat never counts twice."
        )
    return (
        "⚠️ churnbot could not confirm that your feedback was saved (its data store is slow "
        f"right now). Please {retry} again in a minute; if it was saved, the repeat will not "
        "count twice."
    )


def broken_button_text() -> str:
    return (
        "⚠️ That button could not be read, so nothing was saved. Ask for the account again "
        "with `/churn ACCOUNT` and answer there."
    )


def recorded_text(kind: Kind, *, anonymous: bool) -> str:
    """The confirmation shown when the message itself cannot be updated."""
    who = " (without your name: you opted out)" if anonymous else ""
    return f"{KIND_EMOJI[kind]} Saved: {KIND_LABEL[kind]}{who}. Thank you."
