"""The track record in words: the digest's line and the ``/churn`` card's risk-level line.

Plain sentences (callers pass them through ``fit_mrkdwn`` as pieces): numbers a CSM can
check, what they are counted on, and "too few" instead of a number when outcomes are thin.
"""

from __future__ import annotations

from models.track_record import Rate, RiskLevel, TrackRecord

TRACK_MARK = "📈 "


def _percent(rate: Rate) -> str:
    share = rate.share
    assert share is not None  # callers quote a rate only with known outcomes
    return f"{share:.0%}"


def _accounts(count: int) -> str:
    return f"{count:,} account" + ("" if count == 1 else "s")


def track_record_line(record: TrackRecord) -> str:
    """ "Track record: of 120 accounts flagged high 90 to 180 days ago, 31% churned within
    90 days; 4% of all accounts did." (the outcomes not yet known said too), or why not."""
    horizon = record.horizon_days
    ago = f"{horizon} to {2 * horizon} days ago"
    if not record.enough:
        known = min(record.flagged_rate.known, record.base_rate.known)
        return (
            f"Track record: too few known outcomes yet to say how often accounts flagged high "
            f"{ago} churned ({known:,} of the {record.min_outcomes:,} needed)."
        )
    flagged = record.flagged_rate
    unknown = record.flagged - flagged.known
    counted = f" ({unknown:,} not known yet)" if unknown else ""
    return (
        f"Track record: of {_accounts(record.flagged)} flagged high {ago}{counted}, "
        f"{_percent(flagged)} churned within {horizon} days; "
        f"{_percent(record.base_rate)} of all accounts did."
    )


def risk_level_line(level: RiskLevel) -> str:
    """How often accounts at the card's risk level churned, and where the figure comes from:
    live outcomes, the model's held-out evaluation, or neither yet."""
    horizon_days = level.horizon_days
    band = f"{level.band} risk"
    if level.rate is None:
        return (
            f"How often accounts at {band} churn: too few known outcomes yet "
            f"({level.live_known:,} of the {level.min_outcomes:,} needed)."
        )
    rate = _percent(level.rate)
    if level.source == "live":
        return (
            f"Accounts at {band} churned {rate} of the time within {horizon_days} days "
            f"({_accounts(level.rate.known)} scored {horizon_days} to {2 * horizon_days} days "
            "ago whose outcome is known)."
        )
    return (
        f"In the model's evaluation on held-out data, {rate} of accounts at {band} churned "
        f"within {horizon_days} days ({_accounts(level.rate.known)}); too few live outcomes "
        f"yet ({level.live_known:,} of {level.min_outcomes:,})."
    )
