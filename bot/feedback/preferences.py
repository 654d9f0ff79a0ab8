"""`/churn optout` and `/churn optin`: whether a user's feedback is stored with their name.

Opting out never drops feedback (the answer still teaches the model and counts in the
figures); it stops the user id from being stored with it. The store applies the preference
inside the write itself, so it holds from the very next click.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.feedback import feedback_store

OPTED_OUT = (
    "You have opted out: your feedback still counts, but from now on it is stored without "
    "your name, so nobody can trace it back to you. Feedback you gave before keeps your name; "
    "an admin can erase it (`churnbot feedback forget`). `/churn optin` undoes this."
)
OPTED_IN = (
    "You have opted in: your feedback is stored with your Slack user id, so the team can "
    "follow up with you and see who uses churnbot. `/churn optout` stores it without your name."
)


def set_preference(deps: Deps, user_id: str, *, opted_out: bool) -> str:
    """Record the preference and say what it means."""
    feedback_store(deps).set_opted_out(user_id, opted_out)
    return OPTED_OUT if opted_out else OPTED_IN
