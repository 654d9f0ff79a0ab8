"""A synthetic but realistic SaaS account book, with a known causal churn story.

The demo and the tests need data that teaches something: churn that is *caused* by things a CSM
can see coming (usage sliding for weeks, escalations piling up, the champion leaving, invoices
going unpaid, a renewal approaching), diluted by noise and by churn nobody could have predicted.
A good model should land around 0.80-0.90 ROC AUC on it, not near 1.0.

How the book evolves, one week at a time (vectorised over accounts, looping over weeks only):

* every account has fixed traits (segment, plan, seats, ARR, its "natural" seat utilisation,
  a hidden frailty) and latent states that drift: usage that falls for weeks during a decline
  episode (users leaving, and the remaining users doing less) and partly recovers after it, a
  support-friction episode that breeds escalations, payment trouble that makes invoices
  overdue, the champion leaving;
* the observable columns of config/schema.yaml are noisy measurements of those states;
* the weekly churn hazard is a segment base rate times ``exp(sum of driver contributions)``,
  strongly timed by the renewal date, plus an unexplained component; churned accounts leave
  and are replaced by new ones (tenure 0), so the book stays the same size;
* for every churned account, ``truth`` records the drivers that contributed most to its
  hazard at churn time, so explanations can later be checked against what really happened;
* optionally (:class:`ActionEffect`, off by default), CSMs act: each week a script sees the
  book as a CSM would be shown it and says which actions were done on which accounts; the
  right action done on an account whose risk that cause really drives saves it with a known
  probability (no churn for a while), so its churn hazard drops by that share on average;
  any other action does nothing. That planted effect is
  the known answer the save-rate benchmark (bench/save_rate.py) must find.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

CAUSES: tuple[str, ...] = (
    "usage_decline",
    "escalations",
    "champion_left",
    "low_seat_utilisation",
    "overdue_invoices",
    "renewal",
    "poor_nps",
    "csm_neglect",
    "unexplained",
)
DRIVERS: tuple[str, ...] = CAUSES[:-1]  # the causes that have a hazard contribution

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_MIX = (0.55, 0.30, 0.15)
PLANS = ("starter", "growth", "business", "enterprise")
# Plan probabilities per segment: small customers buy the small plans.
PLAN_MIX = ((0.6, 0.4, 0.0, 0.0), (0.0, 0.5, 0.5, 0.0), (0.0, 0.0, 0.3, 0.7))
PRICE_PER_SEAT = (300.0, 500.0, 800.0, 1200.0)  # USD per seat per year, by plan
SEATS_MEDIAN = (12.0, 60.0, 400.0)
TENURE_MEAN_DAYS = (700.0, 1000.0, 1500.0)
INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "media",
    "logistics",
    "professional_services",
    "nonprofit",
)
INDUSTRY_MISSING_SHARE = 0.08
CSMS = (
    "maria.lopez",
    "james.chen",
    "aisha.khan",
    "tom.becker",
    "sofia.rossi",
    "daniel.kim",
    "emma.wilson",
    "lucas.martin",
    "priya.nair",
    "noah.schmidt",
    "chloe.dubois",
    "omar.haddad",
)
CSM_DOMAIN = "example.com"
# Which CSMs cover which segment (first index, how many): a pooled team for smb, a few named
# CSMs for enterprise.
CSM_POOLS = ((7, 5), (3, 4), (0, 3))

NAME_WORDS = (
    "Blue", "Bright", "North", "Silver", "Red", "Green", "Quantum", "Nova", "Apex", "Cedar",
    "Summit", "Harbor", "Iron", "Maple", "Pioneer", "Atlas", "Vertex", "Lumen", "Orbit",
    "Granite", "Crescent", "Evergreen", "Falcon", "Golden", "Horizon", "Juniper", "Keystone",
    "Liberty", "Meridian", "Northwind", "Oak", "Pacific", "Polar", "Prairie", "Redwood", "River",
    "Sage", "Sierra", "Solar", "Spruce", "Stone", "Sterling", "Tidal", "Union", "Valley",
    "Willow", "Zenith", "Alpine", "Beacon", "Cobalt", "Coral", "Delta", "Ember", "Frontier",
    "Glacier", "Hudson", "Indigo", "Lakeside", "Mosaic", "Onyx",
)  # fmt: skip
NAME_NOUNS = (
    "Analytics", "Systems", "Logistics", "Health", "Foods", "Robotics", "Software", "Energy",
    "Media", "Capital", "Works", "Dynamics", "Networks", "Studios", "Bio", "Data", "Freight",
    "Learning", "Retail", "Security", "Cloud", "Foundry", "Motors", "Pharma", "Textiles",
    "Supply", "Finance", "Insights", "Payments", "Devices", "Metrics", "Ventures", "Hospitality",
    "Design", "Mobility", "Agritech", "Marine", "Aero", "Legal", "Realty", "Telecom", "Gaming",
    "Fitness", "Travel", "Outdoor", "Brewing", "Apparel", "Pet Care", "Home", "Clinics",
)  # fmt: skip
NAME_SUFFIXES = (
    "Inc", "Labs", "GmbH", "Ltd", "LLC", "Group", "Co", "AG", "SAS", "BV", "Partners",
    "Holdings", "Technologies", "Corp",
)  # fmt: skip

BURN_IN_WEEKS = 26  # weeks simulated before the first snapshot, so latent states settle
HISTORY_WEEKS = 8  # weekly activity kept to compute "last 30 days" and "30 days before"
MAX_ESCALATIONS = 5
WINDOW_90D_WEEKS = 13

# The difficulty knobs, tuned so a good linear model scores ~0.85 ROC AUC on the later period.
# A decline episode starts with a weekly probability (raised by a champion leaving, support
# friction or a detractor NPS), loses DECLINE_RATE of (log) usage a week, split between users
# leaving (breadth) and the remaining users doing less (depth), and ends with a weekly
# probability: long, steady declines are what a good model can see coming.
DECLINE_START = (0.005, 0.004, 0.0025)  # by segment: small customers are more volatile
DECLINE_END = 0.02
DECLINE_RATE = (0.03, 0.08)
RECOVERY_RATE = 0.12  # share of the lost usage regained each week once a decline ends
USAGE_WEIGHT = 3.0  # log-hazard per unit of lost (log) usage
MAX_USAGE_LOSS = 1.5  # beyond this the account is as good as gone; the hazard stops growing
SHELFWARE_SHARE = 0.08  # accounts that bought far more seats than they use (~0.4 vs ~0.75)
# Churn is decided at renewal: the hazard multiplier in the weeks before it (days, factor);
# a few customers give notice and leave early, most leave on the renewal date.
RENEWAL_FACTORS = ((7, 15.0), (28, 3.0))
RENEWAL_OFF_FACTOR = 0.1
# Weekly churn hazard = base[segment] * exp(frailty + sum of contributions) + unexplained.
BASE_HAZARD = (0.0011, 0.0005, 0.00022)
UNEXPLAINED_HAZARD = (0.00045, 0.00022, 0.00009)
FRAILTY_SD = 0.3
CAUSE_THRESHOLD = 0.5  # a driver counts as a cause when it multiplies the hazard by >= e^0.5
MAX_CAUSES = 3


@dataclass(frozen=True)
class WeekView:
    """What the CSM script of an :class:`ActionEffect` sees in one emitted week.

    ``hazard`` is the true weekly churn hazard (an oracle's risk score) and ``top_cause`` the
    driver that contributes most to it, or "unexplained" when none reaches
    ``CAUSE_THRESHOLD`` (what a perfect explanation would show as the top reason).
    """

    day: datetime.date
    account_id: np.ndarray  # "ACC-000123", as in the accounts frame
    segment: np.ndarray  # segment names
    hazard: np.ndarray
    top_cause: np.ndarray


@dataclass(frozen=True)
class ActionEffect:
    """A planted effect of one playbook action, and the script of what CSMs did.

    ``done(view)`` returns the actions done that week (account id -> action name). Doing
    ``action`` on an account whose ``cause`` contribution is at least ``CAUSE_THRESHOLD`` that
    week saves it with probability ``share``: a saved account does not churn for ``weeks``
    weeks (counted from that week; doing it again draws again). Averaged over the accounts
    acted on, the churn hazard of those weeks drops by ``share``, and so does the chance to
    churn within them whatever the hazard's shape (renewal spikes included): exactly the
    quantity a save rate estimates. Other actions, or the right action for another cause,
    change nothing. The draws come from their own generator (seeded from ``seed``), so the
    book's own random stream is the one the sample data uses.
    """

    action: str
    cause: str
    share: float
    done: Callable[[WeekView], Mapping[str, str]]
    weeks: int = 13

    def __post_init__(self) -> None:
        if self.cause not in DRIVERS:
            raise ValueError(f"ActionEffect cause must be one of {DRIVERS}, got {self.cause!r}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"ActionEffect share must be within 0 and 1, got {self.share}")
        if self.weeks < 1:
            raise ValueError(f"ActionEffect weeks must be at least 1, got {self.weeks}")


@dataclass(frozen=True)
class SampleData:
    """The generated book: ``accounts`` follows config/schema.yaml, ``truth`` says why each
    churned account churned (one row per churned account that appears in ``accounts``)."""

    accounts: pd.DataFrame
    truth: pd.DataFrame


@dataclass
class _Traits:
    """Fixed per-account traits, indexed by account number (grows as accounts join)."""

    segment: np.ndarray
    plan: np.ndarray
    industry: np.ndarray  # -1 = unknown
    csm: np.ndarray
    seats: np.ndarray
    arr: np.ndarray
    natural_util: np.ndarray  # share of seats the account uses when healthy
    logins_per_user: np.ndarray
    feature_adoption: np.ndarray
    frailty: np.ndarray  # hidden, never observed: the "noise" in who churns
    survey_phase: np.ndarray
    tracks_contacts: np.ndarray


@dataclass
class _Book:
    """Latent and observed state of the accounts currently in the book (one row each)."""

    account: np.ndarray
    start_day: np.ndarray
    renewal_day: np.ndarray
    weeks_in_book: np.ndarray
    breadth: np.ndarray  # log share of the usual users still active (0 = normal)
    depth: np.ndarray  # log of how deeply those users use the product (0 = normal)
    declining: np.ndarray
    breadth_rate: np.ndarray  # weekly loss during the current decline episode
    depth_rate: np.ndarray
    friction: np.ndarray
    escalation_age: np.ndarray  # (n, MAX_ESCALATIONS) days, -1 = empty slot
    slow_payer: np.ndarray
    days_overdue: np.ndarray  # 0 = nothing overdue
    champion_weeks: np.ndarray  # weeks since the champion left
    contacts_lost: np.ndarray  # (n, 13) contacts lost per week
    nps: np.ndarray  # NaN = never surveyed
    touch_days: np.ndarray
    active_users: np.ndarray  # (n, HISTORY_WEEKS) weekly history, newest last
    logins: np.ndarray  # (n, HISTORY_WEEKS)
    feature_events: np.ndarray  # (n, HISTORY_WEEKS)
    tickets: np.ndarray  # (n, 4)
    seats_active: np.ndarray

    def keep(self, mask: np.ndarray) -> _Book:
        return _Book(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def extend(self, other: _Book) -> _Book:
        return _Book(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


def generate_accounts(
    n_accounts: int,
    n_weeks: int,
    *,
    seed: int,
    end: datetime.date,
    progress: Callable[[int, int], None] | None = None,
    action_effect: ActionEffect | None = None,
) -> SampleData:
    """Simulate ``n_accounts`` accounts for ``n_weeks`` weekly snapshots ending on ``end``.

    The same arguments always give identical frames. Churned accounts are replaced by new ones
    (tenure 0), so every snapshot holds ``n_accounts`` accounts. Without ``action_effect``
    nothing acts on the book (the sample data); with it, its script runs every emitted week.
    """
    if n_accounts < 1:
        raise ValueError(f"n_accounts must be at least 1, got {n_accounts}")
    if n_weeks < 1:
        raise ValueError(f"n_weeks must be at least 1, got {n_weeks}")
    rng = np.random.default_rng(seed)
    total_weeks = BURN_IN_WEEKS + n_weeks
    end_day = np.datetime64(end, "D").astype(np.int64)
    first_day = end_day - 7 * (total_weeks - 1)
    csm_attention = rng.uniform(0.5, 1.3, len(CSMS))
    name_key = _name_key(rng)

    traits = _new_traits(rng, n_accounts)
    book = _new_book(rng, traits, np.arange(n_accounts), first_day, joining=False)
    churn_day = np.full(n_accounts, -1, dtype=np.int64)
    relief_until = np.full(n_accounts, -1, dtype=np.int64)  # day a save ends
    saves = np.random.default_rng([seed, 1])
    snapshots: list[dict[str, np.ndarray]] = []
    truth_rows: list[tuple[int, int, str, str]] = []

    for week in range(total_weeks):
        today = first_day + 7 * week
        book = _advance(rng, book, traits, csm_attention, today, week)
        emitting = week >= BURN_IN_WEEKS
        if emitting:
            snapshots.append(_observe(rng, book, traits, today))
        # No churn after the last snapshot: its date would lie in the future of the data.
        if action_effect is not None and emitting:
            _act(action_effect, saves, book, traits, today, relief_until)
        if week < total_weeks - 1:
            relief = None
            if action_effect is not None:
                relief = np.where(relief_until[book.account] > today, 0.0, 1.0)
            book, accounts, days, truth = _churn(rng, book, traits, today, relief)
            churn_day[accounts] = days
            if emitting:
                truth_rows.extend(truth)
            n_new = len(accounts)
            first_new = len(traits.segment)
            traits = _concat_traits(traits, _new_traits(rng, n_new))
            churn_day = np.concatenate([churn_day, np.full(n_new, -1, dtype=np.int64)])
            relief_until = np.concatenate([relief_until, np.full(n_new, -1, dtype=np.int64)])
            new_ids = np.arange(first_new, first_new + n_new)
            book = book.extend(_new_book(rng, traits, new_ids, today + 7, joining=True))
        if emitting and progress:
            progress(week - BURN_IN_WEEKS + 1, n_weeks)

    accounts_frame = _to_frame(snapshots, traits, churn_day, name_key)
    return SampleData(accounts=accounts_frame, truth=_truth_frame(truth_rows))


# --- accounts joining ---------------------------------------------------------------------


def _new_traits(rng: np.random.Generator, n: int) -> _Traits:
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_MIX)
    plan_cdf = np.cumsum(np.asarray(PLAN_MIX)[segment], axis=1)
    plan = (rng.random(n)[:, None] > plan_cdf).sum(axis=1)
    seats = np.maximum(1, np.round(np.asarray(SEATS_MEDIAN)[segment] * rng.lognormal(0, 0.6, n)))
    price = np.asarray(PRICE_PER_SEAT)[plan] * rng.lognormal(0, 0.15, n)
    industry = rng.integers(0, len(INDUSTRIES), n)
    industry[rng.random(n) < INDUSTRY_MISSING_SHARE] = -1
    pool_first, pool_size = np.asarray(CSM_POOLS).T
    csm = pool_first[segment] + (rng.random(n) * pool_size[segment]).astype(np.int64)
    return _Traits(
        segment=segment,
        plan=plan,
        industry=industry,
        csm=csm,
        seats=seats.astype(np.int64),
        arr=np.round(seats * price, 2),
        natural_util=np.where(
            rng.random(n) < SHELFWARE_SHARE, rng.beta(3.0, 5.0, n), rng.beta(14.0, 4.5, n)
        ),
        logins_per_user=rng.gamma(4.0, 1.0, n),
        feature_adoption=rng.beta(2.0, 3.0, n),
        frailty=rng.normal(0.0, FRAILTY_SD, n),
        survey_phase=rng.integers(0, WINDOW_90D_WEEKS, n),
        tracks_contacts=rng.random(n) > 0.12,
    )


def _concat_traits(a: _Traits, b: _Traits) -> _Traits:
    return _Traits(
        **{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(a)}
    )


def _new_book(
    rng: np.random.Generator,
    traits: _Traits,
    accounts: np.ndarray,
    today: np.int64,
    *,
    joining: bool,
) -> _Book:
    """Fresh state for ``accounts``: new customers (``joining``) or the book at the start."""
    n = len(accounts)
    segment = traits.segment[accounts]
    if joining:
        tenure_days = rng.integers(0, 7, n)
        weeks_in_book = np.zeros(n, dtype=np.int64)
    else:
        tenure_days = rng.exponential(np.asarray(TENURE_MEAN_DAYS)[segment]).astype(np.int64)
        weeks_in_book = np.full(n, 52, dtype=np.int64)
    start_day = today - tenure_days
    renewal_day = start_day + 365 * (tenure_days // 365 + 1)
    declining = np.zeros(n, dtype=bool) if joining else rng.random(n) < 0.05
    rates = _decline_rates(rng, n)
    champion_weeks = np.full(n, 10_000, dtype=np.int64)
    if not joining:
        recent = rng.random(n) < 0.05
        champion_weeks[recent] = rng.integers(0, WINDOW_90D_WEEKS, int(recent.sum()))
    nps = np.full(n, np.nan)
    if not joining:
        surveyed = rng.random(n) < 0.55
        nps[surveyed] = np.clip(np.round(rng.normal(8.0, 1.8, int(surveyed.sum()))), 0, 10)
    # History before the first week: nothing for a new customer, steady use for the rest.
    seats = traits.seats[accounts]
    util = np.zeros(n) if joining else traits.natural_util[accounts]
    weekly_active = np.round(0.9 * seats * util)[:, None] * np.ones(HISTORY_WEEKS)
    return _Book(
        account=accounts.astype(np.int64),
        start_day=start_day.astype(np.int64),
        renewal_day=renewal_day.astype(np.int64),
        weeks_in_book=weeks_in_book,
        breadth=np.zeros(n) if joining else -np.abs(rng.normal(0, 0.1, n)),
        depth=np.zeros(n) if joining else -np.abs(rng.normal(0, 0.1, n)),
        declining=declining,
        breadth_rate=rates[0],
        depth_rate=rates[1],
        friction=np.zeros(n, dtype=bool) if joining else rng.random(n) < 0.06,
        escalation_age=np.full((n, MAX_ESCALATIONS), -1, dtype=np.int64),
        slow_payer=rng.random(n) < 0.6,
        days_overdue=np.zeros(n, dtype=np.int64),
        champion_weeks=champion_weeks,
        contacts_lost=np.zeros((n, WINDOW_90D_WEEKS), dtype=np.int64),
        nps=nps,
        touch_days=rng.integers(0, 7, n) if joining else rng.integers(0, 90, n),
        active_users=weekly_active,
        logins=weekly_active * traits.logins_per_user[accounts][:, None],
        feature_events=weekly_active * traits.feature_adoption[accounts][:, None] * 3.0,
        tickets=np.zeros((n, 4)),
        seats_active=np.round(seats * util).astype(np.int64),
    )


# --- one week of latent dynamics ----------------------------------------------------------


def _advance(
    rng: np.random.Generator,
    book: _Book,
    traits: _Traits,
    csm_attention: np.ndarray,
    today: np.int64,
    week: int,
) -> _Book:
    """Move every latent state forward one week, then record this week's activity."""
    n = len(book.account)
    seg = traits.segment[book.account]
    seats = traits.seats[book.account].astype(float)
    book.weeks_in_book += 1
    book.renewal_day = np.where(book.renewal_day <= today, book.renewal_day + 365, book.renewal_day)

    # The champion leaves (~19%/year); they take a contact with them.
    left = rng.random(n) < 0.004
    book.champion_weeks = np.where(left, 0, book.champion_weeks + 1)
    book.contacts_lost = np.roll(book.contacts_lost, -1, axis=1)
    book.contacts_lost[:, -1] = rng.poisson(0.01 * np.log1p(seats), n) + left

    # Support friction episodes breed escalations, which age until resolved.
    book.friction = np.where(book.friction, rng.random(n) > 0.10, rng.random(n) < 0.010)
    open_slots = book.escalation_age >= 0
    resolve_p = np.where(book.friction, 0.15, 0.30)[:, None]
    resolved = open_slots & (rng.random(open_slots.shape) < resolve_p)
    ages = np.where(open_slots & ~resolved, book.escalation_age + 7, -1)
    arrivals = rng.poisson(0.004 + 0.003 * np.log1p(seats) + 0.30 * book.friction)
    book.escalation_age = _add_escalations(rng, ages, arrivals)
    n_open = (book.escalation_age >= 0).sum(axis=1)

    # Payment trouble: most lateness is a slow payer who pays soon; some of it lasts.
    enter = rng.random(n) < np.asarray((0.006, 0.004, 0.003))[seg]
    leave = rng.random(n) < np.where(book.slow_payer, 0.45, 0.06)
    overdue = book.days_overdue > 0
    book.days_overdue = np.where(
        overdue,
        np.where(leave, 0, book.days_overdue + 7),
        np.where(enter, rng.integers(1, 15, n), 0),
    )

    # A decline episode: engagement falls week after week until (if) the account recovers.
    champion_recent = book.champion_weeks < WINDOW_90D_WEEKS
    detractor = np.nan_to_num(book.nps, nan=8.0) <= 5
    start_p = np.asarray(DECLINE_START)[seg] * (
        1 + 3.0 * champion_recent + 1.5 * book.friction + 1.0 * detractor
    )
    starting = ~book.declining & (rng.random(n) < start_p)
    book.declining = np.where(book.declining, rng.random(n) > DECLINE_END, starting)
    breadth_rate, depth_rate = _decline_rates(rng, n)
    book.breadth_rate = np.where(starting, breadth_rate, book.breadth_rate)
    book.depth_rate = np.where(starting, depth_rate, book.depth_rate)
    book.breadth = _drift(rng, book.breadth, book.declining, book.breadth_rate)
    book.depth = _drift(rng, book.depth, book.declining, book.depth_rate)

    # The CSM touches the account now and then, more often when escalations are open.
    touch_p = csm_attention[traits.csm[book.account]] * np.asarray((0.10, 0.20, 0.40))[seg]
    touched = rng.random(n) < np.clip(touch_p * (1 + 1.5 * (n_open > 0)), 0, 1)
    book.touch_days = np.where(touched, rng.integers(0, 7, n), book.touch_days + 7)

    # Quarterly NPS survey; about four in ten answer.
    surveyed = (week % WINDOW_90D_WEEKS == traits.survey_phase[book.account]) & (
        rng.random(n) < 0.4
    )
    mood = (
        8.3
        + 2.5 * (book.breadth + book.depth)
        - 0.6 * np.minimum(n_open, 3)
        - 1.0 * champion_recent
        - 0.8 * book.friction
        + rng.normal(0, 1.8, n)
    )
    book.nps = np.where(surveyed, np.clip(np.round(mood), 0, 10), book.nps)

    _record_activity(rng, book, traits, seats)
    return book


def _decline_rates(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Weekly losses of a new decline episode: some lose users (breadth), some stop using the
    key features (depth), most a mix, so each usage column tells part of the story."""
    total = rng.uniform(*DECLINE_RATE, n)
    share = rng.beta(0.8, 0.8, n)
    return total * share, total * (1 - share)


def _drift(
    rng: np.random.Generator, level: np.ndarray, declining: np.ndarray, rate: np.ndarray
) -> np.ndarray:
    """Fall by ``rate`` while declining, otherwise win back a share of what was lost."""
    step = np.where(declining, -rate, -RECOVERY_RATE * level)
    return np.clip(level + step + rng.normal(0, 0.03, len(level)), -1.5, 0.2)


def _add_escalations(
    rng: np.random.Generator, ages: np.ndarray, arrivals: np.ndarray
) -> np.ndarray:
    """Put each account's new escalations into its free slots (extra ones are dropped)."""
    free_rank = np.cumsum(ages < 0, axis=1)
    new = (ages < 0) & (free_rank <= arrivals[:, None])
    return np.where(new, rng.integers(0, 7, ages.shape), ages)


def _record_activity(
    rng: np.random.Generator, book: _Book, traits: _Traits, seats: np.ndarray
) -> None:
    """This week's usage, measured with the noise real product analytics have."""
    ramp = np.minimum(1.0, 0.3 + 0.12 * book.weeks_in_book)  # new customers onboard gradually
    util = np.clip(traits.natural_util[book.account] * np.exp(book.breadth) * ramp, 0, 1)
    seats_int = seats.astype(np.int64)
    book.seats_active = np.clip(
        np.round(seats * util + rng.normal(0, 0.6, len(util))), 0, seats_int
    ).astype(np.int64)
    weekly_active = np.clip(
        np.round(0.9 * book.seats_active + rng.normal(0, 0.5, len(util))), 0, book.seats_active
    )
    per_user = traits.logins_per_user[book.account] * np.exp(0.7 * book.depth)
    key_rate = 3.0 * traits.feature_adoption[book.account] * np.exp(1.5 * book.depth)
    tickets = rng.poisson(0.04 * np.sqrt(seats) * (1 + 2.5 * book.friction))
    for history, value in (
        (book.active_users, weekly_active),
        (book.logins, rng.poisson(weekly_active * per_user)),
        (book.feature_events, rng.poisson(weekly_active * key_rate)),
        (book.tickets, tickets),
    ):
        history[:, :-1] = history[:, 1:]
        history[:, -1] = value


# --- churn --------------------------------------------------------------------------------


def _contributions(book: _Book, traits: _Traits, today: np.int64) -> np.ndarray:
    """Each driver's contribution to the log of the weekly churn hazard, shape (n, DRIVERS).

    These use the *true* latent states; the observable columns only measure them with noise,
    which is part of why no model can be perfect.
    """
    n_open = (book.escalation_age >= 0).sum(axis=1)
    oldest = book.escalation_age.max(axis=1).clip(0, 90)
    days_to_renewal = book.renewal_day - today
    renewal_factor = np.select(
        [days_to_renewal <= days for days, _ in RENEWAL_FACTORS],
        [factor for _, factor in RENEWAL_FACTORS],
        RENEWAL_OFF_FACTOR,
    )
    nps = book.nps
    overdue = book.days_overdue > 0
    columns = {
        "usage_decline": USAGE_WEIGHT * np.clip(-(book.breadth + book.depth), 0, MAX_USAGE_LOSS),
        "escalations": 0.6 * np.minimum(n_open, 4) + 0.015 * oldest,
        "champion_left": 1.5 * (book.champion_weeks < WINDOW_90D_WEEKS),
        "low_seat_utilisation": 4.0 * np.clip(0.45 - traits.natural_util[book.account], 0, None),
        "overdue_invoices": overdue * (0.8 + 0.015 * np.minimum(book.days_overdue, 90)),
        "renewal": np.log(renewal_factor),
        "poor_nps": 0.22 * np.clip(7 - np.nan_to_num(nps, nan=7.0), 0, None),
        "csm_neglect": 0.005 * np.clip(book.touch_days - 45, 0, 120),
    }
    return np.column_stack([columns[name] for name in DRIVERS])


def _hazards(
    book: _Book, traits: _Traits, today: np.int64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(driver contributions, explained hazard, unexplained hazard) of this week."""
    contributions = _contributions(book, traits, today)
    seg = traits.segment[book.account]
    log_risk = traits.frailty[book.account] + contributions.sum(axis=1)
    explained = np.asarray(BASE_HAZARD)[seg] * np.exp(log_risk)
    return contributions, explained, np.asarray(UNEXPLAINED_HAZARD)[seg]


def _top_causes(contributions: np.ndarray) -> np.ndarray:
    """Per account, the driver contributing most if it reaches the threshold, else
    "unexplained" (the same rule as the truth table's primary cause)."""
    top = contributions.argmax(axis=1)
    strong = contributions[np.arange(len(top)), top] >= CAUSE_THRESHOLD
    return np.where(strong, np.asarray(DRIVERS, dtype=object)[top], "unexplained")


def _act(
    effect: ActionEffect,
    saves: np.random.Generator,
    book: _Book,
    traits: _Traits,
    today: np.int64,
    relief_until: np.ndarray,
) -> None:
    """Run the CSM script for this week and draw the saves where the right action met
    the right cause (``relief_until`` is updated in place, by account number)."""
    contributions, explained, unexplained = _hazards(book, traits, today)
    ids = np.asarray([_account_id(a) for a in book.account], dtype=object)
    view = WeekView(
        day=np.datetime64(int(today), "D").astype(datetime.date),
        account_id=ids,
        segment=np.asarray(SEGMENTS, dtype=object)[traits.segment[book.account]],
        hazard=explained + unexplained,
        top_cause=_top_causes(contributions),
    )
    done = effect.done(view)
    row_of = {account_id: row for row, account_id in enumerate(ids)}
    cause = contributions[:, DRIVERS.index(effect.cause)]
    for account_id, action in done.items():
        row = row_of.get(account_id)
        if row is None or action != effect.action or cause[row] < CAUSE_THRESHOLD:
            continue
        if saves.random() < effect.share:
            relief_until[book.account[row]] = today + 7 * effect.weeks


def _churn(
    rng: np.random.Generator,
    book: _Book,
    traits: _Traits,
    today: np.int64,
    relief: np.ndarray | None = None,
) -> tuple[_Book, np.ndarray, np.ndarray, list[tuple[int, int, str, str]]]:
    """Draw this week's churn: the book without the churned accounts, who left, when, and why.

    Each churn is attributed to the explained or the unexplained part of the hazard in
    proportion to their sizes (competing risks). A customer whose renewal falls within the
    week leaves on the renewal date. ``relief`` (per account, default none) multiplies both
    parts of the hazard: 0 for an account an action saved.
    """
    contributions, explained, unexplained = _hazards(book, traits, today)
    seg = traits.segment[book.account]
    blind_share = unexplained / (explained + unexplained)  # the same with relief or not
    if relief is not None:
        explained, unexplained = explained * relief, unexplained * relief
    churned = rng.random(len(seg)) < -np.expm1(-(explained + unexplained))
    blind = rng.random(len(seg)) < blind_share
    renews = book.renewal_day - today <= 7
    days = np.where(renews, book.renewal_day, today + rng.integers(1, 8, len(seg)))[churned]
    accounts = book.account[churned]
    truth = _causes(accounts, days, contributions[churned], blind[churned])
    return book.keep(~churned), accounts, days, truth


def _causes(
    accounts: np.ndarray,
    days: np.ndarray,
    contributions: np.ndarray,
    unexplained: np.ndarray,
) -> list[tuple[int, int, str, str]]:
    """Truth rows: the drivers that multiplied the hazard most, largest first."""
    rows = []
    for account, day, contrib, blind in zip(
        accounts, days, contributions, unexplained, strict=True
    ):
        order = np.argsort(-contrib, kind="stable")
        causes = [DRIVERS[i] for i in order[:MAX_CAUSES] if contrib[i] >= CAUSE_THRESHOLD]
        if blind or not causes:
            causes = ["unexplained"]
        rows.append((int(account), int(day), ";".join(causes), causes[0]))
    return rows


# --- output -------------------------------------------------------------------------------


def _observe(
    rng: np.random.Generator, book: _Book, traits: _Traits, today: np.int64
) -> dict[str, np.ndarray]:
    """One weekly snapshot of the observable columns, as a CRM export would show them."""
    n = len(book.account)
    n_open = (book.escalation_age >= 0).sum(axis=1)
    oldest = book.escalation_age.max(axis=1)
    tickets = book.tickets.sum(axis=1).astype(np.int64)
    friction = book.friction.astype(float)
    csat = np.round(
        np.clip(4.2 - 0.6 * friction - 0.15 * np.minimum(n_open, 3) + rng.normal(0, 0.35, n), 1, 5),
        1,
    )
    csat[(tickets == 0) | (rng.random(n) < 0.25)] = np.nan
    overdue = book.days_overdue > 0
    return {
        "account": book.account.copy(),
        "as_of": np.full(n, today, dtype=np.int64),
        "tenure_months": ((today - book.start_day) / 30.44).astype(np.int64),
        "renewal_date": book.renewal_day.copy(),
        "seats_active": book.seats_active.copy(),
        "logins_30d": book.logins[:, -4:].sum(axis=1).astype(np.int64),
        "logins_prev_30d": book.logins[:, :4].sum(axis=1).astype(np.int64),
        "active_users": book.active_users[:, -1].astype(np.int64),
        "active_users_4w_ago": book.active_users[:, -5].astype(np.int64),
        "key_feature_events_30d": book.feature_events[:, -4:].sum(axis=1).astype(np.int64),
        "key_feature_events_prev_30d": book.feature_events[:, :4].sum(axis=1).astype(np.int64),
        "support_tickets_30d": tickets,
        "open_escalations": n_open.astype(np.int64),
        "oldest_escalation_days": oldest,
        "nps": book.nps.copy(),
        "csat": csat,
        "days_since_csm_touch": book.touch_days.astype(np.int64),
        "overdue_invoices": np.where(overdue, 1 + book.days_overdue // 30, 0).astype(np.int64),
        "days_overdue": np.where(overdue, book.days_overdue, -1),
        "champion_left_90d": book.champion_weeks < WINDOW_90D_WEEKS,
        "contacts_lost_90d": book.contacts_lost.sum(axis=1).astype(np.int64),
    }


def _name_key(rng: np.random.Generator) -> tuple[int, int]:
    """A seeded bijection of the name space, so names look random yet never repeat."""
    space = len(NAME_WORDS) * len(NAME_NOUNS) * len(NAME_SUFFIXES)
    while True:
        step = int(rng.integers(1, space))
        if math.gcd(step, space) == 1:
            return step, int(rng.integers(0, space))


def _company_names(n: int, key: tuple[int, int]) -> np.ndarray:
    space = len(NAME_WORDS) * len(NAME_NOUNS) * len(NAME_SUFFIXES)
    ids = np.arange(n)
    code = (ids * key[0] + key[1]) % space
    word, rest = divmod(code, len(NAME_NOUNS) * len(NAME_SUFFIXES))
    noun, suffix = divmod(rest, len(NAME_SUFFIXES))
    names = [
        f"{NAME_WORDS[w]} {NAME_NOUNS[o]}{'' if r == 0 else f' {r + 1}'} {NAME_SUFFIXES[s]}"
        for w, o, s, r in zip(word, noun, suffix, ids // space, strict=True)
    ]
    return np.asarray(names, dtype=object)


def _nullable_int(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _dates(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _to_frame(
    snapshots: list[dict[str, np.ndarray]],
    traits: _Traits,
    churn_day: np.ndarray,
    name_key: tuple[int, int],
) -> pd.DataFrame:
    """Stack the weekly snapshots into the schema's columns, order and dtypes."""
    cols = {key: np.concatenate([snap[key] for snap in snapshots]) for key in snapshots[0]}
    account = cols["account"]
    n_ids = len(traits.segment)

    def text(
        values: Sequence[str] | np.ndarray, codes: np.ndarray
    ) -> pd.api.extensions.ExtensionArray:
        return pd.array(np.asarray(values, dtype=object), dtype="str").take(codes, allow_fill=True)

    churn = churn_day[account]
    churn_dates = _dates(churn)
    churn_dates[churn < 0] = np.datetime64("NaT")
    emails = [f"{name}@{CSM_DOMAIN}" for name in CSMS]
    return pd.DataFrame(
        {
            "account_id": text([_account_id(i) for i in range(n_ids)], account),
            "account_name": text(_company_names(n_ids, name_key), account),
            "as_of": _dates(cols["as_of"]),
            "owner_csm": text(emails, traits.csm[account]),
            "segment": text(SEGMENTS, traits.segment[account]),
            "plan": text(PLANS, traits.plan[account]),
            "industry": text(INDUSTRIES, traits.industry[account]),
            "arr": traits.arr[account].astype(np.float64),
            "tenure_months": cols["tenure_months"],
            "renewal_date": _dates(cols["renewal_date"]),
            "seats_purchased": traits.seats[account],
            "seats_active": cols["seats_active"].astype(np.int64),
            "logins_30d": cols["logins_30d"],
            "logins_prev_30d": cols["logins_prev_30d"],
            "active_users": cols["active_users"],
            "active_users_4w_ago": cols["active_users_4w_ago"],
            "key_feature_events_30d": cols["key_feature_events_30d"],
            "key_feature_events_prev_30d": cols["key_feature_events_prev_30d"],
            "support_tickets_30d": cols["support_tickets_30d"],
            "open_escalations": cols["open_escalations"],
            "oldest_escalation_days": _nullable_int(
                cols["oldest_escalation_days"], cols["oldest_escalation_days"] < 0
            ),
            "nps": _nullable_int(np.nan_to_num(cols["nps"]), np.isnan(cols["nps"])),
            "csat": cols["csat"].astype(np.float64),
            "days_since_csm_touch": cols["days_since_csm_touch"],
            "overdue_invoices": cols["overdue_invoices"],
            "days_overdue": _nullable_int(cols["days_overdue"], cols["days_overdue"] < 0),
            "champion_left_90d": cols["champion_left_90d"].astype(bool),
            "contacts_lost_90d": _nullable_int(
                cols["contacts_lost_90d"], ~traits.tracks_contacts[account]
            ),
            "churn_date": churn_dates,
        }
    )


def _account_id(number: int) -> str:
    """The id of account ``number`` ("ACC-000123"): one spelling for the accounts frame, the
    truth table and what an :class:`ActionEffect` script sees, so their ids match."""
    return f"ACC-{number:06d}"


def _truth_frame(rows: list[tuple[int, int, str, str]]) -> pd.DataFrame:
    accounts = np.asarray([r[0] for r in rows], dtype=np.int64)
    days = np.asarray([r[1] for r in rows], dtype=np.int64)
    return pd.DataFrame(
        {
            "account_id": pd.array([_account_id(a) for a in accounts], dtype="str"),
            "churn_date": _dates(days),
            "causes": pd.array([r[2] for r in rows], dtype="str"),
            "primary_cause": pd.array([r[3] for r in rows], dtype="str"),
        }
    )
