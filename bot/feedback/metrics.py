"""Is the product working? Weekly adoption, acceptance, corrections, actions done, precision.

Pure functions of the events table (``bot.feedback.events.events_table``), the target CSMs and
the known outcomes, so every definition is tested without Redis or Slack:

* **unit**: an *account-week* (one account, one Monday-to-Sunday UTC week): a digest shows an
  account every week, and several clicks on it in one week are one engagement;
* **adoption**: target CSMs (Slack users mapped to an owner in config/slack.yaml) who answered
  at least once that week, over all target CSMs; by segment, over the targets owning accounts
  in that segment. Opted-out answers cannot be attributed and are counted apart;
* **acceptance**: helpful / (helpful + not helpful), counting each person's latest vote on one
  account and snapshot (a changed mind counts once, as its last answer);
* **correction rate** and **action completion**: share of answered account-weeks with a
  correction, with "action done";
* **precision of flagged accounts**: of the answered account-weeks shown at high risk whose
  outcome is known (churned within the horizon of the as-of date, or seen alive past it, from
  the account data; else what a CSM reported: "already churned" or "renewed"), the share that
  churned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.feedback.outcomes import Outcome, churned_within

if TYPE_CHECKING:  # pandas where the figures are computed, not in the web process's imports
    import pandas as pd

ALL = "all"


@dataclass(frozen=True)
class Targets:
    """The CSMs expected to use the bot: Slack user id -> segments of the accounts they own."""

    segments_of: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def in_segment(self, segment: str) -> set[str]:
        return {user for user, segments in self.segments_of.items() if segment in segments}


@dataclass(frozen=True)
class Rates:
    """Counts of one slice (a week, or a week's segment or action) and the rates they give."""

    events: int = 0
    account_weeks: int = 0
    helpful: int = 0
    not_helpful: int = 0
    corrected: int = 0
    done: int = 0
    flagged_known: int = 0
    flagged_churned: int = 0
    anonymous: int = 0

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def acceptance(self) -> float | None:
        return self._share(self.helpful, self.helpful + self.not_helpful)

    @property
    def correction_rate(self) -> float | None:
        return self._share(self.corrected, self.account_weeks)

    @property
    def completion(self) -> float | None:
        return self._share(self.done, self.account_weeks)

    @property
    def precision(self) -> float | None:
        return self._share(self.flagged_churned, self.flagged_known)


@dataclass(frozen=True)
class Adoption:
    active: int
    targets: int

    @property
    def share(self) -> float | None:
        return self.active / self.targets if self.targets else None


@dataclass(frozen=True)
class WeekFigures:
    week: dt.date  # the Monday
    overall: Rates
    adoption: Adoption
    by_segment: dict[str, Rates]
    adoption_by_segment: dict[str, Adoption]
    by_action: dict[str, Rates]


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _weeks(at: pd.Series) -> pd.Series:
    import pandas as pd

    days = at.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date


def _outcome_labels(
    flagged: pd.DataFrame,
    corrections: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    horizon: dt.timedelta,
) -> pd.Series:
    """Per flagged account-week: True churned, False did not, None unknown yet."""
    import pandas as pd

    reported = (
        corrections.sort_values("at")
        .drop_duplicates(["account_id", "week"], keep="last")
        .set_index(["account_id", "week"])["real_state"]
    )
    labels = []
    for account, week, as_of in flagged[["account_id", "week", "as_of"]].itertuples(index=False):
        reference = dt.date.fromisoformat(as_of) if isinstance(as_of, str) and as_of else week
        label = churned_within(outcomes.get(account), reference, horizon)
        if label is None:
            state = reported.get((account, week))
            label = True if state == "churned" else False if state == "renewed" else None
        labels.append(label)
    return pd.Series(labels, index=flagged.index, dtype=object)


def _rates(frame: pd.DataFrame, labels: pd.Series) -> Rates:
    if frame.empty:
        return Rates()
    thumbs = frame[frame["kind"].isin(["helpful", "not_helpful"])].copy()
    thumbs["voter"] = thumbs["user"].fillna(thumbs["event_id"])
    votes = thumbs.sort_values("at").drop_duplicates(
        ["voter", "account_id", "snapshot_id"], keep="last"
    )
    units = frame.groupby(["account_id", "week"])["kind"].agg(set)
    known = labels.reindex(frame.index).dropna()
    flagged = frame.loc[known.index, ["account_id", "week"]].assign(label=known.astype(bool))
    flagged = flagged.drop_duplicates(["account_id", "week"])
    return Rates(
        events=len(frame),
        account_weeks=len(units),
        helpful=int((votes["kind"] == "helpful").sum()),
        not_helpful=int((votes["kind"] == "not_helpful").sum()),
        corrected=int(units.map(lambda kinds: "correction" in kinds).sum()),
        done=int(units.map(lambda kinds: "action_done" in kinds).sum()),
        flagged_known=len(flagged),
        flagged_churned=int(flagged["label"].sum()),
        anonymous=int(frame["user"].isna().sum()),
    )


def _adoption(frame: pd.DataFrame, targets: set[str]) -> Adoption:
    active = set(frame["user"].dropna()) & targets
    return Adoption(active=len(active), targets=len(targets))


def _labelled(
    events: pd.DataFrame, outcomes: Mapping[str, Outcome], high_risk: float, horizon_days: int
) -> tuple[pd.DataFrame, pd.Series]:
    """The events with their week and segment, and the outcome labels of the flagged ones."""
    frame = events.assign(week=_weeks(events["at"]), segment=events["segment"].fillna("unknown"))
    flagged = frame[frame["risk"] >= high_risk]
    labels = _outcome_labels(
        flagged,
        frame[frame["kind"] == "correction"],
        outcomes,
        dt.timedelta(days=horizon_days),
    )
    return frame, labels


def period_figures(
    events: pd.DataFrame,
    *,
    targets: Targets,
    outcomes: Mapping[str, Outcome],
    high_risk: float,
    horizon_days: int,
) -> tuple[Rates, Adoption]:
    """All of ``events`` as one slice, e.g. the answers to one model version's scores over
    its whole time in service (a release record): rates as :func:`weekly_figures` defines
    them, adoption as the target CSMs who answered at least once in the period."""
    frame, labels = _labelled(events, outcomes, high_risk, horizon_days)
    return _rates(frame, labels), _adoption(frame, set(targets.segments_of))


def weekly_figures(
    events: pd.DataFrame,
    *,
    weeks: Iterable[dt.date],
    targets: Targets,
    outcomes: Mapping[str, Outcome],
    high_risk: float,
    horizon_days: int,
) -> list[WeekFigures]:
    """Figures for each week in ``weeks`` (Mondays), in that order; a week without events
    gets zero counts, so a silent week shows up as such instead of disappearing."""
    frame, labels = _labelled(events, outcomes, high_risk, horizon_days)
    everyone = set(targets.segments_of)
    figures = []
    for week in weeks:
        rows = frame[frame["week"] == week]
        segments = sorted(
            set(rows["segment"]) | {s for v in targets.segments_of.values() for s in v}
        )
        figures.append(
            WeekFigures(
                week=week,
                overall=_rates(rows, labels),
                adoption=_adoption(rows, everyone),
                by_segment={s: _rates(rows[rows["segment"] == s], labels) for s in segments},
                adoption_by_segment={
                    s: _adoption(rows[rows["segment"] == s], targets.in_segment(s))
                    for s in segments
                },
                by_action={
                    a: _rates(rows[rows["action_rule"] == a], labels)
                    for a in sorted(set(rows["action_rule"]))
                },
            )
        )
    return figures


# --- text -------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} {_pct(part / whole if whole else None)}" if whole else "n/a"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def answered(rates: Rates) -> str:
    """ "3 answers on 2 accounts"."""
    return f"{_count(rates.events, 'answer')} on {_count(rates.account_weeks, 'account')}"


def rates_line(rates: Rates) -> str:
    return (
        f"acceptance {_ratio(rates.helpful, rates.helpful + rates.not_helpful)} · "
        f"corrections {_ratio(rates.corrected, rates.account_weeks)} · "
        f"actions done {_ratio(rates.done, rates.account_weeks)} · "
        f"precision of flagged {_ratio(rates.flagged_churned, rates.flagged_known)}"
    )


def stats_text(figures: list[WeekFigures]) -> str:
    """The ``/churn-admin stats`` answer: one line per week, then the latest week by segment
    and by action. Plain words; every figure shows its counts, so small numbers look small."""
    lines = ["*Feedback, by week* (weeks start Monday, UTC)"]
    for week in figures:
        o = week.overall
        lines.append(
            f"• *{week.week}* · {answered(o)} · adoption "
            f"{_ratio(week.adoption.active, week.adoption.targets)} · {rates_line(o)}"
            + (f" · {o.anonymous} anonymous" if o.anonymous else "")
        )
    if figures:
        latest = figures[-1]
        lines.append(f"*Week of {latest.week}, by segment*")
        for segment, rates in latest.by_segment.items():
            adoption = latest.adoption_by_segment[segment]
            lines.append(
                f"• {segment}: adoption {_ratio(adoption.active, adoption.targets)} · "
                f"{rates_line(rates)}"
            )
        lines.append(f"*Week of {latest.week}, by recommended action*")
        lines += [
            f"• `{action}`: {rates_line(rates)}" for action, rates in latest.by_action.items()
        ]
        if not latest.by_action:
            lines.append("• no answers yet this week")
    if figures and not figures[-1].adoption.targets:
        lines.append(
            "_Adoption needs target CSMs: map Slack users to owners in config/slack.yaml "
            "(`owners`)._"
        )
    return "\n".join(lines)
