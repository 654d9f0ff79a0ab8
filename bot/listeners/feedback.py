"""The feedback buttons under every account, and the "Correct…" modal.

A click is saved first (within a deadline, see ``bot.feedback.capture``), and in the same
step the message's refresh is queued in Redis and the request's signature claimed (the web
door's replay guard, ``bot.state.replay``); then it is acknowledged. The worker draws the
message again (a line saying who answered what; a digest keeps its buttons for everyone else),
see ``bot.feedback.drain``, so nothing after the ack is left in this process's memory but
telling a user plainly that nothing was saved (on ``deps.background``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.deps import Deps
from bot.feedback import feedback_store
from bot.feedback.capture import Cards, Recorder, Saved, ScoreGone, resolve_button
from bot.feedback.correction import (
    CALLBACK_ID,
    ModalContext,
    correction_view,
    loading_view,
    read_submission,
    reason_codes,
)
from bot.feedback.events import BUTTON_KINDS, MessageRef, idempotency_secret
from bot.feedback.refresh import Redraw, message_body
from bot.feedback.render import broken_button_text, failure_text
from bot.feedback.stats import register_collector
from bot.feedback.store import FeedbackStore
from bot.render import parse_feedback_action
from bot.render.feedback import FeedbackKey, FeedbackRef
from bot.state.replay import settle_pending
from models.errors import ChurnbotError, ConfigError

log = logging.getLogger(__name__)
BUTTONS = re.compile("^(" + "|".join(BUTTON_KINDS) + ")$")


def _message_of(body: Mapping[str, Any]) -> tuple[MessageRef | None, bool]:
    """The message the click came from and whether it is ephemeral (a ``/churn`` card)."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    message = MessageRef(channel, ts) if channel and ts else None
    return message, bool(container.get("is_ephemeral"))


def _reply(url: str | None, text: str) -> None:
    """A new ephemeral message to the person who clicked (the original is left alone)."""
    if url:
        WebhookClient(url).send(text=text, response_type="ephemeral", replace_original=False)


def _not_saved_text(saved: Saved, retry: str) -> str:
    """Why an answer was not (or not surely) saved, and what to do: ``retry`` says how to try
    again ("click the button", "press Save") when trying again can help."""
    if saved.status == "gone":
        return saved.detail
    assert saved.status != "saved"
    assert saved.status != "replayed"
    return failure_text(saved.status, retry=retry)


def _tell(response_url: str | None, saved: Saved) -> None:
    """The click was not (or not surely) saved: say so, and what to do instead."""
    if saved.status != "saved":
        _reply(response_url, _not_saved_text(saved, "click the button"))


