"""The "Correct…" modal: built from the card the CSM saw, read back and checked field by field.

Pure functions: :func:`correction_view` returns the view, :func:`read_submission` turns the
submitted state into a :class:`~bot.feedback.events.Correction` or into Slack's
``response_action: errors`` map, so each field shows its own problem in the modal. Free text
is redacted here, before anything can store it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.feedback.events import REAL_STATES, Correction, MessageRef
from bot.feedback.redact import redact
from bot.render.feedback import FeedbackRef, parse_feedback_value
from bot.render.text import fit_mrkdwn

if TYPE_CHECKING:  # annotations only: the playbook module needs numpy
    from models.playbook import Playbook

CALLBACK_ID = "feedback_correction"
TITLE = "Correct this score"
MAX_OPTION_TEXT = 75
#: Slack's caps: options of a checkbox group, options of a select, the private metadata.
MAX_CHECKBOXES = 10
MAX_SELECT_OPTIONS = 100
MAX_METADATA = 3000


@dataclass(frozen=True)
class ModalContext:
    """What the modal carries in ``private_metadata``: the score being corrected, the reason
    codes it offered, and where to show the result (the message, its response_url, and
    whether it is an ephemeral ``/churn`` card)."""

    ref: FeedbackRef
    reason_codes: tuple[str, ...]
    channel: str | None = None
    ts: str | None = None
    response_url: str | None = None
    ephemeral: bool = False

    @property
    def message(self) -> MessageRef | None:
        return MessageRef(self.channel, self.ts) if self.channel and self.ts else None

    def to_metadata(self) -> str:
        text = json.dumps(
            {
                "ref": self.ref.to_value(),
                "reasons": list(self.reason_codes),
                "channel": self.channel,
                "ts": self.ts,
                "response_url": self.response_url,
                "ephemeral": self.ephemeral,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if len(text) > MAX_METADATA:
            raise ValueError(
                f"The correction modal's private_metadata must be at most {MAX_METADATA} "
                f"characters. Got {len(text)} instead."
            )
        return text

    @classmethod
    def from_metadata(cls, text: str) -> ModalContext:
        """Parse what :meth:`to_metadata` wrote; ValueError for anything else."""
        try:
            data = json.loads(text)
            return cls(
                ref=parse_feedback_value(data["ref"]),
                reason_codes=tuple(str(code) for code in data["reasons"]),
                channel=data.get("channel"),
                ts=data.get("ts"),
                response_url=data.get("response_url"),
                ephemeral=bool(data.get("ephemeral")),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"The correction modal's metadata is not readable: {exc}") from None


def _plain(text: str, limit: int = MAX_OPTION_TEXT) -> PlainTextObject:
    """Plain text cut to ``limit`` characters with "…" (option texts are capped at 75)."""
    return PlainTextObject(text=text if len(text) <= limit else text[: limit - 1] + "…")


def loading_view() -> dict[str, Any]:
    """Opened at once with the click's trigger_id (it expires in ~3 s), then replaced."""
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
        title=TITLE,
        close="Cancel",
        blocks=[SectionBlock(text=PlainTextObject(text="Loading the account…"))],
    ).to_dict()


