"""How one reason, and one card's context line, read for one account: the sentence logic that
start-up checks render against a made-up row and the card codec renders when a card is read.

Plain Python on plain values (int, float, bool, str, datetime, :data:`BLANK`): the web process
renders cards with it and must not pay for pandas or scikit-learn at start-up.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

from models.cell_formats import percent_text

HEALTHY = "Healthy: "
#: Levels whose churn rates are within this factor of each other are not compared in words:
#: the sentence would read "churns 1.0x as often", which says the level makes no difference.
SAME_RATE = 1.05
PLURAL = "plural:"


class Wording(Protocol):
    """How one feature's reason reads: the names it needs and the sentence for one account."""

    fields: tuple[str, ...]

    def render(self, record: Mapping[str, object]) -> str: ...

    def to_spec(self) -> dict[str, Any]: ...


class Template:
    """A sentence template of config/reasons.yaml."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.fields = template_fields(template)
        self._counted = counted_fields(template)
        self._dated = dated_fields(template) - self._counted

    def render(self, record: Mapping[str, object]) -> str:
        # A template that counts with none of its fields and formats no date (most) formats
        # the record as it is: format_map reads only the names it needs. Otherwise the record
        # is copied and only the fields it counts with (:func:`counted_fields`) or may format
        # as a date (:func:`dated_fields`) are wrapped, each looked up once: a comprehension
        # over the record or the template's fields cost a card ~6K instructions per counting
        # reason. A field the record lacks stays absent, so format_map raises KeyError either
        # way.
        if not self._counted and not self._dated:
            return self.template.format_map(record)
        values = dict(record)
        for name in self._counted:
            if name in values:
                values[name] = counted(values[name])
        for name in self._dated:
            value = values.get(name)
            if type(value) is dt.datetime and value.tzinfo is None:
                values[name] = Dated(value)
        return self.template.format_map(values)

    def to_spec(self) -> dict[str, Any]:
        return {"template": self.template}


class Count:
    """A number in a template that can also say how many of something it counts:
    ``{open_escalations:plural:open escalation}`` reads "1 open escalation", "5 open
    escalations". Every other format spec formats the number as it is."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        if spec.startswith(PLURAL):
            count = round(float(self.value))
            return f"{count:,} {spec.removeprefix(PLURAL)}{'' if count == 1 else 's'}"
        return format(self.value, spec)


def countable(record: Mapping[str, object]) -> dict[str, object]:
    """``record`` with its plain numbers as :class:`Count` (bools stay bools)."""
    return {name: counted(value) for name, value in record.items()}


