"""How exports write dates and numbers, and the plain text churnbot parses instead.

A CRM or a spreadsheet writes 01/31/2024 or 31.01.2024 for a date, and $1,234.50, 1.234,5 or
80% for a number. ``format:`` on a mapping entry in sources.yaml names the spelling: a
strftime pattern for a date (``"%m/%d/%Y"``), a sample number for a number's separators
(``"1,234.5"``). The validator turns such cells into the text it parses everywhere else
(``2024-01-31``, ``1234.50``), so a cell that does not follow the format is a rejected cell
with its own message, never a guess; ``init`` proposes the format it found in the export.

A day-first and a month-first pattern both read 01/02/2024: only the data (a day above 12)
tells them apart, so ``init`` says when it could not.

A percentage ("78%", "57 %", "57,5 %") is a fraction: ``scale: 0.01`` reads it as 0.78, as a
spreadsheet's percentage cell holds it, and a feature's ``unit: percent`` shows it as 78% again
on a card (:func:`percent_text`). ``init`` writes both for a column written with percent signs.

A typed timestamp (a Parquet or SQL column, 2026-11-16 09:14:03) is read as its day, as a CSV
date is (:func:`timestamp_days`): rows of one weekly snapshot written seconds apart share it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

if TYPE_CHECKING:  # pandas where columns are read, not where settings are
    import pandas as pd

#: A number's spellings: the sample a user writes as its format -> (thousands, decimal).
NUMBER_FORMATS: dict[str, tuple[str, str]] = {
    "1,234.5": (",", "."),
    "1.234,5": (".", ","),
    "1 234,5": (" ", ","),
    "1'234.5": ("'", "."),
}
#: Date patterns ``init`` tries, most common first (month-first before day-first: where both
#: read every value, the export says nothing and the first is proposed, with a check).
DATE_FORMATS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
)
#: The day every date example is written for (a day above 12 shows which part is the day).
EXAMPLE_DAY = dt.date(2024, 1, 31)
#: Dates as Unix time, as APIs and event exports write them: seconds or milliseconds since
#: 1970-01-01 UTC, read as their UTC day.
EPOCH_UNITS: dict[str, Literal["s", "ms"]] = {"epoch": "s", "epoch_ms": "ms"}
_CURRENCY = "[$€£¥₹]"
#: Spaces a "1 234,5" export may group digits with: a space, a no-break or a narrow one (also
#: what stands between a number and its sign in "57 %" or "12,50 €" as European locales write
#: them). Arrow's regex engine reads ``\s`` as ASCII spaces only, so they are named here.
_SPACES = "[ \u00a0\u202f]"
_GAP = f"(?:\\s|{_SPACES})*"
#: The units a feature's value may be shown in (features.yaml ``unit:``).
UNITS = ("percent",)
#: What ``scale:`` reads a percentage cell with: 78% is 0.78.
PERCENT_SCALE = 0.01
#: A cell written as a percentage: a percent sign last.
PERCENT_CELL = re.compile(r"%\s*$")


def date_example(fmt: str) -> str:
    """How ``fmt`` writes 31 January 2024, for messages."""
    if fmt in EPOCH_UNITS:
        seconds = int(dt.datetime.combine(EXAMPLE_DAY, dt.time(), dt.UTC).timestamp())
        return str(seconds * (1000 if fmt == "epoch_ms" else 1))
    return EXAMPLE_DAY.strftime(fmt)


def format_problem(fmt: str, column_type: str) -> str | None:
    """Why ``fmt`` cannot read a ``column_type`` column, or None when it can."""
    if column_type in ("int", "float"):
        if fmt in NUMBER_FORMATS:
            return None
        return f"{fmt!r} is not a number format; use one of {', '.join(NUMBER_FORMATS)}"
    if column_type != "date":
        return f"format applies to date, int or float columns, not {column_type}"
    if fmt in EPOCH_UNITS:
        return None
    try:  # the codes pandas reads a column with are strptime's
        back = dt.datetime.strptime(date_example(fmt), fmt).date()
    except ValueError:
        back = None
    if back != EXAMPLE_DAY:
        return (
            f"{fmt!r} does not read back a date: use strftime codes for the day, the month "
            "and the year, such as %m/%d/%Y or %d.%m.%Y, or epoch / epoch_ms for Unix time"
        )
    return None


def number_pattern(fmt: str) -> re.Pattern[str]:
    """A cell written in ``fmt``: an optional currency sign and sign, the whole part (grouped
    by the thousands separator or not), the decimal part, an optional percent or currency."""
    thousands, decimal = NUMBER_FORMATS[fmt]
    group = _SPACES if thousands == " " else re.escape(thousands)
    return re.compile(
        rf"^{_GAP}{_CURRENCY}?{_GAP}(?P<sign>[-+]?){_GAP}{_CURRENCY}?{_GAP}"
        rf"(?P<whole>\d{{1,3}}(?:{group}\d{{3}})+|\d+)(?:{re.escape(decimal)}(?P<part>\d+))?"
        rf"{_GAP}(?:%|{_CURRENCY})?{_GAP}$"
    )


def unit_problem(unit: object) -> str | None:
    """Why ``unit`` is not a unit a feature can be shown in, or None when it is."""
    if unit in UNITS:
        return None
    close = difflib.get_close_matches(str(unit), UNITS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"unknown unit {unit!r}; {hint}use percent (the column holds fractions, 0.78 for 78%, "
        "as scale: 0.01 in sources.yaml reads a cell written 78%), or leave unit out"
    )


def percent_text(fraction: float) -> str:
    """A fraction as a CSM reads a percentage: 0.78 -> "78%", 0.575 -> "57.5%" (at most one
    decimal, none when it is 0)."""
    text = f"{round(fraction * 100, 1) + 0.0:,.1f}"
    return f"{text.removesuffix('.0')}%"


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None when it is."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, available_timezones(), n=1, cutoff=0.8)
        hint = f"did you mean {close[0]}?" if close else "expected e.g. America/New_York or UTC"
        return f"unknown IANA time zone {name!r}; {hint}"
    return None


def timestamp_days(column: pd.Series, timezone: str = "UTC") -> pd.Series:
    """A typed timestamp column (Parquet, SQL) as days, the way a CSV date is read: the time
    of day dropped, so rows of one snapshot written seconds apart share their day. A
    time-zone-aware timestamp is read as its day in ``timezone`` (sources.yaml ``timezone:``,
    UTC unless set); a naive one as the day it names. Any other column is returned as it is."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert(timezone).dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(dtype):
        return column
    return column.dt.normalize()
