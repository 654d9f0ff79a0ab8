"""Exports in other companies' shapes, built here so every data path is tried on tables that
are not churnbot's own: their column names, their label spellings, their history.

* :func:`subscriber_snapshot`: one row per subscriber and no date at all, a ``Yes``/``No``
  churn column, tenure in months, a contract type, monthly charges, a dozen yes/no service
  columns, a payment method, and a few blank numeric cells.
* :func:`usage_observations`: each account observed on its own monthly dates, a
  ``True``/``False`` "churned within a month after this observation" column and event-rate
  metrics (posts per month, replies per message, percentage changes).

Churn follows a plain causal story in each, with noise, so a good model lands where real ones
do (ROC AUC around 0.75-0.85) and the reasons have something true to find.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

SERVICES = (
    "PhoneService",
    "MultipleLines",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "PaperlessBilling",
    "Partner",
    "Dependents",
    "SeniorCitizen",
)
CONTRACTS = ("Month-to-month", "One year", "Two year")
PAYMENTS = ("Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def subscriber_snapshot(n: int = 4000, seed: int = 0, blanks: int = 11) -> pd.DataFrame:
    """A one-snapshot subscriber export (cells as a CSV would hold them)."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(3, n, p=[0.55, 0.21, 0.24])
    tenure = np.where(contract == 0, rng.integers(0, 40, n), rng.integers(6, 73, n))
    fiber = rng.random(n) < 0.44
    services = {name: rng.random(n) < 0.45 for name in SERVICES}
    services["SeniorCitizen"] = rng.random(n) < 0.16
    monthly = np.round(
        20 + 45 * fiber + 8 * sum(services[s] for s in SERVICES[:8]) * 0.6 + rng.normal(0, 6, n), 2
    ).clip(18, 120)
    payment = rng.choice(4, n, p=[0.34, 0.23, 0.22, 0.21])
    logit = (
        -1.2
        + 1.3 * (contract == 0)
        - 1.1 * (contract == 2)
        - 0.045 * tenure
        + 0.8 * fiber
        + 0.012 * (monthly - 65)
        + 0.5 * (payment == 0)
        - 0.45 * services["TechSupport"]
        - 0.35 * services["OnlineSecurity"]
        + 0.3 * services["SeniorCitizen"]
        + rng.normal(0, 0.6, n)
    )
    churn = rng.random(n) < _sigmoid(logit)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.95, 1.05, n), 2)
    frame = pd.DataFrame(
        {
            "customerID": [
                f"{rng.integers(1000, 9999)}-{chr(65 + i % 26)}{i:05d}" for i in range(n)
            ],
            "gender": rng.choice(["Female", "Male"], n),
            **{name: np.where(values, "Yes", "No") for name, values in services.items()},
            "tenure": tenure.astype(str),
            "InternetService": np.where(fiber, "Fiber optic", rng.choice(["DSL", "No"], n)),
            "Contract": np.asarray(CONTRACTS)[contract],
            "PaymentMethod": np.asarray(PAYMENTS)[payment],
            "MonthlyCharges": monthly.astype(str),
            "TotalCharges": total.astype(str),
            "Churn": np.where(churn, "Yes", "No"),
        }
    )
    frame["SeniorCitizen"] = services["SeniorCitizen"].astype(int).astype(str)  # 0/1, as exported
    frame.loc[rng.choice(n, blanks, replace=False), "TotalCharges"] = " "
    return frame


METRICS = (
    "posts_per_month",
    "replies_per_message",
    "likes_per_post",
    "new_friends_per_month",
    "messages_per_month",
    "unfriends_per_month",
    "dislikes_per_post",
    "adview_per_post",
    "posts_change_pct",
    "messages_change_pct",
    "reply_rate_pct",
    "days_active_per_month",
)


