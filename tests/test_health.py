"""Health checks trip on crafted bad data and stay quiet on healthy data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from models.health import (
    check_accuracy_floor,
    check_drift,
    check_freshness,
    check_input_validity,
    check_model_integrity,
    proportions,
    psi,
    quantile_edges,
)


def test_freshness() -> None:
    today = dt.date(2026, 11, 23)
    assert check_freshness(dt.date(2026, 11, 16), today, 8).ok
    yesterday = today - dt.timedelta(days=1)
    assert check_freshness(yesterday, today, 8).message == f"Data as of {yesterday} (1 day old)"
    stale = check_freshness(dt.date(2026, 11, 2), today, 8)
    assert not stale.ok
    assert stale.message == (
        "Data is stale: as of 2026-11-02, 21 days old (limit 8: health.max_data_age_days in "
        "product.yaml)"
    )


def test_input_validity() -> None:
    assert check_input_validity(10, 1000, 0.02).ok
    bad = check_input_validity(300, 1000, 0.02)
    assert not bad.ok
    assert "300 of 1,000 rows rejected (30.0% > 2.0%)" in bad.message
    assert not check_input_validity(0, 0, 0.02).ok, "an empty input is not a valid input"


def test_psi_matches_hand_computation() -> None:
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    actual = np.array([0.1, 0.2, 0.3, 0.4])
    by_hand = sum((a - e) * np.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0


def test_drift_trips_on_shifted_scores_only() -> None:
    rng = np.random.default_rng(1)
    reference = rng.beta(2, 20, 20_000)
    edges = quantile_edges(reference)
    ref_props = proportions(reference, edges)
    assert ref_props.sum() == pytest.approx(1.0)
    same = check_drift("risk", ref_props, proportions(rng.beta(2, 20, 20_000), edges), 0.25)
    assert same.ok, same.message
    shifted = check_drift("risk", ref_props, proportions(rng.beta(5, 10, 20_000), edges), 0.25)
    assert not shifted.ok
    assert shifted.message.startswith("Scores drifted: PSI ")
    assert shifted.message.endswith("> 0.25 on risk")
    feature = check_drift(
        "logins", ref_props, proportions(rng.beta(5, 10, 20_000), edges), 0.25, moved="Input"
    )
    assert feature.message.startswith("Input drifted: PSI ")


def test_quantile_edges_survive_ties_and_empty_input() -> None:
    edges = quantile_edges(np.array([0, 0, 0, 0, 1.0]))
    assert list(edges) == sorted(set(edges))
    assert proportions(np.array([0, 0, 1.0]), edges).sum() == pytest.approx(1.0)
    assert quantile_edges(np.array([np.nan])).size == 0


def test_model_integrity_and_accuracy_floor() -> None:
    assert check_model_integrity(None).ok
    broken = check_model_integrity("model 20261123-abc is tampered with")
    assert not broken.ok
    assert "tampered" in broken.message
    assert check_accuracy_floor("roc_auc", None, 0.7, 0, 0, 20).ok
    assert check_accuracy_floor("roc_auc", 0.81, 0.7, 500, 40, 20).ok
    low = check_accuracy_floor("roc_auc", 0.61, 0.7, 500, 40, 20)
    assert not low.ok
    assert low.message == (
        "Accuracy below the floor: roc_auc 0.610 < 0.700 on 500 accounts with known outcomes, "
        "40 churned"
    )
    # Six churners: a ROC AUC on them is noise, not a reason to pause every CSM's scores.
    thin = check_accuracy_floor("roc_auc", 0.61, 0.7, 1634, 6, 20)
    assert thin.ok
    assert thin.message == (
        "roc_auc 0.610 on 1,634 accounts with known outcomes, 6 churned: too few churned to "
        "judge against the floor (accuracy_sla.min_churned: 20 in product.yaml)"
    )
