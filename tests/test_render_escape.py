"""``fit_mrkdwn`` escapes every piece as ``escape_mrkdwn`` does, whatever the pieces hold.

It looks for ``&``, ``<`` and ``>`` in all the pieces at once (joined by a NUL), so a piece
holding that NUL itself must still come out escaped on its own, and the template's own
mrkdwn is never touched.
"""

from __future__ import annotations

import pytest

from bot.render.text import escape_mrkdwn, fit_mrkdwn

PIECES = [
    ("plain", 42, "no specials"),
    ("<!channel> & co", "a > b", "fine"),
    ("nul\x00inside <x>", "&amp;", ""),
    ("nul\x00only",),
    (),
]


@pytest.mark.parametrize("pieces", PIECES)
def test_each_piece_is_escaped_alone(pieces: tuple[object, ...]) -> None:
    template = " | ".join(["*{}*"] * len(pieces)) + " <@U0KEEP|kept>"
    expected = template.format(*(escape_mrkdwn(str(piece)) for piece in pieces))
    assert fit_mrkdwn(template, *pieces) == expected
