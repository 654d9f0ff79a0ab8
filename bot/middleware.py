"""What a Slack request must look like before a listener sees it, its metrics label, and the
de-duplication of Slack's retries.

:func:`check_payload` reads a parsed body with small pydantic models of the few fields the
listeners (and Bolt's own middleware) read, so a payload of the wrong shape is refused with a
message naming the field instead of failing inside a listener. It also names the request for
/metrics from a fixed set: whatever an attacker sends, the label is one of :data:`LABELS`.

Bolt passes ``X-Slack-Retry-Num`` through but never de-duplicates, so every event id is claimed
in Redis (SET NX with a TTL) before a listener runs; a retry of an event already claimed is
acknowledged and dropped. If Redis cannot be asked, the event goes on: a doubled App Home
publish is harmless, and the listener tells the user honestly that the data is out of reach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.feedback.correction import CALLBACK_ID
from bot.feedback.events import BUTTON_KINDS
from bot.state.store import StoreError, translate_errors

if TYPE_CHECKING:  # built by whoever serves; importing it would load the settings' modules
    from bot.deps import Deps

log = logging.getLogger(__name__)
EVENT_TTL_SECONDS = 3600

#: What this app answers; anything else is refused before Bolt (and labelled "...:other").
COMMANDS = ("/churn", "/churn-admin")
ACTIONS = ("show_account", "feedback_correct", *BUTTON_KINDS)
VIEWS = (CALLBACK_ID,)
EVENTS = ("app_home_opened",)
#: Requests whose listener claims the signature in its own Redis write (``bot.state.replay``):
#: a feedback click, which is stored in one script call anyway.
FOLDED_REPLAY = frozenset(f"action:{name}" for name in BUTTON_KINDS)
#: Requests refused at the door, by why.
REFUSED = ("unauthenticated", "replayed", "malformed")
LABELS = frozenset(
    [
        *REFUSED,
        *(f"command:{name}" for name in (*COMMANDS, "other")),
        *(f"action:{name}" for name in (*ACTIONS, "other")),
        *(f"view:{name}" for name in (*VIEWS, "other")),
        *(f"event:{name}" for name in (*EVENTS, "other")),
        "url_verification",
        "ssl_check",
        "other",
    ]
)

Text = Annotated[str, StringConstraints(min_length=1)]
#: Slack's ids of users, teams and channels: capitals and digits.
SlackId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,40}$")]
#: Where an answer is posted back (Slack's hooks; the emulator's over http in tests).
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2_000)]
#: Buttons whose listener reads the value they carry.
_WITH_VALUE = ("show_account", "feedback_correct", *BUTTON_KINDS)


class _Shape(BaseModel):
    """Strict (no "5" for 5), and blind to fields the listeners do not read."""

    model_config = ConfigDict(strict=True, extra="allow")


class _User(_Shape):
    id: SlackId


class _Action(_Shape):
    action_id: Text
    value: str | None = None


class _Interaction(_Shape):
    user: _User
    team: dict[str, Any] | str | None = None
    channel: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    response_url: Url | None = None
    trigger_id: str | None = None


class _BlockActions(_Interaction):
    type: Literal["block_actions"]
    actions: list[_Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _what_listeners_read(self) -> Self:
        action = self.actions[0]
        if action.action_id in _WITH_VALUE and action.value is None:
            raise ValueError(f"the {action.action_id} button comes with a value; this has none")
        if action.action_id == "feedback_correct" and self.trigger_id is None:
            raise ValueError("a correction click needs the trigger_id that opens its form")
        if action.action_id == "show_account" and self.response_url is None:
            raise ValueError("a Show click is answered through its response_url; this has none")
        return self


class _ViewState(_Shape):
    values: dict[str, dict[str, dict[str, Any]]]


class _View(_Shape):
    id: Text
    type: str  # Bolt reads it to tell a modal from a workflow step
    callback_id: str
    private_metadata: str | None = None
    hash: str | None = None
    state: _ViewState


class _ViewSubmission(_Interaction):
    type: Literal["view_submission"]
    view: _View


class _Event(_Shape):
    type: Text
    user: str | None = None
    tab: str | None = None


class _EventCallback(_Shape):
    type: Literal["event_callback"]
    event_id: Text
    team_id: str | None = None
    event: _Event

    @model_validator(mode="after")
    def _what_listeners_read(self) -> Self:
        if self.event.type == "app_home_opened" and not self.event.user:
            raise ValueError("app_home_opened names the user whose Home to show; this has none")
        return self


class _Command(_Shape):
    command: Text
    user_id: SlackId
    text: str = ""
    response_url: Url | None = None
    trigger_id: str | None = None


class _UrlVerification(_Shape):
    type: Literal["url_verification"]
    challenge: str


class _SslCheck(_Shape):
    type: Literal["ssl_check"]


_SHAPES: dict[str, type[_Shape]] = {
    "command": _Command,
    "block_actions": _BlockActions,
    "view_submission": _ViewSubmission,
    "event_callback": _EventCallback,
    "url_verification": _UrlVerification,
    "ssl_check": _SslCheck,
}


@dataclass(frozen=True)
class Checked:
    """A request's label, and why it is refused (None: it may go to Bolt)."""

    label: str
    problem: str | None = None
    status: int = 200


