"""The four feedback buttons under every account, and the reading of what a click sends back.

Why the button value carries the whole reference (account, snapshot, model version, risk,
action rule, surface): feedback must be stored with the model version and the exact score the
CSM saw, and the click must be handled without a state lookup. The value comes back from
Slack as untrusted text, so :func:`parse_feedback_value` validates every field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bot.render.parts import account_id_of, button
from bot.render.text import json_cost

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
#: What this module writes, in JSON characters: well under Block Kit's limit, so the four
#: buttons stay a small part of a message's ~13k budget.
MAX_FEEDBACK_VALUE = 500
_KEYS = {"a", "s", "m", "r", "act", "f"}


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
        """Compact JSON for a button value (short keys: the value is capped at 2,000)."""
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


def feedback_actions(
    card: Mapping[str, Any], *, snapshot_id: str, surface: Surface
) -> dict[str, Any]:
    """An actions block with the four feedback buttons for one account.

    The block_id names the account so a message with many accounts stays valid (block ids
    must be unique) and a listener can tell which account's row was clicked.
    """
    ref = FeedbackRef(
        account_id=account_id_of(card),
        snapshot_id=snapshot_id,
        model_version=card["model_version"],
        risk=round(float(card["risk"]), 4),
        action_rule=card["action"]["rule"],
        surface=surface,
    )
    value = ref.to_value()
    if json_cost(value) > MAX_FEEDBACK_VALUE:
        raise ValueError(
            f"The feedback button value of account {ref.account_id!r} must take at most "
            f"{MAX_FEEDBACK_VALUE} characters of JSON. Got {json_cost(value)} instead: "
            f"{value[:200]!r}."
        )
    buttons = [button(label, action_id, value) for action_id, label in FEEDBACK_BUTTONS.items()]
    return {"type": "actions", "block_id": f"fb:{ref.account_id}", "elements": buttons}


def parse_feedback_value(value: str) -> FeedbackRef:
    """The reference a feedback button carried; ValueError (never another error) if the value
    is not exactly what :func:`feedback_actions` writes, so a forged or truncated value is
    refused with a message instead of crashing the listener."""
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
        if not isinstance(data[key], str) or not data[key].strip():
            raise ValueError(
                f"The '{key}' field of a feedback value must be a non-empty string. "
                f"Got {data[key]!r} instead."
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
