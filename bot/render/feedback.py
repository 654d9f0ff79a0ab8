"""The four feedback buttons under every account, and the reading of what a click sends back.

Why a button carries only a short key (which answer is the action_id; which account is the
block_id; the value is the surface and the snapshot id): feedback must be stored with the
model version and the exact score the CSM saw, and the snapshot holds all of it, so the
listener reads it back from there (:class:`FeedbackKey`). Carrying the whole reference in
every button's value, as buttons once did, cost a third of a digest message and split a
10-account digest in two. Those old values still arrive from messages already posted, so
:func:`parse_feedback_value` keeps reading them. Everything a click sends back is untrusted
text: both readers validate every field and raise ValueError with what is wrong.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bot.render.parts import MAX_ACCOUNT_ID, account_id_of, button

Surface = Literal["digest", "card"]

#: action_id -> button label. The action_id, not the value, says which answer was given.
FEEDBACK_BUTTONS = {
    "feedback_helpful": "👍 Helpful",
    "feedback_not_helpful": "👎 Not helpful",
    "feedback_correct": "Correct…",
    "feedback_action_done": "✅ Action done",
}
#: What Block Kit allows in a button value (and the most a click can send back).
MAX_BUTTON_VALUE = 2000
#: The block_id of an account's buttons is this prefix and the account id.
ACTIONS_PREFIX = "fb:"
_KEYS = {"a", "s", "m", "r", "act", "f"}
#: Surface <-> the one letter a button value spends on it.
_SURFACE_CODE: dict[Surface, str] = {"digest": "d", "card": "c"}
_CODE_SURFACE = {code: surface for surface, code in _SURFACE_CODE.items()}
#: A snapshot id as the snapshot store accepts it (1-128 characters, no whitespace, braces or
#: control characters).
_SNAPSHOT_ID = re.compile(r"[^\s{}\x00-\x1f]{1,128}")


@dataclass(frozen=True)
class FeedbackRef:
    """What a feedback click refers to: the score the CSM saw, as it was when shown."""

    account_id: str
    snapshot_id: str
    model_version: str
    risk: float
    action_rule: str
    surface: Surface

    def to_value(self) -> str:
        """Compact JSON (short keys), as buttons carried it before :class:`FeedbackKey`; the
        correction modal still keeps its reference this way in its private metadata."""
        return json.dumps(
            {
                "a": self.account_id,
                "s": self.snapshot_id,
                "m": self.model_version,
                "r": self.risk,
                "act": self.action_rule,
                "f": self.surface,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class FeedbackKey:
    """What a button carries: which account of which snapshot, shown where. The snapshot
    store resolves it (:meth:`ref`) into the full :class:`FeedbackRef`."""

    account_id: str
    snapshot_id: str
    surface: Surface

    def to_value(self) -> str:
        """The button value, e.g. ``d|20261123T060000-ab12cd`` (the account is in the
        block_id, which every click sends back with the value)."""
        return f"{_SURFACE_CODE[self.surface]}|{self.snapshot_id}"

    def ref(self, card: Mapping[str, Any]) -> FeedbackRef:
        """The reference of this key's account as ``card`` (read from the key's snapshot)
        shows it: the model version, the risk as shown (4 digits) and the action's rule."""
        return FeedbackRef(
            account_id=self.account_id,
            snapshot_id=self.snapshot_id,
            model_version=str(card["model_version"]),
            risk=round(float(card["risk"]), 4),
            action_rule=str(card["action"]["rule"]),
            surface=self.surface,
        )


def feedback_actions(
    card: Mapping[str, Any], *, snapshot_id: str, surface: Surface
) -> dict[str, Any]:
    """An actions block with the four feedback buttons for one account.

    The block_id names the account so a message with many accounts stays valid (block ids
    must be unique) and a listener can tell which account's row was clicked. The buttons are
    the same for every account of a snapshot on a surface, so its blocks share them
    (:func:`_buttons`): read-only, as every rendered block is once made.
    """
    account_id = account_id_of(card)
    return {
        "type": "actions",
        "block_id": ACTIONS_PREFIX + account_id,
        "elements": _buttons(snapshot_id, surface),
    }


