"""Features written after the churn: named, kept out of automatic promotion, and only those.

The pure check on built features first, then an export of another company's shape with such a
column ("Cancellation Days", filled in only once an account has gone) through ``init`` and
``train`` as a user runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.leakage import SUSPECT_AUC, suspects
from tests.cli_run import run
from tests.exports import usage_observations

LABELS = {"usage": "Usage", "closed_days": "Days since closing", "noise": "Noise"}


def built(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    churned = rng.random(n) < 0.1
    usage = rng.normal(0, 1, n) - 0.8 * churned  # a real, partial signal
    closed = np.where(churned, rng.integers(1, 30, n), np.nan)  # known only once gone
    frame = pd.DataFrame({"usage": usage, "closed_days": closed, "noise": rng.normal(0, 1, n)})
    return frame, churned


def test_a_feature_known_only_once_an_account_has_gone_is_named_and_nothing_else() -> None:
    frame, churned = built()
    found = suspects(frame, churned, LABELS, numeric=list(LABELS))
    assert [(s.name, s.label) for s in found] == [("closed_days", "Days since closing")]
    assert found[0].auc == 1.0
    assert "closed_days (Days since closing) alone ranks the churned rows with ROC AUC 1.000" in (
        found[0].warning()
    )


def test_the_label_itself_with_noise_is_caught_in_either_direction() -> None:
    frame, churned = built()
    rng = np.random.default_rng(1)
    frame["stayed_score"] = np.where(churned, 0.0, 1.0) + rng.normal(0, 0.05, len(churned))
    found = suspects(
        frame, churned, {**LABELS, "stayed_score": "S"}, numeric=["usage", "stayed_score"]
    )
    assert [s.name for s in found] == ["stayed_score"]
    assert found[0].auc >= SUSPECT_AUC


def test_rows_of_one_outcome_have_no_suspects() -> None:
    frame, churned = built()
    assert suspects(frame, np.zeros(len(churned), dtype=bool), LABELS, numeric=list(LABELS)) == ()


def test_a_status_written_at_the_churn_is_caught_but_neither_a_real_segment_nor_an_id() -> None:
    """Level rates learnt on other accounts' rows: a "Closed" status gives churn away; a
    segment that only shifts the odds does not, nor does a column of one value per account,
    whose rates learnt on the rows they score would be perfect."""
    frame, churned = built()
    rng = np.random.default_rng(3)
    accounts = np.repeat(np.arange(len(churned) // 4), 4)
    frame["status"] = np.where(churned, "Closed", rng.choice(["Active", "Renewing"], len(churned)))
    frame["segment"] = np.where(rng.random(len(churned)) < 0.3 + 0.2 * churned, "smb", "ent")
    frame["account_code"] = [f"acc-{a}" for a in accounts]
    labels = {"status": "Status", "segment": "Segment", "account_code": "Account code"}
    found = suspects(
        frame, churned, labels, numeric=[], categorical=list(labels), accounts=accounts
    )
    assert [(s.name, s.auc) for s in found] == [("status", 1.0)]


@pytest.fixture
def leaky_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Monthly usage observations with a column a CRM fills in when an account cancels."""
    frame = usage_observations(accounts=800, months=14)
    churned = frame["is_churn"] == "True"
    rng = np.random.default_rng(2)
    frame["Cancellation Days"] = np.where(churned, rng.integers(1, 30, len(frame)).astype(str), "")
    export = tmp_path / "leaky.csv"
    frame.to_csv(export, index=False)
    config, var = tmp_path / "config", tmp_path / "var"
    monkeypatch.setenv("CHURNBOT_VAR", str(var))
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    return export, config, var


def test_a_model_on_a_leaked_column_is_registered_but_not_promoted(
    leaky_export: tuple[Path, Path, Path],
) -> None:
    export, _, var = leaky_export
    code, out, err = run("train", "--data", str(export))

    assert code == 0, out + err
    assert "warning: feature cancellation_days (Cancellation days) alone ranks the churned" in (
        " ".join(err.split())
    )
    assert (
        "Not promoted: feature(s) cancellation_days, cancellation_days_missing look recorded "
        "after the churn (see the warning above). Promote by hand with `churnbot models promote"
    ) in " ".join(out.split())
    card = json.loads(next((var / "registry").glob("*/card.json")).read_text())
    # The column and init's "was it recorded" flag of it: the same leak, twice.
    assert [s["name"] for s in card["notes"]["leakage_suspects"]] == [
        "cancellation_days",
        "cancellation_days_missing",
    ]
    assert not (var / "registry" / "champion").exists()

    # A person may still promote it, and is told again what it was trained on.
    code, out, err = run("models", "promote", card["version"])
    assert code == 0, out + err
    assert f"Champion is now {card['version']}." in out
    assert (
        f"warning: {card['version']} was trained on feature(s) cancellation_days, "
        "cancellation_days_missing that look recorded after the churn"
    ) in " ".join(err.split())
    code, out, err = run("train", "--data", str(export), "--promote")
    assert code == 0, out + err
    assert "Promoted " in out
