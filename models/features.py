"""Model features derived from validated account rows: few, clear, and nothing from the future.

Every feature is something a CSM already reasons about ("active users down 48% in 4 weeks",
"renews in 34 days", "2 escalations open, the oldest 40 days"), because each model reason shown
in Slack is one of these features. Changes are relative and clipped, counts and days are
clipped to a plausible range, and ARR is logged: monotone transforms that let a linear model
fit them without hiding what they mean. The label column (churn_date) is never read here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC_FEATURES: list[str] = [
    "seat_utilisation",
    "active_users_change",
    "logins_change",
    "key_feature_change",
    "days_to_renewal",
    "open_escalations",
    "oldest_escalation_days",
    "support_tickets_30d",
    "nps",
    "nps_missing",
    "days_since_csm_touch",
    "overdue_invoices",
    "days_overdue",
    "champion_left_90d",
    "log_arr",
    "tenure_months",
]
CATEGORICAL_FEATURES: list[str] = ["segment", "plan"]
FEATURES: list[str] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

NEUTRAL_NPS = 7.0  # a "passive": an account never surveyed is neither promoter nor detractor
# Beyond these, more of the same says nothing new to a CSM (or to a linear model).
MAX_DAYS_TO_RENEWAL = 180
MAX_ESCALATIONS = 5
MAX_ESCALATION_DAYS = 90
MAX_TICKETS = 30
MAX_DAYS_SINCE_TOUCH = 180
MAX_OVERDUE_INVOICES = 4
MAX_DAYS_OVERDUE = 120
MAX_TENURE_MONTHS = 120


def relative_change(now: pd.Series, before: pd.Series) -> pd.Series:
    """(now - before) / before, in [-1, 1]: -0.48 reads "down 48%".

    A zero "before" counts as one, so a brand-new account ramping up from nothing reads as a
    rise, not as a division by zero.
    """
    before = before.astype("float64")
    change = (now.astype("float64") - before) / before.clip(lower=1.0)
    return change.clip(-1.0, 1.0)


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns (NUMERIC_FEATURES then CATEGORICAL_FEATURES), same index."""
    seats = frame["seats_purchased"].astype("float64").clip(lower=1.0)
    days_to_renewal = (frame["renewal_date"] - frame["as_of"]).dt.days
    nps = frame["nps"].astype("Float64")
    features = pd.DataFrame(
        {
            "seat_utilisation": (frame["seats_active"] / seats).clip(0.0, 1.5),
            "active_users_change": relative_change(
                frame["active_users"], frame["active_users_4w_ago"]
            ),
            "logins_change": relative_change(frame["logins_30d"], frame["logins_prev_30d"]),
            "key_feature_change": relative_change(
                frame["key_feature_events_30d"], frame["key_feature_events_prev_30d"]
            ),
            "days_to_renewal": days_to_renewal.clip(0, MAX_DAYS_TO_RENEWAL),
            "open_escalations": frame["open_escalations"].clip(0, MAX_ESCALATIONS),
            "oldest_escalation_days": _filled(frame["oldest_escalation_days"], 0.0).clip(
                0, MAX_ESCALATION_DAYS
            ),
            "support_tickets_30d": frame["support_tickets_30d"].clip(0, MAX_TICKETS),
            "nps": _filled(nps, NEUTRAL_NPS),
            "nps_missing": nps.isna().astype("float64"),
            "days_since_csm_touch": frame["days_since_csm_touch"].clip(0, MAX_DAYS_SINCE_TOUCH),
            "overdue_invoices": frame["overdue_invoices"].clip(0, MAX_OVERDUE_INVOICES),
            "days_overdue": _filled(frame["days_overdue"], 0.0).clip(0, MAX_DAYS_OVERDUE),
            "champion_left_90d": frame["champion_left_90d"].astype("float64"),
            "log_arr": np.log1p(frame["arr"].astype("float64").clip(lower=0.0)),
            "tenure_months": frame["tenure_months"].clip(0, MAX_TENURE_MONTHS),
        },
        index=frame.index,
    ).astype("float64")
    for column in CATEGORICAL_FEATURES:
        features[column] = frame[column].astype("str")
    return features


def _filled(column: pd.Series, value: float) -> pd.Series:
    """An optional numeric column as float64, empty cells replaced by ``value``."""
    return column.astype("Float64").fillna(value).astype("float64")


def baseline_score(frame: pd.DataFrame) -> np.ndarray:
    """The rule a CS team uses without a model: the bigger the drop in active users over the
    last 4 weeks, the riskier. Higher = riskier; 0.48 means "down 48%", growth scores below 0.
    """
    change = relative_change(frame["active_users"], frame["active_users_4w_ago"])
    return (-change).to_numpy(dtype="float64")
