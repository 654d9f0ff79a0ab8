"""What the risk bands of product.yaml mean on the evaluation rows, and advice when they do not
tell accounts apart.

The bands are probabilities of churn within the horizon. The bundled ones (high from 0.30,
medium from 0.12) suit a month or a quarter of a book that loses a few percent a month; over a
week, or in a book that rarely churns, almost no probability reaches them, and every account
in a digest, the riskiest included, says "low". The training report shows how the evaluation
rows fall into the bands and how many of each churned, and when the bands flag too few or too
many accounts it says which thresholds would flag about the riskiest twentieth as high and the
next sixth as medium on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.spec import RiskBands

#: The share of rows the advice would put in high, and in high or medium.
HIGH_SHARE = 0.05
FLAGGED_SHARE = 0.20
#: Bands flagging less than this share of rows, or more than the second, get advice.
TOO_FEW, TOO_MANY = 0.05, 0.50


@dataclass(frozen=True)
class BandRow:
    """The evaluation rows in one risk band; ``observed_rate`` is None for an empty band."""

    band: str
    lower: float
    rows: int
    churned: int
    observed_rate: float | None


def band_rows(y: np.ndarray, proba: np.ndarray, bands: RiskBands) -> list[BandRow]:
    """High, medium and low: each band's rows and churners."""
    churned = y.astype(bool)
    high = proba >= bands.high
    medium = (proba >= bands.medium) & ~high
    rows = []
    for name, lower, mask in (
        ("high", bands.high, high),
        ("medium", bands.medium, medium),
        ("low", 0.0, ~high & ~medium),
    ):
        n = int(mask.sum())
        hits = int(churned[mask].sum())
        rows.append(BandRow(name, lower, n, hits, hits / n if n else None))
    return rows


def suggested_bands(proba: np.ndarray) -> tuple[float, float] | None:
    """High and medium thresholds that flag about :data:`HIGH_SHARE` and
    :data:`FLAGGED_SHARE` of ``proba`` (two significant figures); None when the
    probabilities are too few or too alike to part."""
    if proba.size < 1 / HIGH_SHARE:
        return None
    high, medium = (
        float(f"{value:.2g}") for value in np.quantile(proba, [1 - HIGH_SHARE, 1 - FLAGGED_SHARE])
    )
    return (high, medium) if 0 < medium < high < 1 else None


def band_warning(
    rows: list[BandRow], suggestion: tuple[float, float] | None, *, base_rate: float, horizon: int
) -> str | None:
    """A warning for the training output when the bands flag (high or medium) fewer than
    :data:`TOO_FEW` or more than :data:`TOO_MANY` of the evaluation rows."""
    total = sum(row.rows for row in rows)
    if not total:
        return None
    flagged = sum(row.rows for row in rows if row.band != "low") / total
    if TOO_FEW <= flagged <= TOO_MANY:
        return None
    high, medium = (row.lower for row in rows[:2])
    what = (
        f"flag only {_share(flagged)} of the evaluation rows as high or medium risk: over "
        f"{horizon} days churn is rare here (base rate {base_rate:.1%}), so few probabilities "
        'reach them and digests would call almost every account "low"'
        if flagged < TOO_FEW
        else f"flag {_share(flagged)} of the evaluation rows as high or medium risk, so the bands "
        "tell few accounts apart"
    )
    advice = (
        f"; to flag about the riskiest {HIGH_SHARE:.0%} as high and the next "
        f"{FLAGGED_SHARE - HIGH_SHARE:.0%} as medium, set risk_bands to high: "
        f"{suggestion[0]:g}, medium: {suggestion[1]:g}"
        if suggestion
        else ""
    )
    return f"risk_bands in product.yaml (high {high:g}, medium {medium:g}) {what}{advice}"


def _share(value: float) -> str:
    """A share for a sentence: "under 0.1%" rather than a "0.0%" that reads as none."""
    return "under 0.1%" if 0 < value < 0.0005 else f"{value:.1%}"
