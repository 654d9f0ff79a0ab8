"""How exports write dates and numbers, and the plain text churnbot parses instead.

A CRM or a spreadsheet writes 01/31/2024 or 31.01.2024 for a date, and $1,234.50, 1.234,5 or
80% for a number. ``format:`` on a mapping entry in sources.yaml names the spelling: a
strftime pattern for a date (``"%m/%d/%Y"``), a sample number for a number's separators
(``"1,234.5"``). The validator turns such cells into the text it parses everywhere else
(``2024-01-31``, ``1234.50``), so a cell that does not follow the format is a rejected cell
with its own message, never a guess; ``init`` proposes the format it found in the export.

A day-first and a month-first pattern both read 01/02/2024: only the data (a day above 12)
tells them apart, so ``init`` says when it could not.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

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
#: Spaces a "1 234,5" export may group digits with: a space, a no-break or a narrow one.
_SPACES = "[ \u00a0\u202f]"


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
        rf"^\s*{_CURRENCY}?\s*(?P<sign>[-+]?)\s*{_CURRENCY}?\s*"
        rf"(?P<whole>\d{{1,3}}(?:{group}\d{{3}})+|\d+)(?:{re.escape(decimal)}(?P<part>\d+))?"
        rf"\s*(?:%|{_CURRENCY})?\s*$"
    )
