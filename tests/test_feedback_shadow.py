"""How a candidate's scores differ from the champion's (pure comparison)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.shadow import ShadowComparison, compare, spearman

IDS = [f"A{i:02d}" for i in range(20)]


def scores(values: list[float]) -> pd.Series:
    return pd.Series(values, index=IDS[: len(values)])


def test_the_same_ranking_overlaps_fully() -> None:
    champion = scores([i / 20 for i in range(20)])
    result = compare(champion, champion * 0.5, top_n=5)
    assert (result.overlap, result.top_n, result.overlap_share) == (5, 5, 1.0)
    assert result.spearman == pytest.approx(1.0)
    assert result.entered == result.left == []
    assert result.mean_abs_change == pytest.approx(float((champion * 0.5).mean()))


def test_a_reversed_ranking_swaps_the_top_list() -> None:
    champion = scores([i / 20 for i in range(20)])
    candidate = scores([1 - i / 20 for i in range(20)])
    result = compare(champion, candidate, top_n=3)
    assert result.overlap == 0
    assert result.spearman == pytest.approx(-1.0)
    assert result.entered == ["A00", "A01", "A02"]
    assert result.left == ["A19", "A18", "A17"]


def test_metrics_where_outcomes_are_known() -> None:
    champion = scores([i / 20 for i in range(20)])
    candidate = scores([1 - i / 20 for i in range(20)])
    outcomes = pd.Series([i >= 15 for i in range(20)], index=IDS)
    result = compare(champion, candidate, top_n=5, outcomes=outcomes)
    assert result.champion is not None
    assert result.candidate is not None
    assert result.champion.roc_auc == 1.0
    assert result.candidate.roc_auc == 0.0
    assert (result.champion.precision_at_n, result.candidate.precision_at_n) == (1.0, 0.0)
    assert result.champion.positives == 5
    assert ShadowComparison.from_dict(result.to_dict()) == result


def test_one_class_of_outcomes_gives_no_ranking_metric() -> None:
    champion = scores([i / 20 for i in range(20)])
    outcomes = pd.Series(False, index=IDS[:10])
    result = compare(champion, champion, top_n=5, outcomes=outcomes)
    assert result.champion is not None
    assert result.champion.roc_auc is None
    assert result.champion.precision_at_n == 0.0


def test_accounts_only_one_model_scored_are_left_out_and_bad_input_refused() -> None:
    assert compare(scores([0.1, 0.2, 0.3]), scores([0.3, 0.2]), top_n=10).n_accounts == 2
    assert spearman(scores([0.5, 0.5]), scores([0.1, 0.2])) is None
    with pytest.raises(ValueError, match="'top_n' parameter of compare must be at least 1"):
        compare(scores([0.1]), scores([0.1]), top_n=0)
    with pytest.raises(ValueError, match="no account in common"):
        compare(scores([0.1]), pd.Series([0.2], index=["B"]), top_n=1)