def counted(value: object) -> object:
    """``value`` as :class:`Count` if it is a plain number (bools stay bools), else as it
    is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Count(value)
    return value


class Dated:
    """A naive datetime in a template, formatted through a cache (:func:`date_text`)."""

    __slots__ = ("value",)

    def __init__(self, value: dt.datetime) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return date_text(self.value, spec)


@functools.lru_cache(maxsize=1024)
def date_text(value: dt.datetime, spec: str) -> str:
    """``value`` formatted by ``spec``, once per date and spec: the dates cards show (a
    renewal day) are days of a few months, shared by many accounts, and strftime cost ~4 us
    a reason ("{renewal_date:%b %d}"), a sixth of decoding a card that has one. Naive
    datetimes only: equal aware ones in different zones would share a text."""
    return format(value, spec)


class Generated:
    """The sentence of a feature without a template: label, value, and the reference learned
    from the training rows (a median among accounts that stayed, or each level's churn rate).

    ``field`` is the value shown: the user's column for as_is/clip/log, else the feature's own
    value (``<name>_feature``: a date feature named after its column shows days, not the date).
    ``unit`` (features.yaml): ``percent`` shows a fraction as a percentage ("41%"), as the
    export wrote it; None a plain number.
    """

    def __init__(
        self,
        *,
        label: str,
        transform: str,
        field: str,
        reference: Mapping[str, Any],
        healthy: bool,
        unit: str | None = None,
    ) -> None:
        self.label = label
        self.transform = transform
        self.field = field
        self.reference = reference
        self.healthy = healthy
        self.unit = unit
        self.prefix = HEALTHY if healthy else ""
        self.fields: tuple[str, ...] = (field,)

    def to_spec(self) -> dict[str, Any]:
        return {
            "generated": {
                "label": self.label,
                "transform": self.transform,
                "field": self.field,
                "reference": dict(self.reference),
                "healthy": self.healthy,
                # Only when set: a spec without one reads as it did before units existed.
                **({"unit": self.unit} if self.unit is not None else {}),
            }
        }

    def render(self, record: Mapping[str, object]) -> str:
        value = record.get(self.field)
        kind = self.transform
        if kind == "missing":
            return f"{self.prefix}{self.label}: {'recorded' if self.prefix else 'not recorded'}"
        if kind in ("category", "yes_no"):
            return self.prefix + self._level(value)
        shown = self._number(value)
        median = self.reference.get("median")
        if median is None:
            return f"{self.prefix}{self.label}: {shown}"
        stayed = self._number(median)
        return f"{self.prefix}{self.label}: {shown} (accounts that stayed: median {stayed})"

    def _number(self, value: object) -> str:
        if is_missing(value):
            return "not recorded"
        number = float(cast("float", value))
        kind = self.transform
        if kind == "change":
            return f"{number:+.0%}"
        if kind in ("days_until", "days_since"):
            return f"{number:,.0f} day{'' if round(number) == 1 else 's'}"
        if self.unit == "percent":
            return percent_text(number)
        if number.is_integer():
            return f"{number:,.0f}"
        return f"{number:,.2f}"

    def _level(self, value: object) -> str:
        if is_missing(value):
            return f"{self.label}: not recorded"
        level = level_name(value)
        rates = {level_name(k): v for k, v in self.reference.get("rates", {}).items()}
        text = f"{self.label}: {level}"
        rate = rates.get(level)
        if rate is None or len(rates) < 2:
            return text
        other_level, other_rate = (min if not self.prefix else max)(
            rates.items(), key=lambda item: item[1]
        )
        if other_level == level or min(rate, other_rate) <= 0:
            return text
        times = rate / other_rate
        if 1 / SAME_RATE < times < SAME_RATE:
            # "churns 1.0x as often as" says the level makes no difference, beside a reason
            # that says it does (the model weighs it with the other features): say neither.
            return text
        return f"{text} (churns {times:.1f}x as often as {other_level})"


def wording_from_spec(spec: Mapping[str, Any]) -> Wording:
    """The wording a :meth:`Wording.to_spec` describes."""
    if "template" in spec:
        return Template(spec["template"])
    return Generated(**spec["generated"])


def level_name(value: object) -> str:
    """A level as a CSM reads it: yes/no for booleans and 1.0/0.0 flags, else the text."""
    if isinstance(value, bool) or value in (1.0, 0.0, "True", "False", "1.0", "0.0"):
        return "yes" if value in (True, 1.0, "True", "1.0") else "no"
    return str(value)


def is_missing(value: object) -> bool:
    """An empty cell: None, NaN or a template's BLANK (the values a card is rendered from)."""
    return value is None or value is BLANK or (isinstance(value, float) and math.isnan(value))


class _Blank:
    """An empty cell in a template: reads "not recorded" whatever the format asks for."""

    def __format__(self, spec: str) -> str:
        return "not recorded"


BLANK = _Blank()


def _replacement_fields(template: str) -> Iterator[tuple[str, str, bool]]:
    """Each named field of a template, nested format specs ("{x:{width}}") included, in
    order: its name, its format spec, and whether it reads the value otherwise than by
    formatting it (a conversion, an attribute or an index)."""
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field:
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            yield name, spec or "", bool(conversion) or name != field
        if spec:
            yield from _replacement_fields(spec)


def template_fields(template: str) -> tuple[str, ...]:
    """The names a template reads, nested format specs ("{x:{width}}") included."""
    return tuple(dict.fromkeys(name for name, _, _ in _replacement_fields(template)))


def counted_fields(template: str) -> frozenset[str]:
    """The names of a template that :func:`countable` must wrap for it: those it counts with
    (``plural:``), or reads otherwise than formatting the value (a conversion, an attribute
    or index, a nested format spec). Any other spec formats a :class:`Count` exactly as the
    number it holds, so wrapping those would only cost a call each."""
    return frozenset(
        name
        for name, spec, indirect in _replacement_fields(template)
        if indirect or spec.startswith(PLURAL) or "{" in spec
    )


def dated_fields(template: str) -> frozenset[str]:
    """The names of a template that :meth:`Template.render` formats through
    :func:`date_text` when their value is a naive datetime: those it reads only by
    formatting them, at least once with a spec that only a date takes (a ``%`` before its
    last character: a number's spec has one only as its type, ``.0%``)."""
    indirect = {name for name, _, indirect in _replacement_fields(template) if indirect}
    return frozenset(
        name
        for name, spec, _ in _replacement_fields(template)
        if name not in indirect and "%" in spec[:-1]
    )


def context_text(value: object, template: str | None) -> str:
    """One value of a card's context line as shown: the configured format where it fits,
    else yes/no, a date, or a number rounded for reading."""
    if template is not None:
        try:
            return template.format(value=value)
        except (ValueError, TypeError):
            pass  # a value the format does not fit (text in a number format): shown plainly
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return f"{value:%b %d, %Y}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)
