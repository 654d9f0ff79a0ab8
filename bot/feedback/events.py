"""One feedback event: what a CSM answered about one score, as stored in the stream.

Why every event carries the whole reference (account, snapshot, model version, the risk and
action shown, surface): the model that produced the score is retrained and replaced, and
feedback only teaches something when it is tied to the exact prediction it judged.

The user and the consent are not set here: the store decides them atomically with the write
(an opted-out user's event is stored without a user), so an opt-out racing a click can never
leave an identified event behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from bot.render.feedback import FeedbackRef, Surface

if TYPE_CHECKING:  # pandas only for the analytics, never in the web process
    import pandas as pd

Kind = Literal["helpful", "not_helpful", "correction", "action_done"]
RealState = Literal["at_risk", "not_at_risk", "churned", "renewed"]
Consent = Literal["identified", "anonymous", "forgotten"]

#: Button action_id -> the kind of answer it records ("Correct…" records through its modal).
BUTTON_KINDS: dict[str, Kind] = {
    "feedback_helpful": "helpful",
    "feedback_not_helpful": "not_helpful",
    "feedback_action_done": "action_done",
}
REAL_STATES: dict[RealState, str] = {
    "at_risk": "At risk, as shown",
    "not_at_risk": "Not at risk",
    "churned": "Already churned",
    "renewed": "Renewed",
}
SCHEMA_VERSION = "1"
#: The columns of :func:`events_table`, in order: the analysts' export has exactly these.
COLUMNS = (
    "entry_id",
    "event_id",
    "at",
    "kind",
    "account_id",
    "snapshot_id",
    "model_version",
    "risk",
    "action_rule",
    "surface",
    "segment",
    "as_of",
    "user",
    "consent",
    "idem",
    "real_state",
    "wrong_reasons",
    "better_action",
    "better_action_text",
    "note",
)


@dataclass(frozen=True)
class MessageRef:
    """A Slack message (channel and ts) whose context lines show who answered what."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Correction:
    """What a CSM said is really going on; free text is already redacted."""

    real_state: RealState
    wrong_reasons: tuple[str, ...] = ()
    better_action: str = ""  # a playbook rule name
    better_action_text: str = ""
    note: str = ""


@dataclass(frozen=True)
class FeedbackEvent:
    """One answer to one shown score. ``user`` and ``consent`` are filled in by the store."""

    event_id: str
    idem: str
    kind: Kind
    ref: FeedbackRef
    at: dt.datetime
    segment: str = ""
    as_of: str = ""
    correction: Correction | None = None
    user: str | None = None
    consent: Consent = "identified"
    entry_id: str = ""

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields, all text, without ``user`` and ``consent``."""
        fields = {
            "v": SCHEMA_VERSION,
            "event_id": self.event_id,
            "idem": self.idem,
            "kind": self.kind,
            "account_id": self.ref.account_id,
            "snapshot_id": self.ref.snapshot_id,
            "model_version": self.ref.model_version,
            "risk": repr(self.ref.risk),
            "action_rule": self.ref.action_rule,
            "surface": self.ref.surface,
            "segment": self.segment,
            "as_of": self.as_of,
            "at": self.at.astimezone(dt.UTC).isoformat(),
        }
        if self.correction is not None:
            fields |= {
                "real_state": self.correction.real_state,
                "wrong_reasons": json.dumps(list(self.correction.wrong_reasons)),
                "better_action": self.correction.better_action,
                "better_action_text": self.correction.better_action_text,
                "note": self.correction.note,
            }
        return fields

    @classmethod
    def from_fields(cls, entry_id: str, fields: Mapping[str, str]) -> FeedbackEvent:
        """Read back what :meth:`to_fields` and the store wrote."""
        correction = None
        if fields.get("real_state"):
            correction = Correction(
                real_state=_literal(fields["real_state"], RealState),
                wrong_reasons=tuple(json.loads(fields.get("wrong_reasons") or "[]")),
                better_action=fields.get("better_action", ""),
                better_action_text=fields.get("better_action_text", ""),
                note=fields.get("note", ""),
            )
        ref = FeedbackRef(
            account_id=fields["account_id"],
            snapshot_id=fields["snapshot_id"],
            model_version=fields["model_version"],
            risk=float(fields["risk"]),
            action_rule=fields["action_rule"],
            surface=_literal(fields["surface"], Surface),
        )
        return cls(
            event_id=fields["event_id"],
            idem=fields["idem"],
            kind=_literal(fields["kind"], Kind),
            ref=ref,
            at=dt.datetime.fromisoformat(fields["at"]),
            segment=fields.get("segment", ""),
            as_of=fields.get("as_of", ""),
            correction=correction,
            user=fields.get("user") or None,
            consent=_literal(fields.get("consent", "identified"), Consent),
            entry_id=entry_id,
        )

    def to_record(self) -> dict[str, object]:
        """One row of :func:`events_table`."""
        correction = self.correction
        return {
            "entry_id": self.entry_id,
            "event_id": self.event_id,
            "at": self.at,
            "kind": self.kind,
            "account_id": self.ref.account_id,
            "snapshot_id": self.ref.snapshot_id,
            "model_version": self.ref.model_version,
            "risk": self.ref.risk,
            "action_rule": self.ref.action_rule,
            "surface": self.ref.surface,
            "segment": self.segment or None,
            "as_of": self.as_of or None,
            "user": self.user,
            "consent": self.consent,
            "idem": self.idem,
            "real_state": correction.real_state if correction else None,
            "wrong_reasons": list(correction.wrong_reasons) if correction else [],
            "better_action": (correction.better_action or None) if correction else None,
            "better_action_text": (correction.better_action_text or None) if correction else None,
            "note": (correction.note or None) if correction else None,
        }


def _literal(value: str, kind: Any) -> Any:
    """``value`` if it is one of the Literal ``kind``'s values (so the dataclass stays typed)."""
    allowed = get_args(kind)
    if value not in allowed:
        raise ValueError(
            f"A stored feedback event has {value!r} where one of {list(allowed)} is expected."
        )
    return value


def events_table(events: Iterable[FeedbackEvent]) -> pd.DataFrame:
    """Events as a frame with :data:`COLUMNS` (``at`` as UTC timestamps), empty or not."""
    import pandas as pd

    frame = pd.DataFrame([event.to_record() for event in events], columns=list(COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["risk"] = frame["risk"].astype(float)
    return frame


def idempotency_key(secret: bytes, *parts: str) -> str:
    """A keyed hash of what makes two clicks "the same click".

    Keyed (HMAC) rather than a plain hash because the result is stored in every event, also
    the events of opted-out users: with a plain hash, anyone holding the stream could try
    every Slack user id and put names back on anonymous feedback.
    """
    message = "\x1f".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def idempotency_secret(signing_secret: str) -> bytes:
    """The idempotency key's secret, derived from the Slack signing secret that every web
    process already shares (so a double click that reaches two processes still matches), and
    never equal to it."""
    return hmac.new(
        signing_secret.encode(), b"churnbot feedback idempotency v1", hashlib.sha256
    ).digest()
