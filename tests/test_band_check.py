"""The training report shows what the risk bands mean on the evaluation rows, and says so when
they tell accounts apart badly, with thresholds that would (``models.band_check``).

Before, a book trained for a short horizon (churn within a week is rare) kept the bundled
bands, and every account of every digest, the riskiest included, said "low" with no word why.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from models.band_check import band_rows, band_warning, suggested_bands
from models.evaluation import EvaluationReport, evaluate, format_report
from models.generator import generate_accounts
from models.spec import RiskBands
from tests.cli_run import run

BANDS = RiskBands(high=0.3, medium=0.12)


def test_each_band_counts_its_rows_and_churners() -> None:
    proba = np.array([0.5, 0.3, 0.2, 0.12, 0.05, 0.0])
    y = np.array([1, 0, 1, 1, 0, 0])
    rows = band_rows(y, proba, BANDS)
    assert [(r.band, r.lower, r.rows, r.churned) for r in rows] == [
        ("high", 0.3, 2, 1),
        ("medium", 0.12, 2, 2),
        ("low", 0.0, 2, 0),
    ]
    assert [r.observed_rate for r in rows] == [0.5, 1.0, 0.0]
    assert band_rows(y[:1], proba[:1], BANDS)[2].observed_rate is None  # an empty band


def test_rare_churn_gets_thresholds_that_flag_the_riskiest() -> None:
    proba = np.random.default_rng(0).beta(1, 200, 5000)  # about 0.5% each
    y = np.zeros(proba.size, dtype=int)
    rows = band_rows(y, proba, BANDS)
    suggestion = suggested_bands(proba)
    assert suggestion is not None
    high, medium = suggestion
    assert 0.9 * 0.05 < (proba >= high).mean() < 1.1 * 0.05
    assert 0.9 * 0.20 < (proba >= medium).mean() < 1.1 * 0.20
    warning = band_warning(rows, suggestion, base_rate=0.004, horizon=7)
    assert warning is not None
    assert warning.startswith("risk_bands in product.yaml (high 0.3, medium 0.12) flag only ")
    assert "over 7 days churn is rare here (base rate 0.4%)" in warning
    assert warning.endswith(f"set risk_bands to high: {high:g}, medium: {medium:g}")


def test_bands_that_flag_most_rows_are_said_to_tell_few_apart() -> None:
    proba = np.random.default_rng(1).uniform(0.2, 0.9, 1000)
    warning = band_warning(
        band_rows(np.zeros(1000), proba, BANDS), suggested_bands(proba), base_rate=0.4, horizon=90
    )
    assert warning is not None
    assert "tell few accounts apart" in warning


@pytest.mark.parametrize("share", [0.06, 0.2, 0.45])
def test_bands_that_flag_a_usual_share_say_nothing(share: float) -> None:
    proba = np.where(np.arange(1000) < share * 1000, 0.5, 0.01)
    assert (
        band_warning(band_rows(np.zeros(1000), proba, BANDS), None, base_rate=0.1, horizon=30)
        is None
    )


def test_a_share_under_a_tenth_of_a_percent_is_not_printed_as_none() -> None:
    proba = np.where(np.arange(10_000) < 2, 0.5, 0.001)  # 2 rows of 10,000 flagged
    rows = band_rows(np.zeros(10_000), proba, BANDS)
    warning = band_warning(rows, None, base_rate=0.001, horizon=7)
    assert warning is not None
    assert "flag only under 0.1% of the evaluation rows" in warning


def test_too_few_or_alike_probabilities_get_no_suggestion() -> None:
    assert suggested_bands(np.linspace(0, 0.5, 10)) is None
    assert suggested_bands(np.full(100, 0.2)) is None


def test_the_report_shows_the_bands_and_keeps_them_in_the_card() -> None:
    rng = np.random.default_rng(2)
    proba = rng.uniform(0, 0.6, 400)
    y = (rng.random(400) < proba).astype(int)
    report = evaluate(y, proba, proba, bands=BANDS)
    again = EvaluationReport.from_dict(report.to_dict())
    assert again == report
    text = format_report(report)
    table = text[text.index("Risk bands (risk_bands in product.yaml)") :]
    high = report.by_band[0]
    assert re.search(rf"high\s+0\.3\s+{high.rows}\s+{high.rows / 400:.1%}\s+{high.churned}", table)


def test_training_for_a_week_ahead_says_which_bands_to_set_and_they_then_part_the_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = generate_accounts(600, 30, seed=7, end=dt.date(2026, 11, 16)).accounts
    export = tmp_path / "weekly.csv"
    book.rename(columns={"account_id": "Customer", "as_of": "Week"}).to_csv(export, index=False)
    config = tmp_path / "config"
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    product_file = config / "product.yaml"
    product = yaml.safe_load(product_file.read_text())
    product["horizon_days"] = 7  # a churn within the week: rare
    product_file.write_text(yaml.safe_dump(product, sort_keys=False))
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))

    code, out, err = run("train", "--data", str(export), "--no-promote")
    assert code == 0, out + err
    said = " ".join(err.split())
    assert 'digests would call almost every account "low"' in said
    found = re.search(r"set risk_bands to high: ([\d.e-]+), medium: ([\d.e-]+)", said)
    assert found is not None, said
    # init's starter digest shows accounts from 0.1 up: none would reach it.
    assert (
        "digests all-accounts (min_risk 0.1) in channels.yaml show only accounts at or above "
        "min_risk, which almost none reach here"
    ) in said
    assert f"lower it to the medium threshold, {found[2]}, with the bands" in said
    product["risk_bands"] = {"high": float(found[1]), "medium": float(found[2])}
    product_file.write_text(yaml.safe_dump(product, sort_keys=False))
    channels_file = config / "channels.yaml"
    channels = yaml.safe_load(channels_file.read_text())
    channels["digests"][0]["min_risk"] = float(found[2])
    channels_file.write_text(yaml.safe_dump(channels, sort_keys=False))

    code, out, err = run("train", "--data", str(export), "--no-promote")
    assert code == 0, out + err
    assert "risk_bands" not in err
    assert "min_risk" not in err
    shares = dict(re.findall(r"^(high|medium|low)\s+\S+\s+\d+\s+([\d.]+)%", out, re.MULTILINE))
    assert 2 < float(shares["high"]) < 10
    assert 10 < float(shares["high"]) + float(shares["medium"]) < 35
