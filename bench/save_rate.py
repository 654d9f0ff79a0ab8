"""Does the save-rate estimate find a planted effect, and only that one?

The story simulated (``models.generator.ActionEffect``): one playbook action works. Fixing
escalations (the ``escalations`` action) on an account whose open escalations really drive
its risk lowers its weekly churn hazard by ``--effect`` for 13 weeks; every other action does
nothing. For a quarter (13 weeks) each segment's digest shows its riskiest accounts (the top
``--shown`` share by the true hazard: an oracle model, so that the figures test the estimator
rather than the model), each with the action for its top cause. CSMs answer some accounts and
not others: each CSM answers with their own propensity, and does the action on a random share
of what they answer, whatever the account's risk (some CSMs act on everything, some on
nothing). With ``--holdout``, a share of flagged accounts is held out of the digests by the
same hash as ``/churn-admin holdout`` and becomes the control group.

The book then runs 14 more weeks so that every outcome within the 90-day horizon is known,
and ``models.save_rate`` (the function `/churn-admin stats` uses) estimates each action's save
rate from the shown accounts, the "action done" clicks and the outcomes. Per action it prints
the planted effect (``--effect`` for ``escalations``, 0 for the others), the estimate and its
interval, and whether the interval contains the planted effect; the check at the end asks for
that on at least 4 of 5 seeds for every action with enough data.

Not a speed benchmark: it measures whether a figure is right, so there is no floor to divide by.

Usage: .venv/bin/python bench/save_rate.py [--seeds 5] [--accounts 20000] [--effect 0.5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bot.digest.holdout import is_held_out
from models.generator import ActionEffect, WeekView, generate_accounts
from models.save_rate import SaveRateConfig, per_action, units

#: The action the shipped playbook (config/playbooks.yaml) recommends for each top cause.
ACTION_OF = {
    "usage_decline": "usage-drop",
    "escalations": "escalations",
    "champion_left": "champion-left",
    "low_seat_utilisation": "unused-seats",
    "overdue_invoices": "overdue-invoices",
    "renewal": "renewal-prep",
    "poor_nps": "detractor-follow-up",
    "csm_neglect": "reconnect",
    "unexplained": "default-check-in",
}
EFFECTIVE = "escalations"
CLICK_WEEKS = 13
OUTCOME_WEEKS = 14  # the 90-day horizon after the last click week, and one more
HORIZON = dt.timedelta(days=90)
END = dt.date(2026, 6, 28)
CSM_COUNT = 24


@dataclass
class Script:
    """The scripted quarter of clicks: what each digest showed and what CSMs did."""

    rng: np.random.Generator
    shown_share: float
    holdout: float
    first_day: dt.date
    propensity: np.ndarray  # per CSM: the share of shown accounts they act on
    shown: list[tuple[str, dt.date, str, str, str, bool]] = field(default_factory=list)
    done: list[tuple[str, str, dt.date]] = field(default_factory=list)
    acted: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, view: WeekView) -> dict[str, str]:
        if not self.first_day <= view.day < self.first_day + dt.timedelta(weeks=CLICK_WEEKS):
            return {}
        clicks: dict[str, str] = {}
        for segment in np.unique(view.segment):
            rows = np.flatnonzero(view.segment == segment)
            count = max(1, int(len(rows) * self.shown_share))
            top = rows[np.argsort(-view.hazard[rows], kind="stable")[:count]]
            high = view.hazard[top] >= np.quantile(view.hazard[top], 2 / 3)
            for row, is_high in zip(top, high, strict=True):
                account = str(view.account_id[row])
                action = ACTION_OF[str(view.top_cause[row])]
                held = is_held_out(account, self.holdout)
                band = "high" if is_high else "medium"
                self.shown.append((account, view.day, str(segment), band, action, held))
                if held or (account, action) in self.acted:
                    continue
                self.acted.add((account, action))
                csm = int(account[4:]) % CSM_COUNT
                if self.rng.random() < self.propensity[csm]:
                    clicks[account] = action
                    self.done.append((account, action, view.day))
        return clicks


@dataclass(frozen=True)
class Row:
    action: str
    planted: float
    estimate: float | None
    low: float | None
    high: float | None
    done: int
    control: int
    why_not: str

    @property
    def covered(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= self.planted <= self.high


def run_seed(seed: int, args: argparse.Namespace) -> list[Row]:
    weeks = CLICK_WEEKS + OUTCOME_WEEKS
    first_day = END - dt.timedelta(weeks=weeks - 1)
    rng = np.random.default_rng(seed + 1000)
    script = Script(
        rng=rng,
        shown_share=args.shown,
        holdout=args.holdout,
        first_day=first_day,
        propensity=rng.choice([0.0, 0.2, 0.4, 0.6, 0.9], CSM_COUNT),
    )
    effect = ActionEffect(action=EFFECTIVE, cause="escalations", share=args.effect, done=script)
    book = generate_accounts(args.accounts, weeks, seed=seed, end=END, action_effect=effect)
    churn = (
        book.accounts.dropna(subset=["churn_date"])
        .drop_duplicates("account_id")
        .set_index("account_id")["churn_date"]
        .dt.date
    )
    exposures = pd.DataFrame(
        script.shown, columns=["account_id", "week", "segment", "band", "action", "held_out"]
    )
    churn_dates = exposures["account_id"].map(churn)
    exposures["churned"] = [
        pd.notna(day) and week < day <= week + HORIZON
        for day, week in zip(churn_dates, exposures["week"], strict=True)
    ]
    exposures["model_version"] = "oracle"
    done = pd.DataFrame(script.done, columns=["account_id", "action", "day"]).assign(
        model_version="oracle"
    )
    table = units(exposures, done)
    config = SaveRateConfig(min_units=args.min_units, min_churned=args.min_churned)
    return [
        Row(
            action=rate.action,
            planted=args.effect if rate.action == EFFECTIVE else 0.0,
            estimate=rate.estimate,
            low=rate.low,
            high=rate.high,
            done=rate.done,
            control=rate.control_units,
            why_not=rate.why_not,
        )
        for rate in per_action(table, config)
    ]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--effect", type=float, default=0.5)
    parser.add_argument("--shown", type=float, default=0.06, help="share shown per segment")
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--min-units", type=int, default=30)
    parser.add_argument("--min-churned", type=int, default=10)
    args = parser.parse_args(argv)
    print(
        f"# {args.accounts:,} accounts, {CLICK_WEEKS} weeks of clicks, top {args.shown:.0%} "
        f"of each segment shown, planted effect {args.effect:.0%} on `{EFFECTIVE}`, holdout "
        f"{args.holdout:.0%}; 95% intervals (Mantel-Haenszel, Greenland-Robins)"
    )
    print("| seed | action | planted | estimate | 95% interval | done | control | contains |")
    print("| ---: | --- | ---: | ---: | --- | ---: | ---: | --- |")
    covered: dict[str, list[bool]] = defaultdict(list)
    for seed in range(1, args.seeds + 1):
        print(f"seed {seed}…", file=sys.stderr)
        for row in run_seed(seed, args):
            hit = row.covered
            if hit is not None:
                covered[row.action].append(hit)
            interval = (
                f"{_pct(row.low)} to {_pct(row.high)}" if row.low is not None else row.why_not
            )
            print(
                f"| {seed} | `{row.action}` | {_pct(row.planted)} | {_pct(row.estimate)} | "
                f"{interval} | {row.done} | {row.control} | "
                f"{'–' if hit is None else 'yes' if hit else 'NO'} |"
            )
    print()
    print("| action | seeds with an estimate | interval contains the planted effect | check |")
    print("| --- | ---: | ---: | --- |")
    passed = True
    needed = max(1, round(0.8 * args.seeds))
    for action, hits in sorted(covered.items()):
        ok = len(hits) >= needed and sum(hits) >= needed
        passed &= ok or (action != EFFECTIVE and len(hits) < needed)
        print(
            f"| `{action}` | {len(hits)} | {sum(hits)} | "
            f"{'pass' if ok else 'too few estimates' if len(hits) < needed else 'FAIL'} |"
        )
    effective = covered.get(EFFECTIVE, [])
    passed &= len(effective) >= needed and sum(effective) >= needed
    print(
        f"\ncheck: every interval contains its planted effect on at least {needed} of "
        f"{args.seeds} seeds (the effective action always estimated): "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
