"""Strings shared by every Slack surface: escaping, shortening, labels, banners.

Why a module of its own: user-controlled text (account names, reasons, queries) reaches
Slack through many renderers, and each one must escape it and keep it under Block Kit's
limits the same way. Doing both in one place means a fix here protects every surface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: What Block Kit allows in one section text (and one context element).
MAX_SECTION_TEXT = 3000
#: What Block Kit allows in one header.
MAX_HEADER_TEXT = 150
#: Appended to any text this package had to cut, so nothing is shortened silently.
SHORTENED = "… (shortened)"
#: Prefix of the fallback banner wherever it is shown.
WARNING = "⚠️ "
#: Longest banner that still fits a section after the warning prefix.
MAX_BANNER = MAX_SECTION_TEXT - len(WARNING)

BAND_EMOJI = {"high": "🔴", "medium": "🟠", "low": "🟢"}
_UNKNOWN_BAND = "⚪"
_BARS = "▁▂▃▄▅▆▇█"
_FLAT_BAR = _BARS[len(_BARS) // 2 - 1]  # "▄": half height, neither up nor down
_BANNER = "Using last week's data (scores as of {as_of}) — live scores are paused: {reason}"
_NO_DATA = (
    "No churn scores to show yet: live scores are paused ({reason}) and there is no earlier "
    "healthy snapshot to fall back on. Scores will appear after the next healthy scoring run."
)


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so user text cannot ping (``<!channel>``) or inject
    links when shown as mrkdwn; Slack renders the entities back as the original characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus :data:`SHORTENED`.

    Never ends inside an escaped entity (``&amp;`` cut to ``&am`` would show as garbage).
    """
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(SHORTENED))]
    amp = cut.rfind("&", len(cut) - 4)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + SHORTENED


def fit_pieces(pieces: Sequence[str], budget: int) -> list[str]:
    """Shorten only the longest pieces, to one common length, until all fit in ``budget``.

    One absurd reason then loses its tail while the name and the action stay whole, instead
    of the end of the text (often the recommended action) being cut off.
    """
    if sum(map(len, pieces)) <= budget:
        return list(pieces)
    remaining, cap = budget, 0
    lengths = sorted(map(len, pieces))
    for position, length in enumerate(lengths):
        share = remaining // (len(lengths) - position)
        if length > share:
            cap = share
            break
        remaining -= length
    return [piece if len(piece) <= cap else shorten(piece, cap) for piece in pieces]


def fit_mrkdwn(template: str, *pieces: object, limit: int = MAX_SECTION_TEXT) -> str:
    """Fill ``template``'s ``{}`` slots with escaped ``pieces``, shortened to fit ``limit``.

    ``template`` must be a literal written in this package (trusted mrkdwn); everything that
    varies goes in ``pieces``, which are escaped, so data can never add formatting or pings.
    """
    escaped = [escape_mrkdwn(str(piece)) for piece in pieces]
    budget = limit - len(template.format(*([""] * len(escaped))))
    return template.format(*fit_pieces(escaped, budget))


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


def sparkline(values: Sequence[float]) -> str:
    """One bar per value, scaled between the series' own min and max.

    A flat series (or a single value) gets middle bars: nothing moved, so nothing should
    look high or low. Non-finite values are skipped rather than breaking the scale.
    """
    points = [float(v) for v in values if math.isfinite(v)]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high == low:
        return _FLAT_BAR * len(points)
    top = len(_BARS) - 1
    return "".join(_BARS[round((v - low) / (high - low) * top)] for v in points)


def fallback_banner(as_of: str, reason: str) -> str:
    """The banner every surface shows while the kill switch serves the last good snapshot.

    Plain text (renderers show it in plain_text objects, so it needs no escaping); the reason
    is shortened, with a marker, so the banner fits one section.
    """
    budget = MAX_BANNER - len(_BANNER.format(as_of=as_of, reason=""))
    return _BANNER.format(as_of=as_of, reason=shorten(reason.strip(), budget))


def no_data_message(reason: str) -> str:
    """The honest answer when no trustworthy snapshot exists at all (switch on, none good).

    Plain text like :func:`fallback_banner`: pass it through :func:`escape_mrkdwn` before
    using it as a message's mrkdwn ``text``.
    """
    budget = MAX_SECTION_TEXT - len(_NO_DATA.format(reason=""))
    return _NO_DATA.format(reason=shorten(reason.strip(), budget))
