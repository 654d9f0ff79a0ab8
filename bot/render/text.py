"""Strings shared by every Slack surface: escaping, shortening, labels, banners.

Why a module of its own: user-controlled text (account names, reasons, queries) reaches
Slack through many renderers, and each one must escape it and keep it under Block Kit's
limits the same way. Doing both in one place means a fix here protects every surface.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from json.encoder import encode_basestring

#: What Block Kit allows in one section text (and one context element).
MAX_SECTION_TEXT = 3000
#: What Block Kit allows in one header.
MAX_HEADER_TEXT = 150
#: Appended to any text this package had to cut, so nothing is shortened silently.
SHORTENED = "… (shortened)"
#: Prefix of the fallback banner wherever it is shown.
WARNING = "⚠️ "
#: Longest banner: far under a section's limit, so a banner never crowds a message's budget.
MAX_BANNER = 1000

BAND_EMOJI = {"high": "🔴", "medium": "🟠", "low": "🟢"}
_UNKNOWN_BAND = "⚪"
_LAST_WEEK = "Using last week's data (scores as of {day})"
_LAST_GOOD = "Using the last good scores, from {when}"
_NO_DATA = (
    "No churn scores to show yet: live scores are paused ({reason}) and there is no earlier "
    "healthy snapshot to fall back on. Scores will appear after the next healthy scoring run."
)


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so user text cannot ping (``<!channel>``) or inject
    links when shown as mrkdwn; Slack renders the entities back as the original characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def json_cost(text: str) -> int:
    """Characters ``text`` takes inside a message's compact JSON (quotes, backslashes and
    control characters are escaped): the unit of Slack's ~13k message budget, and never less
    than the character count Block Kit's per-field limits use.

    The sum of :func:`_char_cost` over the characters, measured by the JSON encoder itself
    (in C, one pass): counting quotes, backslashes and control characters in Python took
    three times as long on a digest's texts, which hold emoji (four bytes a character)."""
    return len(encode_basestring(text)) - 2  # less the quotes


def _char_cost(char: str) -> int:
    if char in '"\\\n\r\t\b\f':
        return 2
    return MAX_CHAR_COST if char < " " else 1  # \u00XX


#: The most one character costs in compact JSON (``\u00XX``): a text of at most
#: ``limit / MAX_CHAR_COST`` characters fits ``limit`` whatever it holds.
MAX_CHAR_COST = 6


def shorten(text: str, limit: int) -> str:
    """``text`` if its :func:`json_cost` fits ``limit``, else its start plus
    :data:`SHORTENED`.

    Never ends inside an escaped entity (``&amp;`` cut to ``&am`` would show as garbage).
    """
    if json_cost(text) <= limit:
        return text
    spent = list(accumulate(map(_char_cost, text)))
    cut = text[: bisect_right(spent, limit - json_cost(SHORTENED))]
    amp = cut.rfind("&", len(cut) - 4)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + SHORTENED


def fit_pieces(pieces: Sequence[str], budget: int) -> list[str]:
    """Shorten only the longest pieces, to one common cost, until all fit in ``budget``.

    One absurd reason then loses its tail while the name and the action stay whole, instead
    of the end of the text (often the recommended action) being cut off. Callers keep the
    number of pieces small (lists are capped), so the common cost stays far above the marker.
    """
    costs = [json_cost(piece) for piece in pieces]
    if sum(costs) <= budget:
        return list(pieces)
    remaining, cap = budget, 0
    ordered = sorted(costs)
    for position, cost in enumerate(ordered):
        share = remaining // (len(ordered) - position)
        if cost > share:
            cap = share
            break
        remaining -= cost
    return [
        piece if cost <= cap else shorten(piece, cap)
        for piece, cost in zip(pieces, costs, strict=True)
    ]


def fit_mrkdwn(template: str, *pieces: object, limit: int = MAX_SECTION_TEXT) -> str:
    """Fill ``template``'s ``{}`` slots with escaped ``pieces``, shortened so the text's
    :func:`json_cost` fits ``limit``.

    ``template`` must be a literal written in this package (trusted mrkdwn); everything that
    varies goes in ``pieces``, which are escaped, so data can never add formatting or pings.
    """
    escaped = _escaped([str(piece) for piece in pieces])
    text = template.format(*escaped)
    # json_cost adds up per character, so the whole text fits exactly when the pieces fit
    # the template's budget: measure once (not at all when even six a character fit, as a
    # digest's summaries do), and split the budget only for a text too long.
    if len(text) * MAX_CHAR_COST <= limit or json_cost(text) <= limit:
        return text
    budget = limit - json_cost(template.format(*([""] * len(escaped))))
    return template.format(*fit_pieces(escaped, budget))


def _escaped(texts: list[str]) -> list[str]:
    """:func:`escape_mrkdwn` of each text, looked for in one pass over them all: most pieces
    (scores, labels, names) need none, and a digest fills about 130 of them."""
    joined = _PIECE_BREAK.join(texts)
    if "&" not in joined and "<" not in joined and ">" not in joined:
        return texts
    escaped = escape_mrkdwn(joined).split(_PIECE_BREAK)
    if len(escaped) != len(texts):  # a text holds the separator itself: one at a time
        return [escape_mrkdwn(text) for text in texts]
    return escaped


