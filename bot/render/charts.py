"""The admins' charts as PNG images with alt text: calibration, adoption and acceptance by
week, save rate per action.

Why matplotlib is imported inside :func:`_png` only: the web process must not pay for it (about
half a second and tens of MB) at start-up, and only an admin's `/churn-admin stats` or the
weekly report ever draws. Drawing uses a standalone ``Figure`` on the Agg canvas, never
``pyplot``: no global figure state, so two threads may draw at once.

Every chart carries alt text that states the figures it shows, so a screen reader, a
notification or a test reads the same numbers the picture does.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: importing this module costs nothing in the web process
    from matplotlib.axes import Axes

    from bot.feedback.metrics import WeekFigures
    from models.metrics import CalibrationRow
    from models.save_rate import SaveRate

#: Slack shows at most this much alt text for a file; longer text is cut with an ellipsis.
MAX_ALT_TEXT = 1000
_SIZE_INCHES = (7.0, 4.0)
_DPI = 100


@dataclass(frozen=True)
class Chart:
    """One image to upload: a file name, a title, alt text and the PNG bytes."""

    filename: str
    title: str
    alt_text: str
    png: bytes


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _alt(text: str) -> str:
    return text if len(text) <= MAX_ALT_TEXT else text[: MAX_ALT_TEXT - 1] + "…"


def _png(draw: Callable[[Axes], None]) -> bytes:
    """Draw on one fresh Agg figure and return it as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _percent_axis(axes: Axes, which: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    axis = axes.yaxis if which == "y" else axes.xaxis
    axis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def calibration_chart(rows: Sequence[CalibrationRow], *, source: str) -> Chart:
    """Predicted against observed churn by decile of predicted risk; ``source`` says which
    accounts the rows come from (shown in the title and the alt text)."""
    title = "Predicted vs observed churn, by decile of risk"

    def draw(axes: Axes) -> None:
        positions = [row.bin for row in rows]
        axes.bar(positions, [row.observed_rate for row in rows], color="#9ecae1", label="observed")
        axes.plot(
            positions,
            [row.mean_predicted for row in rows],
            marker="o",
            color="#08519c",
            label="predicted",
        )
        axes.set_xticks(positions, [f"{row.bin}\nn={row.count}" for row in rows])
        axes.set_xlabel("decile of predicted risk (1 = lowest)")
        axes.set_ylabel("churn rate")
        _percent_axis(axes)
        axes.set_title(f"{title}\n{source}", fontsize=10)
        axes.legend(loc="upper left")

    per_bin = "; ".join(
        f"{row.bin}: predicted {_pct(row.mean_predicted)}, observed {_pct(row.observed_rate)}"
        f" (n={row.count})"
        for row in rows
    )
    alt = f"{title} ({source}). Decile {per_bin}."
    return Chart("calibration.png", title, _alt(alt), _png(draw))


def adoption_chart(weeks: Sequence[WeekFigures]) -> Chart:
    """Adoption (share of target CSMs who answered) and acceptance (helpful over helpful plus
    not helpful) week by week; a week without the figure leaves a gap, not a zero."""
    title = "Adoption and acceptance, week by week"
    adoption = [week.adoption.share for week in weeks]
    acceptance = [week.overall.acceptance for week in weeks]

    def draw(axes: Axes) -> None:
        labels = [f"{week.week:%b %d}" for week in weeks]
        nan = float("nan")
        for values, name, color in (
            (adoption, "adoption", "#08519c"),
            (acceptance, "acceptance", "#e6550d"),
        ):
            axes.plot(
                labels,
                [nan if v is None else v for v in values],
                marker="o",
                label=name,
                color=color,
            )
        axes.set_ylim(0, 1.05)
        axes.set_xlabel("week starting (Monday, UTC)")
        _percent_axis(axes)
        axes.set_title(title, fontsize=10)
        axes.legend(loc="lower left")

    per_week = "; ".join(
        f"week of {week.week}: adoption {_pct(a)} ({week.adoption.active} of "
        f"{week.adoption.targets} CSMs), acceptance {_pct(c)}"
        for week, a, c in zip(weeks, adoption, acceptance, strict=True)
    )
    return Chart("adoption.png", title, _alt(f"{title}. {per_week}."), _png(draw))


def save_rate_chart(rates: Sequence[SaveRate]) -> Chart:
    """Save rate per action (``models.save_rate``: the share of comparable churn that did not
    happen where the action was done) with its interval, zero marked: an interval across zero
    means no evidence the action helps. Observational, and the title says so."""
    title = "Save rate per action (observational comparison, not an experiment)"

    def draw(axes: Axes) -> None:
        axes.axvline(0, color="#636363", linewidth=1)
        for position, rate in enumerate(rates):
            if rate.estimate is None or rate.low is None or rate.high is None:
                axes.annotate(
                    "not enough data yet",
                    (0, position),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    color="#636363",
                )
                continue
            axes.errorbar(
                rate.estimate,
                position,
                xerr=[[rate.estimate - rate.low], [rate.high - rate.estimate]],
                fmt="o",
                color="#08519c",
                capsize=4,
            )
        axes.set_yticks(range(len(rates)), [rate.action for rate in rates])
        axes.invert_yaxis()
        axes.set_xlabel("share of comparable churn avoided where the action was done")
        _percent_axis(axes, "x")
        axes.set_title(title, fontsize=10)

    def line(rate: SaveRate) -> str:
        counts = f"{rate.done} done, {rate.control_units} comparable not"
        if rate.estimate is None:
            return f"{rate.action}: not enough data yet ({counts})"
        return (
            f"{rate.action}: {_pct(rate.estimate)} ({rate.confidence:.0%} interval "
            f"{_pct(rate.low)} to {_pct(rate.high)}; {counts})"
        )

    per_action = "; ".join(line(rate) for rate in rates)
    return Chart("save-rate.png", title, _alt(f"{title}. {per_action}."), _png(draw))