@functools.lru_cache(maxsize=64)
def _buttons(snapshot_id: str, surface: Surface) -> list[dict[str, Any]]:
    """The four feedback buttons of a snapshot on a surface (the account is in the block_id),
    its snapshot id checked: made once for all the accounts of a digest, whose blocks share
    them (building them anew was ~15% of rendering a digest's accounts)."""
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError(
            "The 'snapshot_id' parameter of feedback_actions must be 1-128 characters without "
            f"whitespace, braces or control characters. Got {snapshot_id[:200]!r} instead."
        )
    value = FeedbackKey("", snapshot_id, surface).to_value()
    return [button(label, action_id, value) for action_id, label in FEEDBACK_BUTTONS.items()]


def parse_feedback_action(action: Mapping[str, Any]) -> FeedbackKey | FeedbackRef:
    """What a clicked feedback button refers to: a :class:`FeedbackKey` for the store to
    resolve, or, from a message posted before short keys, the full :class:`FeedbackRef` its
    JSON value carries. ValueError (never another error) for anything else, so a forged or
    truncated click is refused with a message instead of crashing the listener."""
    value = action.get("value")
    if isinstance(value, str) and value.startswith("{"):
        return parse_feedback_value(value)
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        raise ValueError(
            f"A feedback value must be a string of at most {MAX_BUTTON_VALUE} characters. "
            f"Got {str(value)[:80]!r} instead."
        )
    code, _, snapshot_id = value.partition("|")
    if code not in _CODE_SURFACE or not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError(
            "A feedback value must be a surface letter (d or c), '|' and a snapshot id, or the "
            f"JSON of an older button. Got {value[:80]!r} instead."
        )
    block_id = action.get("block_id")
    account_id = block_id[len(ACTIONS_PREFIX) :] if isinstance(block_id, str) else ""
    if (
        not isinstance(block_id, str)
        or not block_id.startswith(ACTIONS_PREFIX)
        or not 0 < len(account_id) <= MAX_ACCOUNT_ID
        or not account_id.isprintable()
    ):
        raise ValueError(
            f"A feedback button's block_id must be '{ACTIONS_PREFIX}' and an account id of 1 to "
            f"{MAX_ACCOUNT_ID} printable characters. Got {str(block_id)[:80]!r} instead."
        )
    return FeedbackKey(account_id, snapshot_id, _CODE_SURFACE[code])


def parse_feedback_value(value: str) -> FeedbackRef:
    """The reference :meth:`FeedbackRef.to_value` wrote (an older button's value, or the
    correction modal's metadata); ValueError (never another error) for anything else."""
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        raise ValueError(
            f"A feedback value must be a string of at most {MAX_BUTTON_VALUE} characters. "
            f"Got {str(value)[:80]!r} instead."
        )
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"A feedback value must be JSON ({exc}). Got {value[:80]!r}.") from None
    if not isinstance(data, dict) or set(data) != _KEYS:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"A feedback value must be a JSON object with keys {sorted(_KEYS)}. Got {found}."
        )
    for key in ("a", "s", "m", "act"):
        # Printable only: a control character (the store's field separator among them) in an
        # id would spoil the "who answered what" line of the whole message.
        if not isinstance(data[key], str) or not data[key].strip() or not data[key].isprintable():
            raise ValueError(
                f"The '{key}' field of a feedback value must be a non-empty string of printable "
                f"characters. Got {data[key]!r} instead."
            )
    risk = data["r"]
    if (
        isinstance(risk, bool)
        or not isinstance(risk, int | float)
        or not math.isfinite(risk)
        or not 0 <= risk <= 1
    ):
        raise ValueError(
            f"The 'r' field of a feedback value must be a risk between 0 and 1. "
            f"Got {risk!r} instead."
        )
    if data["f"] not in get_args(Surface):
        raise ValueError(
            f"The 'f' field of a feedback value must be one of {list(get_args(Surface))}. "
            f"Got {data['f']!r} instead."
        )
    return FeedbackRef(
        account_id=data["a"],
        snapshot_id=data["s"],
        model_version=data["m"],
        risk=float(risk),
        action_rule=data["act"],
        surface=data["f"],
    )
