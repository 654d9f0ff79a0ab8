"""Reason templates (``models.wording.Template``) render what str.format_map of the record
with its numbers countable would, while wrapping only the fields a template reads, and of
those only the ones it counts with or reads otherwise than formatting them."""

from __future__ import annotations

import datetime as dt

import pytest

from models.wording import Generated, Template, countable, counted_fields, dated_fields

RECORD: dict[str, object] = {
    "usage_drop": 0.48,
    "window": 30,
    "open_escalations": 1,
    "seats": 12.0,
    "width": 6,
    "plan": "growth",
    "auto_renew": False,
    "renewal": dt.datetime(2027, 2, 9),
    "signed": dt.datetime(2025, 6, 30, 14, 5, tzinfo=dt.UTC),
}


@pytest.mark.parametrize(
    "template",
    [
        "Logins down {usage_drop:.0%} on the previous {window} days",
        "{open_escalations:plural:open escalation}, {seats:plural:seat}",
        "{seats:>{width}} seats on the {plan} plan",
        "Auto-renew {auto_renew}; {plan!r}",
        "{window:plural:day}, {window:>4} days, {window}",
        "{seats:{width}} seats, {seats:,.1f}",
        "No field at all",
        "Renewal on {renewal:%b %d} ({renewal:%Y}), {renewal}, {renewal:>22}",
        "Signed {signed:%b %d %H:%M %Z}, renewal {renewal.year} {renewal:%b}",
        "{usage_drop:%>8} {usage_drop:>8.1%}",
    ],
)
def test_render_matches_formatting_the_whole_record(template: str) -> None:
    assert Template(template).render(RECORD) == template.format_map(countable(RECORD))


def test_render_of_a_field_the_record_lacks_raises_key_error() -> None:
    with pytest.raises(KeyError, match="tenure"):
        Template("{tenure} months, {plan}").render(RECORD)


def test_a_number_read_through_an_attribute_fails_as_a_countable_one_does() -> None:
    """A template that reads a number otherwise than formatting it gets the Count still."""
    with pytest.raises(AttributeError, match="real"):
        Template("{seats.real} seats").render(RECORD)
    with pytest.raises(AttributeError, match="real"):
        "{seats.real} seats".format_map(countable(RECORD))


@pytest.mark.parametrize(
    ("template", "counted"),
    [
        ("{usage_drop:.0%} over {window} days", set()),
        ("{open_escalations:plural:open escalation} in {window:>3} days", {"open_escalations"}),
        ("{seats:{width}} of {plan!r} and {x.real} {y[0]}", {"seats", "plan", "x", "y"}),
    ],
)
def test_only_fields_counted_or_read_otherwise_are_wrapped(
    template: str, counted: set[str]
) -> None:
    assert counted_fields(template) == counted


@pytest.mark.parametrize(
    ("template", "dated"),
    [
        ("Renewal in {days:plural:day} ({renewal:%b %d})", {"renewal"}),
        ("{usage_drop:.0%} and {share:>8.1%} on {day}", set()),
        ("{renewal:%b %d}, {renewal.year}; {signed:%Y} {signed!r}", set()),
        ("{renewal:%Y} and {renewal:plural:year}", {"renewal"}),
    ],
)
def test_only_fields_formatted_as_dates_alone_are_dated(template: str, dated: set[str]) -> None:
    """A date text is cached for a field read only by formatting it, with a date's spec."""
    assert dated_fields(template) == dated


@pytest.mark.parametrize(
    ("rates", "healthy", "shown"),
    [
        # A level that churns about as often as the other is not compared: "1.0x as often"
        # beside a reason for risk reads as "it makes no difference".
        ({"Male": 0.262, "Female": 0.255}, False, "Gender: Male"),
        ({"Male": 0.255, "Female": 0.262}, True, "Healthy: Gender: Male"),
        ({"Male": 0.40, "Female": 0.20}, False, "Gender: Male (churns 2.0x as often as Female)"),
        (
            {"Male": 0.10, "Female": 0.20},
            True,
            "Healthy: Gender: Male (churns 0.5x as often as Female)",
        ),
    ],
)
def test_a_level_is_compared_only_where_its_churn_rate_differs(
    rates: dict[str, float], healthy: bool, shown: str
) -> None:
    wording = Generated(
        label="Gender",
        transform="category",
        field="gender",
        reference={"rates": rates},
        healthy=healthy,
    )
    assert wording.render({"gender": "Male"}) == shown