def usage_observations(
    accounts: int = 1500, months: int = 18, seed: int = 0, end: dt.date = dt.date(2026, 10, 31)
) -> pd.DataFrame:
    """Per-account monthly observations on each account's own day of the month."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp(end) - pd.DateOffset(months=months)
    for account in range(accounts):
        offset = int(rng.integers(0, 28))
        engaged = rng.normal(0, 1)
        joined = int(rng.integers(0, months - 3))
        first = start + pd.DateOffset(months=joined) + pd.Timedelta(days=offset)
        level = np.exp(2.5 + 0.8 * engaged)
        for month in range(months - joined):
            when = first + pd.DateOffset(months=month)
            if when.date() > end:
                break
            drift = rng.normal(-0.02, 0.25)
            previous = level
            level = max(level * np.exp(drift), 0.2)
            posts = rng.poisson(level)
            messages = rng.poisson(level * 3)
            replies = messages * rng.beta(2 + 2 * (engaged > 0), 4)
            unfriends = rng.poisson(0.3 + 0.8 * (drift < -0.2))
            dislikes = rng.gamma(1.2, 0.05 + 0.1 * (engaged < -0.5))
            logit = (
                -3.0
                - 0.9 * engaged
                - 0.06 * posts
                + 2.2 * max(0.0, -drift)
                + 0.35 * unfriends
                + 2.5 * dislikes
                + rng.normal(0, 0.5)
            )
            churned = rng.random() < _sigmoid(logit)
            rows.append(
                {
                    "acct": f"U{account:06d}",
                    "observation_date": when.date().isoformat(),
                    "posts_per_month": posts,
                    "replies_per_message": round(replies / max(messages, 1), 3),
                    "likes_per_post": round(rng.gamma(2, max(1.5 + engaged, 0.1)), 2),
                    "new_friends_per_month": rng.poisson(max(level / 4, 0.1)),
                    "messages_per_month": messages,
                    "unfriends_per_month": unfriends,
                    "dislikes_per_post": round(dislikes, 3),
                    "adview_per_post": round(rng.gamma(2, 2), 2),
                    "posts_change_pct": round(100 * (level / previous - 1), 1),
                    "messages_change_pct": round(
                        100 * (level / previous - 1) + rng.normal(0, 8), 1
                    ),
                    "reply_rate_pct": round(100 * rng.beta(3, 3), 1),
                    "days_active_per_month": min(30, rng.poisson(4 + level / 2)),
                    "is_churn": "True" if churned else "False",
                }
            )
            if churned:
                break
    return pd.DataFrame(rows).astype(str)


def crm_report(accounts: int = 1200, weeks: int = 52, seed: int = 0) -> pd.DataFrame:
    """A CRM report every other week, as a spreadsheet saves it: US dates (month first), money
    with a dollar sign and thousands separators, seat use with a percent sign, a Y/N "churned
    before the next report" column."""
    rng = np.random.default_rng(seed)
    rows = []
    first = dt.date(2025, 1, 6)
    for account in range(accounts):
        adoption = rng.normal(0, 1)
        mrr = float(np.exp(rng.normal(7.5, 1.0)))
        for week in range(0, weeks, 2):
            day = first + dt.timedelta(weeks=week)
            used = float(np.clip(0.6 + 0.05 * adoption + rng.normal(0, 0.2), 0.02, 1.0))
            idle = int(rng.exponential(4 + 12 * (used < 0.4)))
            tickets = int(rng.poisson(0.5 + 2 * (adoption < -1)))
            logit = -4.2 - 6.0 * (used - 0.6) + 0.08 * idle + 0.5 * tickets + rng.normal(0, 0.3)
            churned = rng.random() < _sigmoid(np.array(logit))
            rows.append(
                {
                    "Account ID": f"0015g{account:05d}",
                    "Account Name": f"Customer {account}, Inc.",
                    "Report Date": f"{day:%m/%d/%Y}",
                    "Account Owner": f"csm{account % 7}@example.com",
                    "MRR": f"${mrr:,.2f}",
                    "Seats Used": f"{used:.0%}",
                    "Last Login": f"{day - dt.timedelta(days=idle):%m/%d/%Y}",
                    "Open Tickets": str(tickets),
                    "Churned?": "Y" if churned else "N",
                }
            )
            if churned:
                break
    return pd.DataFrame(rows)
