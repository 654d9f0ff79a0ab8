"""``json_cost`` lets the JSON encoder measure: it must equal its per-character definition
(what compact JSON escapes) on every kind of character, and ``fit_mrkdwn``, which skips
measuring a text short enough to fit at the highest cost a character has, must still cut
one that does not fit."""

from __future__ import annotations

import json

import pytest

from bot.render.text import MAX_CHAR_COST, SHORTENED, _char_cost, fit_mrkdwn, json_cost

SAMPLES = [
    "",
    "plain words",
    'a "quoted" name \\ with a backslash',
    "lines\nand\ttabs\r\b\f",
    "controls \x00\x01\x1f and \x7f",
    "emoji 🔴🟠 accents é and a line separator \u2028",
    "&lt;!channel&gt; &amp;",
    "".join(chr(code) for code in range(0x80)),
]


@pytest.mark.parametrize("text", SAMPLES)
def test_json_cost_is_the_sum_of_each_characters_cost(text: str) -> None:
    assert json_cost(text) == sum(map(_char_cost, text))


@pytest.mark.parametrize("text", SAMPLES)
def test_json_cost_is_what_compact_json_takes(text: str) -> None:
    """Compact JSON without ASCII escaping: the text's characters between the quotes."""
    assert json_cost(text) == len(json.dumps(text, ensure_ascii=False)) - 2


def test_a_text_that_fits_at_the_highest_cost_is_kept_and_one_more_character_is_measured() -> None:
    limit = 60
    widest = "\x01" * (limit // MAX_CHAR_COST)
    assert fit_mrkdwn("{}", widest, limit=limit) == widest
    assert fit_mrkdwn("{}", widest + "\x01", limit=limit).endswith(SHORTENED)
    assert json_cost(fit_mrkdwn("{}", widest + "\x01", limit=limit)) <= limit
