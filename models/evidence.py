"""Which features the data gives the model evidence for, so that only they are shown as reasons.

A penalised logistic regression gives every feature some weight, and a feature with no real
effect gets a small one from the sample's noise: enough, for many accounts, to pass the
reasons' ``min_impact`` and be shown ("Gender: Female", the only reason for a fifth of a
telco book whose churn does not depend on gender). A reason a CSM cannot act on, or that
the data does not support, costs the trust the other reasons need.

So training records the weights' covariance on the model card, and the reasons test each
reason code: a Wald test that its features' weights are zero (for a feature of several
columns, a one-hot category or a binned number, that its columns' weights are all equal: the
levels differ in nothing), all of the code's features together. The covariance is
the cluster-robust sandwich by account: a weekly book holds each account many times, and
counting its rows as independent would make noise look significant. It is computed on the
training rows with the fitted weights (sample weights from feedback are not used: the test
asks what the data supports). reasons.yaml's ``max_p_value`` is the cut the reasons use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from models.explain import calibrated_parts, feature_blocks, transformed

if TYPE_CHECKING:
    import pandas as pd

#: Rows transformed at a time, so a large book's evidence costs no more memory than a chunk.
CHUNK_ROWS = 100_000


def weight_evidence(
    estimator: object, features: pd.DataFrame, churned: np.ndarray, accounts: np.ndarray
) -> dict[str, Any]:
    """What a reason's test needs, for the model card: the fitted weights, their
    cluster-robust covariance, and each input feature's columns (``[start, stop)``).

    ``features`` are the model's input rows it was trained on, ``churned`` their labels and
    ``accounts`` the account of each row (the clusters of the sandwich)."""
    import pandas as pd
    from scipy.special import expit

    prep, linear, _ = calibrated_parts(estimator)
    coef = np.append(np.asarray(linear.coef_).ravel(), np.ravel(linear.intercept_)[0])  # type: ignore[attr-defined]
    k = coef.size
    clusters, uniques = pd.factorize(pd.Series(accounts), use_na_sentinel=False)
    labels = np.asarray(churned, dtype=np.float64)
    bread = np.zeros((k, k))
    scores = np.zeros((len(uniques), k))
    for start in range(0, len(features), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        matrix = transformed(prep, features.iloc[start:stop])
        dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, float)
        rows = np.column_stack([dense, np.ones(len(dense))])
        p = expit(rows @ coef)
        bread += (rows * (p * (1 - p))[:, None]).T @ rows
        residual = rows * (labels[start:stop] - p)[:, None]
        chunk = clusters[start:stop]
        for j in range(k):  # per column: bincount sums each account's rows in C
            scores[:, j] += np.bincount(chunk, weights=residual[:, j], minlength=len(uniques))
    bread[:-1, :-1] += np.eye(k - 1) * _penalty(linear)
    inverse = np.linalg.pinv(bread)
    covariance = (inverse @ (scores.T @ scores) @ inverse)[:-1, :-1]
    names, groups = feature_blocks(prep)
    return {
        "weights": coef[:-1].tolist(),
        "covariance": covariance.tolist(),
        "columns": {
            name: [int(group.start), int(group.stop)]
            for name, group in zip(names, groups, strict=True)
        },
    }


def p_value(evidence: Mapping[str, Any], features: Collection[str]) -> float:
    """The p-value of a Wald test that ``features`` (one reason code's) add nothing: their
    weights zero, and within a feature of several columns (levels, bins) all equal, as the
    encoding's levels then differ in nothing. Tested together, so that two features sharing
    one effect (a count of overdue invoices and the days they are overdue) are judged by it."""
    from scipy.linalg import block_diag
    from scipy.stats import chi2

    spans = [evidence["columns"][name] for name in features if name in evidence["columns"]]
    if not spans:
        return 1.0
    index = np.concatenate([np.arange(start, stop) for start, stop in spans])
    weights = np.asarray(evidence["weights"], dtype=np.float64)[index]
    cov = np.asarray(evidence["covariance"], dtype=np.float64)[np.ix_(index, index)]
    contrast = block_diag(
        *[
            np.eye(stop - start) - (1 / (stop - start) if stop - start > 1 else 0)
            for start, stop in spans
        ]
    )
    weights, cov = contrast @ weights, contrast @ cov @ contrast.T
    rank = int(np.linalg.matrix_rank(cov))
    if rank == 0:
        return 1.0
    return float(chi2.sf(float(weights @ np.linalg.pinv(cov) @ weights), rank))


def _penalty(linear: Any) -> float:
    """The L2 penalty's weight in the Hessian: scikit-learn minimises
    ``C * sum(loss) + (1 - l1_ratio) * |w|^2 / 2 + ...``, so ``(1 - l1_ratio) / C``."""
    c = float(getattr(linear, "C", np.inf))
    l1_ratio = float(getattr(linear, "l1_ratio", 0.0) or 0.0)
    return 0.0 if not np.isfinite(c) or c <= 0 else (1.0 - l1_ratio) / c
