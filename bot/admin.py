"""`/churn-admin` logic: parse, check the caller, act, audit. No Slack objects in here.

Returns plain text for the listener to send, so every branch is tested without a server.
Every attempt, allowed or refused, leaves an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.deps import Deps
from bot.digest.channels import DigestConfig
from bot.digest.claims import SlotClaims
from bot.digest.compose import plan_now
from bot.digest.holdout import current_holdout
from bot.feedback.admin_commands import USAGE as FEEDBACK_USAGE
from bot.feedback.admin_commands import handle_admin
from bot.render import Message
from bot.render.parts import context, person_slot
from bot.render.text import fit_mrkdwn, minute_utc

log = logging.getLogger(__name__)

USAGE = (
    "*/churn-admin* commands:\n"
    "• `status`: models, last scoring run and its health checks, kill switch, next digests\n"
    "• `killswitch on REASON`: pause live scores; everyone sees the last good data\n"
    "• `killswitch off`: resume live scores\n"
    "• `digest now CHANNEL`: post a digest now (a digest name, #channel or channel id); "
    "add `preview` to see it here instead"
)
#: A preview carries a note on top, so its parts leave room for one more block.
_PREVIEW_BLOCKS = 49
_PREVIEW_CHARS = 11_500
_TWO_WORD_COMMANDS = ("killswitch", "digest")


@dataclass(frozen=True)
class AdminReply:
    text: str
    notify_admins: str | None = None  # a notice for the other admins, when state changed
    preview: tuple[Message, ...] = ()  # digest parts shown to the admin only
    post_digest: str | None = None  # a digest the listener posts after the ack
    charts_to: str | None = None  # an admin the listener sends the stats charts to, after the ack


def handle(deps: Deps, user_id: str, text: str) -> AdminReply:
    words = text.split()
    if words and words[0] in _TWO_WORD_COMMANDS:
        what = " ".join(words[:2])
    else:
        what = words[0] if words else ""
    if not deps.settings.slack.is_admin(user_id):
        deps.audit.record(who=user_id, what=what or "(none)", why=text, outcome="refused")
        log.warning("refused /churn-admin %r from %s: not an admin", what, user_id)
        return AdminReply(
            "Sorry, `/churn-admin` is for churnbot admins only. Ask one of them if you need "
            "something changed; your request has been noted."
        )
    if what == "status":
        return AdminReply(status_text(deps))
    if what == "killswitch on":
        reason = " ".join(words[2:]).strip()
        if not reason:
            return AdminReply("Please give a reason: `/churn-admin killswitch on REASON`.")
        state = deps.switch.trip(reason, who=user_id, source="admin")
        deps.audit.record(who=user_id, what=what, why=reason)
        if state.reason != reason:
            return AdminReply(
                fit_mrkdwn(
                    f"The kill switch was already on since {{}} ({{}}, by "
                    f"{person_slot(state.who)}); nothing changed.",
                    minute_utc(state.when),
                    state.reason,
                    state.who,
                )
            )
        return AdminReply(
            f"Kill switch ON. Everyone now sees the last good data, with the reason: {reason}",
            notify_admins=f"<@{user_id}> turned the kill switch ON: {reason}",
        )
    if what == "killswitch off":
        deps.switch.reset(who=user_id)
        deps.audit.record(who=user_id, what=what)
        return AdminReply(
            "Kill switch OFF. `/churn` shows live scores now; digests at their next run.",
            notify_admins=f"<@{user_id}> turned the kill switch OFF.",
        )
    if what == "digest now":
        return digest_now(deps, user_id, words[2:])
    answer = handle_admin(deps, user_id, words)
    if answer is not None and what == "stats":
        return AdminReply(
            f"{answer}\n_Charts follow in your direct messages with churnbot._", charts_to=user_id
        )
    if answer is not None:
        return AdminReply(answer)
    return AdminReply(USAGE + "\n" + FEEDBACK_USAGE)


def digest_now(deps: Deps, user_id: str, args: Sequence[str]) -> AdminReply:
    """Post (or preview) one digest outside its schedule; audited either way."""
    preview = bool(args) and args[-1].lower() == "preview"
    names = list(args[:-1] if preview else args)
    channels = deps.settings.channels
    known = ", ".join(d.name for d in channels.digests) or "none configured"
    if len(names) != 1:
        return AdminReply(f"Usage: `/churn-admin digest now CHANNEL [preview]`. Digests: {known}.")
    found = channels.find(names[0])
    if len(found) != 1:
        problem = (
            f"No digest matches {names[0]!r}"
            if not found
            else f"Several digests go to {names[0]}: {', '.join(d.name for d in found)}"
        )
        return AdminReply(f"{problem}. Name one of: {known}.")
    digest = found[0]
    deps.audit.record(
        who=user_id,
        what="digest now",
        why=digest.name,
        detail={"channel": digest.channel, "preview": preview},
    )
    if preview:
        messages = preview_messages(deps, digest)
        return AdminReply(
            f"Preview of the digest {digest.name} for <#{digest.channel}>: "
            f"{len(messages)} message(s). Nothing was posted.",
            preview=messages,
        )
    return AdminReply(
        f"Posting the digest {digest.name} to <#{digest.channel}> now; "
        "I will tell you here when it is done.",
        post_digest=digest.name,
    )


def preview_messages(deps: Deps, digest: DigestConfig) -> tuple[Message, ...]:
    """The digest as it would be posted now, each part headed by a "preview" note."""
    plan = plan_now(
        deps.store,
        deps.switch,
        deps.settings.spec,
        digest,
        SlotClaims(deps.redis, prefix=deps.prefix).previous(digest.name),
        moved_sharply=deps.settings.channels.moved_sharply,
        now=deps.clock(),
        max_blocks=_PREVIEW_BLOCKS,
        max_chars=_PREVIEW_CHARS,
        owner_users=deps.settings.slack.owner_users,
        holdout=current_holdout(deps),
    )
    note = context(
        fit_mrkdwn(
            "👀 Preview of the digest {} for channel {}: not posted", digest.name, digest.channel
        )
    )
    return tuple(Message(m.text, [note, *m.blocks]) for m in plan.messages)


def status_text(deps: Deps) -> str:
    store, state = deps.store, deps.switch.state()
    latest, good = store.latest(), store.last_good()
    lines = [
        fit_mrkdwn(
            f"*Kill switch:* ON since {{}} by {person_slot(state.who)}: {{}}",
            minute_utc(state.when),
            state.who,
            state.reason,
        )
        if state.on
        else "*Kill switch:* off"
    ]
    if latest is None:
        lines.append("*Scores:* none published yet (run `churnbot score`)")
    else:
        lines.append(
            f"*Latest scoring run:* {latest.snapshot_id} (data as of {latest.as_of}, "
            f"model {latest.model_version}, {latest.n_accounts:,} accounts, "
            f"{'healthy' if latest.healthy else 'NOT healthy'})"
        )
        lines += [
            f"  {'✅' if check['ok'] else '❌'} {check['name']}: {check['message']}"
            for check in latest.health
        ]
        lines.append(f"*Last known good:* {good.snapshot_id if good else 'none'}")
    upcoming = deps.next_digests()
    lines.append("*Next digests:*" + ("" if upcoming else " none scheduled (is the worker up?)"))
    lines += [f"  • {label}: {when}" for label, when in upcoming]
    return "\n".join(lines)