def correction_view(
    card: Mapping[str, Any] | None,
    context: ModalContext,
    playbook: Playbook,
    *,
    note_max_chars: int,
) -> dict[str, Any]:
    """The modal: what was shown, then the four questions. ``card`` is None when the snapshot
    is gone; the reference alone still says which score is being corrected."""
    ref = context.ref
    name = card["account_name"] if card else ref.account_id
    shown = fit_mrkdwn(
        "*{}* · `{}`\nShown: *{}* churn risk · recommended action: {}",
        name,
        ref.account_id,
        f"{ref.risk:.0%}",
        _action_words(card, ref, playbook),
        limit=1000,
    )
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=shown))]
    blocks.append(
        InputBlock(
            block_id="real_state",
            label="What is really going on with this account?",
            element=RadioButtonsElement(
                action_id="value",
                options=[
                    Option(value=value, text=_plain(label)) for value, label in REAL_STATES.items()
                ],
            ),
        )
    )
    offered = set(context.reason_codes)
    reasons = [r for r in (card or {}).get("reasons", []) if r.get("code") in offered]
    if reasons:
        blocks.append(
            InputBlock(
                block_id="wrong_reasons",
                label="Which reasons were wrong?",
                optional=True,
                element=CheckboxesElement(
                    action_id="value",
                    options=[Option(value=r["code"], text=_plain(r["text"])) for r in reasons],
                ),
            )
        )
    actions = [*playbook.rules, playbook.default][:MAX_SELECT_OPTIONS]
    blocks.append(
        InputBlock(
            block_id="better_action",
            label="A better action from the playbook",
            optional=True,
            element=StaticSelectElement(
                action_id="value",
                placeholder="Choose an action",
                options=[Option(value=a.name, text=_plain(a.action)) for a in actions],
            ),
        )
    )
    for block_id, label, multiline in (
        ("better_action_text", "…or describe a better action", False),
        ("note", "Anything else we should know?", True),
    ):
        blocks.append(
            InputBlock(
                block_id=block_id,
                label=label,
                optional=True,
                element=PlainTextInputElement(
                    action_id="value", multiline=multiline, max_length=note_max_chars
                ),
            )
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Email addresses, phone numbers and similar personal data are removed "
                    "from your text before it is stored."
                )
            ]
        )
    )
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
        title=TITLE,
        submit="Save",
        close="Cancel",
        private_metadata=context.to_metadata(),
        blocks=blocks,
    ).to_dict()


def _action_words(card: Mapping[str, Any] | None, ref: FeedbackRef, playbook: Playbook) -> str:
    """The recommended action as the CSM read it, never the rule's internal name: from the
    card, else from the playbook's rule of that name (the rule's name only if it is gone)."""
    action = (card or {}).get("action") or {}
    if action.get("rule") == ref.action_rule and action.get("action"):
        return str(action["action"])
    for rule in (*playbook.rules, playbook.default):
        if rule.name == ref.action_rule:
            return rule.action
    return ref.action_rule


def _value(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    return (values.get(block_id) or {}).get("value") or {}


def _text(values: Mapping[str, Any], block_id: str) -> str:
    return str(_value(values, block_id).get("value") or "").strip()


def read_submission(
    values: Mapping[str, Any],
    context: ModalContext,
    playbook: Playbook,
    *,
    note_max_chars: int,
) -> Correction | dict[str, str]:
    """The submitted correction, or ``{block_id: message}`` for every field that is wrong.

    Slack checks required fields and lengths in the client, but a submission is untrusted
    input, so every rule is checked again here.
    """
    errors: dict[str, str] = {}
    selected = _value(values, "real_state").get("selected_option") or {}
    real_state = selected.get("value")
    if real_state not in REAL_STATES:
        errors["real_state"] = "Pick what is really going on with this account."
    wrong = tuple(
        option.get("value", "")
        for option in _value(values, "wrong_reasons").get("selected_options") or []
    )
    unknown = sorted(set(wrong) - set(context.reason_codes))
    if unknown:
        errors["wrong_reasons"] = "Pick only reasons shown for this account."
    action = (_value(values, "better_action").get("selected_option") or {}).get("value") or ""
    names = {rule.name for rule in playbook.rules} | {playbook.default.name}
    if action and action not in names:
        errors["better_action"] = "Pick an action from the list."
    action_text, note = _text(values, "better_action_text"), _text(values, "note")
    if action and action_text:
        errors["better_action_text"] = (
            "Pick an action from the list or describe one here, not both."
        )
    for block_id, text in (("better_action_text", action_text), ("note", note)):
        if len(text) > note_max_chars:
            errors[block_id] = f"Please keep this under {note_max_chars} characters."
    if real_state == "at_risk" and not (wrong or action or action_text or note):
        errors["real_state"] = (
            "You agree it is at risk: say which reasons were wrong, suggest a better action "
            "or add a note (or use 👍 Helpful instead)."
        )
    if errors:
        return errors
    return Correction(
        real_state=real_state,  # type: ignore[arg-type]
        wrong_reasons=tuple(dict.fromkeys(wrong)),
        better_action=action,
        better_action_text=redact(action_text).text,
        note=redact(note).text,
    )


def reason_codes(card: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The codes of the reasons the modal offers for ``card`` (what a submission may pick)."""
    reasons: Sequence[Mapping[str, Any]] = (card or {}).get("reasons", [])
    return tuple(r["code"] for r in reasons if r.get("code"))[:MAX_CHECKBOXES]
