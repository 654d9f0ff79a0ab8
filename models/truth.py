"""Do the explanations name the real cause? A check only synthetic data makes possible.

The generator records why each churned account churned. For the accounts the model flags as
at risk that really churn within the horizon, we count how often a recorded cause is among
the top reasons shown. Accounts whose churn had no visible cause ("unexplained") are left out:
no explanation could name a cause that left no trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.explain import explain
from models.labels import make_labels
from models.scoring import Scorer

UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class TruthCheck:
    flagged_churners: int  # rows: at risk, churned within the horizon, with a visible cause
    hits: int
    left_out_unexplained: int

    @property
    def rate(self) -> float:
        return self.hits / self.flagged_churners if self.flagged_churners else float("nan")


def truth_in_top_reasons(
    account_ids: pd.Series,
    churned: np.ndarray,
    at_risk: np.ndarray,
    top_codes: np.ndarray,
    truth: pd.DataFrame,
) -> TruthCheck:
    """Share of flagged churners whose recorded cause is among their top reason codes.

    ``truth`` has account_id and causes (";"-joined codes), as written by the generator.
    """
    causes = truth.set_index("account_id")["causes"].astype(str).str.split(";")
    rows = np.flatnonzero(churned & at_risk)
    hits = left_out = counted = 0
    for row in rows:
        recorded = set(causes.get(account_ids.iloc[row], [])) - {UNEXPLAINED, ""}
        if not recorded:
            left_out += 1
            continue
        counted += 1
        hits += bool(recorded & set(top_codes[row]))
    return TruthCheck(counted, hits, left_out)


def measure_scorer(
    scorer: Scorer, rows: pd.DataFrame, truth: pd.DataFrame, horizon_days: int
) -> TruthCheck:
    """Score ``rows`` (e.g. the evaluation weeks) and check their reasons against the truth.

    "At risk" means the medium band or above: the accounts a digest would show.
    """
    rows = rows.reset_index(drop=True)
    features = scorer.features.build(rows)
    risk = scorer.predict(rows)
    reference = scorer.model.card.notes["explain_reference"]
    top = scorer.writer.top_codes(explain(scorer.model.estimator, features, reference))
    churned = make_labels(rows, scorer.schema, horizon_days).to_numpy(dtype=bool)
    at_risk = risk >= scorer.bands.medium
    return truth_in_top_reasons(rows[scorer.schema.id_column], churned, at_risk, top, truth)
