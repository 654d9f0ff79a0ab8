"""``json_cost`` counts with ``str.count`` and a regular expression: it must equal its
per-character definition (what compact JSON escapes) on every kind of character."""

from __future__ import annotations

import json

import pytest

from bot.render.text import _char_cost, json_cost

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
