"""The feedback loop's `/churn-admin` commands: ``stats``, ``shadow``, ``promote VERSION`` and
``holdout SHARE|off``.

``bot.admin`` checks admin rights and audits refusals before it calls :func:`handle_admin`,
so this module only answers; it returns None for words that are not its own.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.feedback import feedback_store
from bot.state.deadline import paused

USAGE = (
    "• `stats`: feedback by week, segment and action (adoption, acceptance, corrections, "
    "actions done, precision of flagged accounts), save rates per action, and the champion's "
    "release record beside the previous version and the shadow candidate\n"
    "• `shadow`: how the candidate model in shadow mode differs from the champion\n"
    "• `promote VERSION`: make a model the champion (audited)\n"
    "• `holdout SHARE`: keep a share of flagged accounts (e.g. `0.05`) out of the digests as "
    "the save rates' control group; `holdout off` to stop, `holdout` alone to see it (audited)"
)


def handle_admin(deps: Deps, user_id: str, words: list[str]) -> str | None:
    """The answer to ``/churn-admin WORDS`` if the command is a feedback one, else None.

    May raise a ChurnbotError when Redis is unreachable (the caller answers that plainly).
    """
    # stats (pandas), shadow and promote (the model registry: scikit-learn, skops) are
    # imported when asked, so the web process does not load them to serve /churn; the first
    # import does not count against the request's Redis budget.
    command = words[0].lower() if words else ""
    if command == "stats" and len(words) == 1:
        with paused():
            from bot.feedback.stats import stats_answer

        return stats_answer(deps, feedback_store(deps))
    if command == "shadow" and len(words) == 1:
        with paused():
            from bot.feedback.shadow import shadow_report

        return shadow_report(deps, feedback_store(deps))
    if command == "promote":
        with paused():
            from bot.feedback.shadow import promote

        if len(words) != 2:
            return (
                "Please name the model: `/churn-admin promote VERSION` "
                "(see `churnbot models list`)."
            )
        return promote(deps, user_id, words[1])
    if command == "holdout" and len(words) <= 2:
        return holdout_answer(deps, user_id, words[1:])
    return None


def holdout_answer(deps: Deps, user_id: str, args: list[str]) -> str:
    """`/churn-admin holdout [SHARE|off]`: show or change the holdout (a change is audited)."""
    from bot.digest.holdout import HoldoutStore, set_holdout
    from bot.render.parts import person_slot
    from bot.render.text import fit_mrkdwn, minute_utc

    config = deps.settings.holdout
    store = HoldoutStore(deps.redis, prefix=deps.prefix)
    if not args:
        current = store.current(config)
        on = f" on {minute_utc(current.when)}" if current.when else ""
        since = fit_mrkdwn(f" (set by {person_slot(current.who)}{{}})", current.who, on)
        state = f"ON at {current.share:.0%}" if current.share > 0 else "OFF"
        return (
            f"Holdout {state}{since}. Change it with `/churn-admin holdout SHARE` "
            f"(at most {config.max_share:.0%}) or `/churn-admin holdout off`."
        )
    return set_holdout(store, deps.audit, config, user_id=user_id, word=args[0], now=deps.clock())