#: Joins the pieces :func:`_escaped` scans at once (escaping never adds or removes one).
_PIECE_BREAK = "\x00"


def header_text(text: str) -> str:
    """A header's plain text: at most 150 characters, a cut one ending in "…"."""
    return text if len(text) <= MAX_HEADER_TEXT else text[: MAX_HEADER_TEXT - 1] + "…"


def change_label(change: float | None) -> str:
    """'new' for a first score, else the move in percentage points: '+5 pts', '-2 pts'."""
    if change is None:
        return "new"
    points = round(change * 100)
    return "no change" if points == 0 else f"{points:+d} pts"


def band_emoji(band: str) -> str:
    """🔴 high, 🟠 medium, 🟢 low; a neutral dot for a band this code does not know."""
    return BAND_EMOJI.get(band, _UNKNOWN_BAND)


def trend_words(history: Sequence[float], span_days: int | None = None) -> str:
    """The risk's trend in words a screen reader and a skimming CSM both read: "risk 42% →
    61% → 78% over 3 weeks" (``span_days`` from the first score to the last; without it,
    "over the last 3 scores"). Non-finite values are skipped."""
    points = [float(v) for v in history if math.isfinite(v)]
    if not points:
        return "no history yet"
    if len(points) == 1:
        return "no trend yet (this is the first score)"
    path = " → ".join(f"{v:.0%}" for v in points)
    if span_days is None or span_days < 1:
        return f"risk {path} over the last {plural(len(points), 'score')}"
    return f"risk {path} over {_span(span_days)}"


def _span(days: int) -> str:
    """A span as people say it: "5 days", "3 weeks", "4 months"."""
    if days < 14:
        return plural(days, "day")
    if days < 63:
        return plural(round(days / 7), "week")
    return plural(round(days / 30.44), "month")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 score", "3 scores": the count with the noun in the form it takes."""
    noun = singular if count == 1 else plural_form or singular + "s"
    return f"{count} {noun}"


def minute_utc(stamp: str) -> str:
    """A stored ISO timestamp (who turned the kill switch or the holdout on, and when) as a
    person reads it, ``2026-12-02 12:34 UTC``, in every message that shows one; empty when
    nothing was stored."""
    if not stamp:
        return ""
    return f"{dt.datetime.fromisoformat(stamp).astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def short_date(day: dt.date, today: dt.date) -> str:
    """ "Nov 23" within the current year, "Nov 23, 2025" otherwise."""
    text = f"{day:%b} {day.day}"
    return text if day.year == today.year else f"{text}, {day.year}"


def scores_age(scored_at: dt.datetime, now: dt.datetime) -> str:
    """How old the scores are, in the words a CSM uses, by calendar days in ``now``'s time
    zone: "Using the last good scores, from this morning" (or "this afternoon", "this
    evening"), "… from yesterday", "… from Nov 28" (two to six days back); "Using last
    week's data (scores as of Nov 23)" when they are one to two weeks old; "… from Nov 9"
    beyond.

    Pure: the caller passes the clock's ``now``, so tests pin any date.
    """
    for name, moment in (("scored_at", scored_at), ("now", now)):
        if moment.tzinfo is None:
            raise ValueError(
                f"The '{name}' parameter of scores_age must be an aware datetime. "
                f"Got {moment!r} instead."
            )
    local = scored_at.astimezone(now.tzinfo)
    today, day = now.date(), local.date()
    days = (today - day).days
    if days <= 0:  # a clock a little behind the scorer's still means "today"
        part = "morning" if local.hour < 12 else "afternoon" if local.hour < 18 else "evening"
        return _LAST_GOOD.format(when=f"this {part}")
    if days == 1:
        return _LAST_GOOD.format(when="yesterday")
    if 7 <= days < 14:
        return _LAST_WEEK.format(day=short_date(day, today))
    return _LAST_GOOD.format(when=short_date(day, today))


def fallback_banner(scored_at: dt.datetime, now: dt.datetime, why: str) -> str:
    """The banner every surface shows while it serves scores that are not the live ones
    (kill switch on, or no scoring run within the freshness SLA): how old they really are
    (:func:`scores_age`), then ``why``.

    Plain text (renderers show it in plain_text objects, so it needs no escaping); ``why`` is
    shortened, with a marker, to keep the banner within :data:`MAX_BANNER`.
    """
    head = scores_age(scored_at, now) + " — "
    return head + shorten(why.strip(), MAX_BANNER - json_cost(head))


def no_data_message(reason: str) -> str:
    """The honest answer when no trustworthy snapshot exists at all (switch on, none good).

    Plain text like :func:`fallback_banner`: pass it through :func:`escape_mrkdwn` before
    using it as a message's mrkdwn ``text``.
    """
    budget = MAX_SECTION_TEXT - json_cost(_NO_DATA.format(reason=""))
    return _NO_DATA.format(reason=shorten(reason.strip(), budget))
