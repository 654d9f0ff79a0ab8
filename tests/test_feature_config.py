"""Features, labels and histories from configuration: the transform vocabulary on a foreign
table, generated reasons, and every bad configuration a clear error naming file, key and fix."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bot.cli import main
from bot.settings import check_config_folder, load_settings
from models.cards import ReasonReader
from models.contract import AccountSchema
from models.errors import DataContractError
from models.evaluation import evaluate, format_report
from models.explain import explain
from models.features import FeaturesConfig, FeatureSet
from models.labels import make_labels, split
from models.packing import Records
from models.reasons import ReasonsConfig, ReasonWriter, reason_reference
from models.scoring import latest_rows
from models.spec import TrainingSettings
from models.train import train_model
from tests.sample_config import CONFIG

SCHEMA = AccountSchema.model_validate(
    {
        "columns": {
            "member": {"type": "string", "role": "id"},
            "handle": {"type": "string", "role": "name"},
            "seen_on": {"type": "date", "role": "date"},
            "rep": {"type": "string", "role": "owner"},
            "left": {"type": "bool", "role": "label", "required": False},
            "posts": {"type": "int", "required": False},
            "posts_before": {"type": "int"},
            "spend": {"type": "float"},
            "plan_tier": {"type": "category", "role": "segment"},
            "auto_renew": {"type": "bool"},
            "contract_end": {"type": "date", "required": False},
        }
    }
)


def feature_set(**features: dict[str, object]) -> FeatureSet:
    return FeatureSet(FeaturesConfig.model_validate({"features": features}), "seen_on")


def table(n: int = 400, seed: int = 0, days: int = 1) -> pd.DataFrame:
    """A foreign export already validated: its own names, a yes/no label, own dates."""
    rng = np.random.default_rng(seed)
    posts = rng.poisson(8, n).astype("float")
    tier = rng.choice(["basic", "pro", "max"], n, p=[0.5, 0.35, 0.15])
    logit = -1.5 - 0.25 * (posts - 8) + 1.0 * (tier == "basic") + rng.normal(0, 0.5, n)
    left = rng.random(n) < 1 / (1 + np.exp(-logit))
    seen = pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    frame = pd.DataFrame(
        {
            "member": [f"m{i}" for i in range(n)],
            "handle": [f"Member {i}" for i in range(n)],
            "seen_on": seen,
            "rep": "ann",
            "left": pd.array(left, dtype="boolean"),
            "posts": pd.array(posts.astype(int), dtype="Int64"),
            "posts_before": rng.poisson(9, n),
            "spend": rng.gamma(2, 40, n),
            "plan_tier": tier,
            "auto_renew": rng.random(n) < 0.5,
            "contract_end": seen + pd.to_timedelta(rng.integers(1, 365, n), unit="D"),
        }
    )
    frame.loc[:9, "posts"] = pd.NA  # empty cells, as exports have them
    return frame


def test_every_transform_on_a_foreign_table() -> None:
    features = feature_set(
        posts={"column": "posts"},
        posts_change={"transform": "change", "columns": ["posts", "posts_before"]},
        spend_per_post={"transform": "ratio", "columns": ["spend", "posts"]},
        log_spend={"transform": "log", "column": "spend"},
        capped={"transform": "clip", "column": "posts", "clip": [0, 5]},
        posts_missing={"transform": "missing", "column": "posts"},
        auto_renew={"transform": "yes_no", "column": "auto_renew"},
        days_left={"transform": "days_until", "column": "contract_end"},
        tier={"transform": "category", "column": "plan_tier"},
    )
    rows = table(20)
    built = features.build(rows)
    assert list(built.columns) == features.names
    assert features.categorical == ["tier"]
    first = built.iloc[0]
    assert np.isnan(first["posts"]), "an empty cell stays empty for the model's imputer"
    assert first["posts_missing"] == 1.0
    row = built.iloc[12]
    source = rows.iloc[12]
    assert row["log_spend"] == pytest.approx(np.log1p(source["spend"]))
    assert row["capped"] == min(5, source["posts"])
    assert row["days_left"] == (source["contract_end"] - source["seen_on"]).days
    assert row["auto_renew"] == float(source["auto_renew"])
    assert row["tier"] == source["plan_tier"]


def test_a_single_snapshot_with_a_yes_no_label_trains_by_cross_validation() -> None:
    features = feature_set(
        posts={"column": "posts", "label": "Posts this month"},
        tier={"transform": "category", "column": "plan_tier", "label": "Plan tier"},
    )
    rows = table(600)
    result = train_model(rows, SCHEMA, features, horizon_days=30)
    assert result.split.method == "cross_validation"
    assert len(result.p_eval) == 600, "out-of-fold probabilities for every row"
    assert result.params["evaluation"] == "cross_validation"
    report = evaluate(result.y_eval, result.p_eval, result.baseline_eval, method="cross_validation")
    assert report.model.roc_auc > 0.65
    text = format_report(report)
    assert "no forward-in-time check was possible" in text
    # The final model is one linear pipeline: its reasons stay exactly additive.
    built = features.build(rows)
    reference = np.zeros(len(result.feature_names))
    contributions = explain(result.estimator, built, list(reference))
    log_odds = np.log(result.estimator.predict_proba(built)[:, 1]) - np.log(
        result.estimator.predict_proba(built)[:, 0]
    )
    assert np.allclose(contributions.log_odds(), log_odds, atol=1e-8)


def test_generated_reasons_read_with_the_export_words_and_a_reference() -> None:
    features = feature_set(
        posts={"column": "posts", "label": "Posts this month"},
        tier={"transform": "category", "column": "plan_tier", "label": "Plan tier"},
        posts_missing={"transform": "missing", "column": "posts", "label": "Posts"},
    )
    rows = table(600)
    result = train_model(rows, SCHEMA, features, horizon_days=30)
    built = features.build(rows)
    churned = make_labels(rows, SCHEMA, 30).to_numpy()
    reference = reason_reference(features, rows, built, churned)
    assert reference["tier"]["rates"]["basic"] > reference["tier"]["rates"]["max"]
    writer = ReasonWriter(ReasonsConfig(min_impact=0.0), features, reference)
    assert writer.codes == ("posts", "posts_missing", "tier"), "a feature's name is its code"
    from models.explain import reference_point

    contributions = explain(result.estimator, built, reference_point(result.estimator, built))
    chosen = writer.choose(contributions)
    records = Records(len(rows))
    writer.pack(chosen, rows, built, records)
    reader = ReasonReader(writer.spec())
    texts = [
        str(reason["text"])
        for record, count in zip(records.to_list(), chosen.counts().tolist(), strict=True)
        for reason in reader.read(record, 0, count)[0]
    ]
    assert any(
        t.startswith("Posts this month: ") and "(accounts that stayed: median " in t for t in texts
    )
    assert any(t.startswith("Plan tier: basic (churns ") and "as often as max)" in t for t in texts)
    assert "Posts: not recorded" in texts, "an empty cell reads as such, never as nan"
    assert not any("nan" in t for t in texts)


def test_per_account_dates_split_by_calendar_and_score_each_latest_row() -> None:
    rows = table(3000, days=400)
    settings = TrainingSettings(eval_days=60, min_train_positives=5, min_eval_positives=5)
    result = split(rows, SCHEMA, 30, settings)
    assert result.method == "time"
    first_eval = pd.Timestamp(result.eval_window[0])
    last_eval = pd.Timestamp(result.eval_window[1])
    assert (last_eval - first_eval).days <= 59, "the evaluation window is days, not dates"
    assert result.evaluate["seen_on"].nunique() > 13
    assert (result.train["seen_on"] + pd.Timedelta(days=30) < first_eval).all()
    history = pd.concat([rows.assign(seen_on=rows["seen_on"] - pd.Timedelta(days=30)), rows])
    history["left"] = pd.array([False] * len(history), dtype="boolean")
    live = latest_rows(history.reset_index(drop=True), SCHEMA)
    assert len(live) == 3000, "one row per account"
    assert (live["seen_on"].to_numpy() == rows["seen_on"].to_numpy()).all(), "its newest row"


def test_too_few_churners_names_the_label_and_the_setting() -> None:
    rows = table(200).assign(left=pd.array([False] * 200, dtype="boolean"))
    with pytest.raises(DataContractError, match=r"column 'left'.*training\.min_train_positives"):
        split(rows, SCHEMA, 30, TrainingSettings())


def test_a_feature_with_no_value_names_the_feature_and_the_column() -> None:
    rows = table(300).assign(posts=pd.array([pd.NA] * 300, dtype="Int64"))
    features = feature_set(posts={"column": "posts"}, spend={"column": "spend"})
    with pytest.raises(
        DataContractError, match=r"no value in any training row: posts \(column posts\)"
    ):
        train_model(rows, SCHEMA, features, horizon_days=30)


# --- the config folder ------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere"
    shutil.copytree(CONFIG, target)
    return target


def edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_the_shipped_config_is_valid_and_warns_about_unused_columns(folder: Path) -> None:
    problems, warnings = check_config_folder(folder)
    assert problems == []
    assert warnings == [
        f"{folder / 'features.yaml'}: schema.yaml column(s) industry, csat, contacts_lost_90d "
        "feed no feature"
    ]


def test_a_removed_column_names_each_feature_that_reads_it(folder: Path) -> None:
    edit(folder / "schema.yaml", lambda d: d["columns"].pop("seats_purchased"))
    problems, _ = check_config_folder(folder)
    assert any(
        f"{folder / 'features.yaml'}: features.seat_utilisation: column 'seats_purchased' is "
        "not in schema.yaml" in p
        for p in problems
    ), problems


def test_removing_the_segment_column_is_a_clear_message_not_a_key_error(folder: Path) -> None:
    edit(folder / "schema.yaml", lambda d: d["columns"].pop("segment"))
    problems, _ = check_config_folder(folder)
    text = "\n".join(problems)
    assert "features.segment: column 'segment' is not in schema.yaml" in text
    assert "KeyError" not in text


def test_a_label_of_the_wrong_type_names_the_column_and_the_accepted_forms(folder: Path) -> None:
    edit(folder / "schema.yaml", lambda d: d["columns"]["churn_date"].update(type="int"))
    problems, _ = check_config_folder(folder)
    assert any(
        "the label column 'churn_date' has type int; a label is either type: date" in p
        and "type: bool (yes/no, true/false or 1/0" in p
        and str(folder / "schema.yaml") in p
        for p in problems
    ), problems


def test_a_transform_on_the_wrong_type_and_an_unknown_key_are_named(folder: Path) -> None:
    def change(data: dict) -> None:  # type: ignore[type-arg]
        data["features"]["log_arr"]["column"] = "plan"
        data["features"]["nps"]["fil"] = 7

    edit(folder / "features.yaml", change)
    problems, _ = check_config_folder(folder)
    assert any("features.nps.fil: unknown key" in p for p in problems), problems
    edit(folder / "features.yaml", lambda d: d["features"]["nps"].pop("fil"))
    problems, _ = check_config_folder(folder)
    assert any(
        "features.log_arr: transform log needs a column of type int or float; 'plan' is "
        "category" in p
        for p in problems
    ), problems


def test_the_label_cannot_be_a_feature(folder: Path) -> None:
    edit(folder / "features.yaml", lambda d: d["features"].update(leak={"column": "churn_date"}))
    problems, _ = check_config_folder(folder)
    assert any("features.leak: column 'churn_date' is the label column" in p for p in problems)


def test_a_reason_template_for_an_unknown_feature_and_a_drift_feature(folder: Path) -> None:
    edit(folder / "features.yaml", lambda d: d["features"].pop("tenure_months"))
    edit(
        folder / "product.yaml",
        lambda d: d["health"].update(drift_features=["seat_utilisation", "segment"]),
    )
    problems, _ = check_config_folder(folder)
    text = "\n".join(problems)
    assert f"{folder / 'reasons.yaml'}: features.tenure_months: not a feature" in text
    assert "health.drift_features: 'segment' is not a numeric feature" in text


def test_errors_name_the_config_folder_in_use_through_the_cli(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(folder / "schema.yaml", lambda d: d["columns"].pop("renewal_date"))
    code = main(["check-config", "--config", str(folder)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{folder / 'features.yaml'}: features.days_to_renewal" in " ".join(err.split())
    assert "config/features.yaml" not in err.replace(str(folder), "")
    assert "Traceback" not in err


def test_an_empty_optional_column_stops_training_with_the_feature_named(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from models.generator import generate_accounts

    book = generate_accounts(300, 52, seed=2, end=dt.date(2026, 11, 16)).accounts
    book = book.drop(columns=["nps"])  # the export lacks an optional column a feature reads
    data = tmp_path / "book.csv"
    book.to_csv(data, index=False)
    edit(folder / "features.yaml", lambda d: d["features"]["nps"].pop("fill"))
    monkeypatch.setenv("CHURNBOT_CONFIG", str(folder))
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))
    code = main(["train", "--data", str(data)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "no value in any training row: nps (column nps)" in err
    assert "remove the feature(s) from features.yaml" in err
    assert "Input X contains NaN" not in err
    load_settings({"CHURNBOT_CONFIG": str(folder)})  # the config itself stays valid


def test_a_curved_effect_gets_bins_where_they_help_and_both_figures_are_reported() -> None:
    """Churn is high for the newest and the oldest members and low between: a line cannot
    bend that way, bins can."""
    rng = np.random.default_rng(4)
    n = 6000
    rows = table(n, seed=4, days=400)
    logins = rng.integers(0, 40, n)
    flat = rng.integers(0, 40, n)
    u_shape = (logins < 8) | (logins >= 32)
    risk = 1 / (1 + np.exp(-(-2.5 + 2.5 * u_shape + rng.normal(0, 0.3, n))))
    rows = rows.assign(
        posts=pd.array(logins, dtype="Int64"),
        posts_before=flat,
        left=pd.array(rng.random(n) < risk, dtype="boolean"),
    )
    features = feature_set(
        posts={"column": "posts", "curve": "auto"},
        noise={"column": "posts_before", "curve": "auto"},
    )
    settings = TrainingSettings(eval_days=120, min_train_positives=5, min_eval_positives=5)
    result = train_model(rows, SCHEMA, features, horizon_days=30, settings=settings)
    assert result.params["curves"] == ["posts"], result.params["curve_trials"]
    trials = result.params["curve_trials"]
    assert trials["tried"]["noise"]["adopted"] is False
    assert trials["eval_roc_auc_with_curves"] > trials["eval_roc_auc_straight_lines"]
    built = features.build(rows)
    from models.explain import reference_point

    contributions = explain(result.estimator, built, reference_point(result.estimator, built))
    assert contributions.features == ("posts", "noise")
    proba = result.estimator.predict_proba(built)
    assert np.allclose(contributions.log_odds(), np.log(proba[:, 1] / proba[:, 0]), atol=1e-8)


def test_outcomes_from_a_yes_no_label_date_the_churn_after_the_first_yes_row() -> None:
    from bot.feedback.outcomes import outcomes_from_accounts

    frame = table(3).assign(
        member=["a", "a", "b"],
        seen_on=pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-15"]),
        left=pd.array([False, True, False], dtype="boolean"),
    )
    outcomes = outcomes_from_accounts(frame, SCHEMA)
    assert outcomes["a"].churn_date == dt.date(2026, 2, 2)
    assert outcomes["a"].last_seen == dt.date(2026, 2, 1)
    assert outcomes["b"].churn_date is None


def test_the_report_has_a_table_per_segment_and_flags_thin_ones() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[rng.random(900) < 0.2, [True, False, False, False]]
    proba = np.clip(y * 0.3 + rng.random(904) * 0.6, 0, 1)
    segments = np.r_[np.where(rng.random(900) < 0.5, "smb", "enterprise"), ["tiny"] * 4]
    report = evaluate(y, proba, np.zeros(904), segments=segments)
    rows = {row.segment: row for row in report.by_segment}
    assert set(rows) == {"enterprise", "smb", "tiny"}
    assert rows["tiny"].thin
    assert (rows["tiny"].rows, rows["tiny"].churned) == (4, 1)
    assert not rows["smb"].thin
    assert rows["smb"].roc_auc is not None
    assert rows["smb"].roc_auc > 0.7
    assert "too thin to judge" in format_report(report)
    from models.evaluation import EvaluationReport

    assert EvaluationReport.from_dict(report.to_dict()) == report


def test_check_config_prints_the_unused_columns_warning_on_stderr(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check-config", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "configuration is valid" in out
    assert "feed no feature" in " ".join(err.split())
    assert "feed no feature" not in out


def test_a_crm_url_template_links_each_account_and_names_unknown_columns(folder: Path) -> None:
    from models.cards import LinkReader
    from models.scoring import link_spec, pack_link

    features = FeatureSet(
        FeaturesConfig.model_validate(
            {
                "features": {"posts": {"column": "posts"}},
                "card": {"crm_url": "https://crm.example.com/members/{member}?h={handle}"},
            }
        ),
        "seen_on",
    )
    rows = table(3).assign(member=["m 1", "m/2", "m3"], handle=pd.Series(["A&B", "x", None]))
    link = link_spec(features, SCHEMA)
    records = Records(len(rows))
    pack_link(link, rows, records)
    reader = LinkReader(link)
    ids = rows["member"].tolist()
    # The id is the reader's own (the store keeps it); other values are in the record.
    assert [reader.read(r, 0, i)[0] for r, i in zip(records.to_list(), ids, strict=True)] == [
        "https://crm.example.com/members/m%201?h=A%26B",
        "https://crm.example.com/members/m%2F2?h=x",
        None,
    ]
    edit(
        folder / "features.yaml",
        lambda d: d["card"].update(crm_url="https://crm.example.com/a/{acount_id}"),
    )
    problems, _ = check_config_folder(folder)
    assert any("card.crm_url: {acount_id} is not a column of schema.yaml" in p for p in problems), (
        problems
    )
