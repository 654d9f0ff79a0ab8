"""How a candidate model's scores differ from the champion's on the same accounts.

Shadow mode scores the book with a candidate next to the champion without showing the
candidate to anyone; these pure functions say whether promoting it would change what CSMs
see (top-N overlap, rank correlation, who enters and leaves the list) and, where outcomes are
known, whether it would be better (ranking metrics and precision of the top-N).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import pr_auc, roc_auc, top_decile

#: Accounts listed as entering or leaving the top-N (the counts are always complete).
MAX_MOVERS = 10


@dataclass(frozen=True)
class OutcomeMetrics:
    """Ranking quality of one model on accounts whose outcome is known."""

    n: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    top_decile_precision: float | None
    precision_at_n: float | None


@dataclass(frozen=True)
class ShadowComparison:
    n_accounts: int
    top_n: int
    overlap: int
    spearman: float | None
    mean_abs_change: float
    entered: list[str]
    left: list[str]
    champion: OutcomeMetrics | None = None
    candidate: OutcomeMetrics | None = None

    @property
    def overlap_share(self) -> float:
        return self.overlap / self.top_n if self.top_n else 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShadowComparison:
        metrics = {
            key: OutcomeMetrics(**data[key]) if data.get(key) else None
            for key in ("champion", "candidate")
        }
        return cls(**{**data, **metrics})


def _top(scores: pd.Series, n: int) -> list[str]:
    """The ``n`` highest-scored ids, ties broken by id so the list is reproducible."""
    frame = pd.DataFrame({"id": scores.index.astype(str), "score": scores.to_numpy()})
    return frame.sort_values(["score", "id"], ascending=[False, True])["id"].head(n).tolist()


def spearman(a: pd.Series, b: pd.Series) -> float | None:
    """Spearman rank correlation (average ranks for ties); None if either side is constant."""
    ra, rb = a.rank().to_numpy(), b.rank().to_numpy()
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def outcome_metrics(labels: pd.Series, scores: pd.Series, top_n: int) -> OutcomeMetrics | None:
    """Metrics of ``scores`` on the accounts of ``labels`` (True churned); None when fewer
    than two accounts are known. Metrics that need both classes are None without them."""
    known = labels.index.intersection(scores.index)
    if len(known) < 2:
        return None
    y = labels.loc[known].to_numpy(dtype=bool)
    s = scores.loc[known].to_numpy(dtype=float)
    both = bool(y.any() and not y.all())
    top = _top(scores.loc[known], min(top_n, len(known)))
    return OutcomeMetrics(
        n=len(known),
        positives=int(y.sum()),
        roc_auc=roc_auc(y, s) if both else None,
        pr_auc=pr_auc(y, s) if both else None,
        top_decile_precision=top_decile(y, s).precision if both else None,
        precision_at_n=float(labels.loc[top].mean()),
    )


def compare(
    champion: pd.Series,
    candidate: pd.Series,
    *,
    top_n: int,
    outcomes: pd.Series | None = None,
) -> ShadowComparison:
    """Compare two models' risks, indexed by account id, on the accounts both scored.

    ``outcomes`` (True churned, False did not, indexed by account) adds each model's metrics
    on the accounts whose outcome is known.
    """
    if top_n < 1:
        raise ValueError(f"The 'top_n' parameter of compare must be at least 1. Got {top_n}.")
    common = champion.index.intersection(candidate.index)
    if common.empty:
        raise ValueError("The champion and the candidate scored no account in common.")
    a, b = champion.loc[common].astype(float), candidate.loc[common].astype(float)
    n = min(top_n, len(common))
    top_a, top_b = _top(a, n), _top(b, n)
    kept = set(top_a) & set(top_b)
    return ShadowComparison(
        n_accounts=len(common),
        top_n=n,
        overlap=len(kept),
        spearman=spearman(a, b),
        mean_abs_change=float((b - a).abs().mean()),
        entered=[i for i in top_b if i not in kept][:MAX_MOVERS],
        left=[i for i in top_a if i not in kept][:MAX_MOVERS],
        champion=outcome_metrics(outcomes, a, n) if outcomes is not None else None,
        candidate=outcome_metrics(outcomes, b, n) if outcomes is not None else None,
    )
