"""The feedback loop's `/churn-admin` commands: ``stats``, ``shadow`` and ``promote VERSION``.

``bot.admin`` checks admin rights and audits refusals before it calls :func:`handle_admin`,
so this module only answers; it returns None for words that are not its own.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.feedback import feedback_store

USAGE = (
    "• `stats`: feedback by week, segment and action (adoption, acceptance, corrections, "
    "actions done, precision of flagged accounts)\n"
    "• `shadow`: how the candidate model in shadow mode differs from the champion\n"
    "• `promote VERSION`: make a model the champion (audited)"
)


def handle_admin(deps: Deps, user_id: str, words: list[str]) -> str | None:
    """The answer to ``/churn-admin WORDS`` if the command is a feedback one, else None.

    May raise a ChurnbotError when Redis is unreachable (the caller answers that plainly).
    """
    # stats (pandas), shadow and promote (the model registry: scikit-learn, skops) are
    # imported when asked, so the web process does not load them to serve /churn.
    command = words[0].lower() if words else ""
    if command == "stats" and len(words) == 1:
        from bot.feedback.stats import stats_answer

        return stats_answer(deps, feedback_store(deps))
    if command == "shadow" and len(words) == 1:
        from bot.feedback.shadow import shadow_report

        return shadow_report(deps, feedback_store(deps))
    if command == "promote":
        from bot.feedback.shadow import promote

        if len(words) != 2:
            return (
                "Please name the model: `/churn-admin promote VERSION` "
                "(see `churnbot models list`)."
            )
        return promote(deps, user_id, words[1])
    return None
