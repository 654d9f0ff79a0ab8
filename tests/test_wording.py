"""Reason templates (``models.wording.Template``) render what str.format_map of the record
with its numbers countable would, while wrapping only the fields a template reads."""

from __future__ import annotations

import pytest

from models.wording import Template, countable

RECORD: dict[str, object] = {
    "usage_drop": 0.48,
    "window": 30,
    "open_escalations": 1,
    "seats": 12.0,
    "width": 6,
    "plan": "growth",
    "auto_renew": False,
}


@pytest.mark.parametrize(
    "template",
    [
        "Logins down {usage_drop:.0%} on the previous {window} days",
        "{open_escalations:plural:open escalation}, {seats:plural:seat}",
        "{seats:>{width}} seats on the {plan} plan",
        "Auto-renew {auto_renew}; {plan!r}",
        "No field at all",
    ],
)
def test_render_matches_formatting_the_whole_record(template: str) -> None:
    assert Template(template).render(RECORD) == template.format_map(countable(RECORD))


def test_render_of_a_field_the_record_lacks_raises_key_error() -> None:
    with pytest.raises(KeyError, match="tenure"):
        Template("{tenure} months, {plan}").render(RECORD)