def _known(kind: str, name: object, names: tuple[str, ...]) -> str:
    return f"{kind}:{name}" if isinstance(name, str) and name in names else f"{kind}:other"


def handler_label(body: object) -> str:
    """The metrics label of a parsed body, always one of :data:`LABELS` (a body of any shape)."""
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        return _known("command", body["command"], COMMANDS)
    kind, part = body.get("type"), None
    if kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        part = first.get("action_id") if isinstance(first, dict) else None
        return _known("action", part, ACTIONS)
    if kind == "view_submission":
        view = body.get("view")
        return _known("view", view.get("callback_id") if isinstance(view, dict) else None, VIEWS)
    if kind == "event_callback":
        event = body.get("event")
        return _known("event", event.get("type") if isinstance(event, dict) else None, EVENTS)
    return kind if kind in ("url_verification", "ssl_check") else "other"


def _problems(error: ValidationError) -> str:
    """Pydantic's findings as "where: what", without the values (they may be anything)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:3]
    )


def check_payload(body: object) -> Checked:
    """Label ``body`` and say whether its shape is what the listener for it reads: 400 for a
    shape no listener could read, 404 for a well-formed request this app does not handle."""
    label = handler_label(body)
    if not isinstance(body, dict):
        return Checked(label, "the body is not a JSON object or a form", 400)
    kind = "command" if "command" in body else body.get("type")
    model = _SHAPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        if not isinstance(kind, str):
            return Checked("malformed", "neither a slash command nor a typed payload", 400)
        return Checked(label, f"nothing here handles {kind[:40]!r} requests", 404)
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return Checked(label, f"{kind}: {_problems(exc)}", 400)
    if label.endswith(":other"):
        return Checked(label, f"nothing here handles this {kind} ({label})", 404)
    return Checked(label)


class _DropRetriedEvents(Middleware):
    """Acknowledge and drop an event whose id was claimed before (see the module's doc).

    A :class:`Middleware` rather than a function given to ``app.middleware``: Bolt builds a
    function's arguments by name for every request (the body read as every kind of payload),
    which cost more than the check itself on a feedback click, the commonest request."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._seen_prefix = f"{deps.prefix}:dedupe:event:"

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            r = self._deps.redis
            try:
                with translate_errors(r):
                    first = r.set(
                        self._seen_prefix + str(event_id), "1", nx=True, ex=EVENT_TTL_SECONDS
                    )
            except StoreError as exc:
                log.warning("could not check event %s for a repeat, handling it: %s", event_id, exc)
                first = True
            if not first:
                self._deps.metrics.duplicates.labels(handler_label(body)).inc()
                log.info("dropped a repeated delivery of event %s", event_id)
                return BoltResponse(status=200, body="")
        return next()


def register(app: App, deps: Deps) -> None:
    app.use(_DropRetriedEvents(deps))