def _later(deps: Deps, task: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run ``task`` after the ack on ``deps.background``; a failure is logged (a bare Future
    would swallow it) and counted like any unexpected error."""

    def run() -> None:
        try:
            task(*args, **kwargs)
        except Exception:
            deps.metrics.errors.labels(f"after-ack:{task.__name__}").inc()
            log.exception("feedback work after the ack failed in %s", task.__name__)

    deps.background.submit(run)


def register(app: App, deps: Deps) -> None:
    env = deps.settings.env
    shared = env.slack_signing_secret or env.slack_app_token  # Socket Mode: no signing secret
    if shared is None:
        raise ConfigError(
            "environment: SLACK_SIGNING_SECRET (Socket Mode: SLACK_APP_TOKEN) is not set"
        )
    store = feedback_store(deps)
    config = store.config
    recorder = Recorder(deps, store, idempotency_secret(shared.get_secret_value()))
    register_collector(deps, store)

    @app.action(BUTTONS)
    def answer(ack: Ack, body: dict[str, Any]) -> None:
        action = body["actions"][0]
        user = body["user"]["id"]
        response_url = body.get("response_url")
        try:
            button = parse_feedback_action(action)
        except ValueError as exc:
            log.warning("unreadable feedback button from %s: %s", user, exc)
            ack()
            if settle_pending(deps.redis):  # nothing written: a replay must not say it again
                _later(deps, _reply, response_url, broken_button_text())
            return
        kind = BUTTON_KINDS[action["action_id"]]
        message, ephemeral = _message_of(body)
        saved = recorder.save(
            lambda: recorder.button_event(kind, button, user),
            user,
            message,
            Redraw(ephemeral, response_url, body.get("message")),
        )
        ack()  # a replayed request (nothing written) is refused by the web door instead
        if saved.recorded is not None:
            if not saved.recorded.fresh:
                deps.metrics.duplicates.labels(f"action:{action['action_id']}").inc()
        elif saved.status != "replayed" and settle_pending(deps.redis):
            _later(deps, _tell, response_url, saved)

    @app.action("feedback_correct")
    def open_correction(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """Open "Loading…" at once (the trigger expires in ~3 s), fill it in after the ack."""
        user = body["user"]["id"]
        response_url = body.get("response_url")
        try:
            button = parse_feedback_action(body["actions"][0])
            view = client.views_open(trigger_id=body["trigger_id"], view=loading_view())["view"]
        except ValueError as exc:
            log.warning("unreadable correction button from %s: %s", user, exc)
            ack()
            _later(deps, _reply, response_url, broken_button_text())
            return
        except SlackApiError as exc:
            log.warning("could not open the correction modal: %s", exc.response.get("error"))
            ack()
            _later(
                deps,
                _reply,
                response_url,
                "⚠️ The correction form could not be opened in time. Please click Correct… again.",
            )
            return
        ack()
        _later(deps, _fill_modal, deps, store, recorder.cards, client, view, button, body)

    @app.view(CALLBACK_ID)
    def save_correction(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        try:
            context = ModalContext.from_metadata(view.get("private_metadata") or "")
        except ValueError as exc:
            log.warning("unreadable correction modal from %s: %s", user, exc)
            ack(
                response_action="errors",
                errors={
                    "real_state": "This form is out of date: close it and click Correct… again."
                },
            )
            return
        result = read_submission(
            view["state"]["values"],
            context,
            deps.settings.playbook,
            note_max_chars=config.note_max_chars,
        )
        if isinstance(result, dict):
            ack(response_action="errors", errors=result)
            return
        saved = recorder.save(
            lambda: recorder.event(
                "correction",
                context.ref,
                user,
                card=recorder.cards.get(context.ref),
                correction=result,
                once_per=(view["id"],),
            ),
            user,
            context.message,
            Redraw(context.ephemeral, context.response_url),
        )
        if saved.status != "saved":
            ack(
                response_action="errors",
                errors={"note": _not_saved_text(saved, "press Save")},
            )
            return
        ack()


def _fill_modal(
    deps: Deps,
    store: FeedbackStore,
    cards: Cards,
    client: WebClient,
    view: Mapping[str, Any],
    button: FeedbackKey | FeedbackRef,
    body: Mapping[str, Any],
) -> None:
    """Replace "Loading…" with the form, built from the card the CSM saw."""
    message, ephemeral = _message_of(body)
    try:
        ref, card = resolve_button(cards, button)
        kept = message_body(body.get("message"))
        if message and kept:  # for the correction's refresh: a submission has no message
            store.keep_message(message, kept)
        context = ModalContext(
            ref=ref,
            reason_codes=reason_codes(card),
            channel=message.channel if message else None,
            ts=message.ts if message else None,
            response_url=body.get("response_url"),
            ephemeral=ephemeral,
        )
        form = correction_view(
            card, context, deps.settings.playbook, note_max_chars=store.config.note_max_chars
        )
    except ScoreGone as exc:
        form = _notice_view(str(exc))
    except ChurnbotError as exc:
        log.warning("could not build the correction modal: %s", exc)
        form = _notice_view(
            "⚠️ churnbot cannot reach its data store right now, so nothing can be corrected. "
            "Please try again in a minute."
        )
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
    except SlackApiError as exc:
        log.warning("could not fill the correction modal: %s", exc.response.get("error"))


def _notice_view(text: str) -> dict[str, Any]:
    """A modal that only says ``text`` (mrkdwn, already escaped)."""
    view = loading_view()
    view["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    return view
