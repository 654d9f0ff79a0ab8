"""`/churn-admin` logic: parse, check the caller, act, audit. No Slack objects in here.

Returns plain text for the listener to send, so every branch is tested without a server.
Every attempt, allowed or refused, leaves an audit entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.deps import Deps

log = logging.getLogger(__name__)

USAGE = (
    "*/churn-admin* commands:\n"
    "• `status`: models, last scoring run and its health checks, kill switch\n"
    "• `killswitch on REASON`: pause live scores; everyone sees the last good data\n"
    "• `killswitch off`: resume live scores"
)


@dataclass(frozen=True)
class AdminReply:
    text: str
    notify_admins: str | None = None  # a notice for the other admins, when state changed


def handle(deps: Deps, user_id: str, text: str) -> AdminReply:
    words = text.split()
    what = " ".join(words[:2]) if words[:1] == ["killswitch"] else (words[0] if words else "")
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
                f"The kill switch was already on since {state.when} ({state.reason}, by "
                f"{state.who}); nothing changed."
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
    return AdminReply(USAGE)


def status_text(deps: Deps) -> str:
    store, state = deps.store, deps.switch.state()
    latest, good = store.latest(), store.last_good()
    lines = [
        f"*Kill switch:* {'ON' if state.on else 'off'}"
        + (f" since {state.when} by {state.who}: {state.reason}" if state.on else ""),
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
    return "\n".join(lines)
