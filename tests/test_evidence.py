"""Reasons only for what the data supports: the weights' evidence recorded at training
(``models.evidence``) and the reasons that use it (``models.reasons.ReasonWriter``).

The export is a foreign one (tests/test_feature_config.py's ``table``): churn depends on posts
and the plan tier; spend and auto-renew are drawn apart from it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.evidence import p_value, weight_evidence
from models.explain import explain, reference_point
from models.labels import make_labels
from models.reasons import ReasonsConfig, ReasonWriter, reason_reference
from models.train import train_model
from tests.test_feature_config import SCHEMA, feature_set, table

FEATURES = feature_set(
    posts={"column": "posts", "label": "Posts this month"},
    tier={"transform": "category", "column": "plan_tier", "label": "Plan tier"},
    spend={"column": "spend", "label": "Spend"},
    renew={"transform": "yes_no", "column": "auto_renew", "label": "Auto-renew"},
)
NOISE = {"spend", "renew"}


def trained(rows: pd.DataFrame) -> tuple[object, pd.DataFrame, np.ndarray]:
    result = train_model(rows, SCHEMA, FEATURES, horizon_days=30)
    return result.estimator, FEATURES.build(rows), make_labels(rows, SCHEMA, 30).to_numpy()


def test_features_without_an_effect_are_never_a_reason() -> None:
    rows = table(3000, seed=0)
    estimator, built, churned = trained(rows)
    evidence = weight_evidence(estimator, built, churned, rows["member"].to_numpy())
    assert p_value(evidence, ["posts"]) < 1e-6
    assert p_value(evidence, ["tier"]) < 1e-6
    assert min(p_value(evidence, [name]) for name in NOISE) > 0.05

    reference = reason_reference(FEATURES, rows, built, churned)
    contributions = explain(estimator, built, reference_point(estimator, built))
    before = ReasonWriter(ReasonsConfig(), FEATURES, reference)
    assert NOISE & set(before.top_codes(contributions).ravel()), "shown without the evidence"
    every = ReasonWriter(ReasonsConfig(max_p_value=1), FEATURES, reference, evidence=evidence)
    assert every.supported.all(), "reasons.yaml's max_p_value: 1 shows every reason"

    writer = ReasonWriter(ReasonsConfig(), FEATURES, reference, evidence=evidence)
    assert writer.supported.tolist() == [code not in NOISE for code in writer.codes]
    codes = writer.top_codes(contributions)
    assert not NOISE & set(codes.ravel())
    assert {"posts", "tier"} <= set(codes.ravel())
    chosen = writer.choose(contributions)
    shown = chosen.shown
    assert (shown[:, 1:] <= shown[:, :-1]).all(), "the shown reasons stay a prefix"
    healthy = np.asarray(writer.features)[chosen.healthy_feature[chosen.healthy_shown]]
    assert not NOISE & set(healthy)


def test_an_account_seen_every_week_counts_once() -> None:
    """A weekly book holds each account many times: counted as independent rows, a feature
    with no effect looks significant; clustered by account, it does not."""
    once = table(600, seed=1)
    weekly = once.loc[once.index.repeat(20)].reset_index(drop=True)
    estimator, built, churned = trained(weekly)
    by_account = weight_evidence(estimator, built, churned, weekly["member"].to_numpy())
    by_row = weight_evidence(estimator, built, churned, np.arange(len(weekly)))
    assert p_value(by_account, ["spend"]) > 0.05
    assert p_value(by_account, ["posts"]) < 1e-3
    # Twenty copies of each account: the variance is twenty times what rows counted apart say.
    start, _ = by_account["columns"]["spend"]
    variance = by_account["covariance"][start][start] / by_row["covariance"][start][start]
    assert 15 < variance < 25
