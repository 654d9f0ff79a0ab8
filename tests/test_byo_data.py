"""Any company's export, by configuration alone: ``init`` -> ``train`` -> ``score`` -> a card.

Six exports of different shapes, each built here with its own column names and types: the
bundled weekly book (as CSV), a single subscriber snapshot with a Yes/No label and yes/no
service columns, per-account monthly observations with a True/False label and event-rate
metrics, four months of those (too short a history to evaluate on a later period), and a CRM
report as a spreadsheet saves it (US dates, "$12,500.00", "80%", a Y/N label), as CSV and as
an .xlsx workbook whose cells are typed (dates, numbers, a percentage as a fraction).
Each goes through the CLI (``init`` writes the config folder, ``train`` the model), then
the same scoring run ``churnbot score`` does publishes into the real Redis, and a signed
``/churn`` request to the real app answers with a card whose reasons name that export's own
columns. No code knows any of these shapes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import redis
import yaml

from bot.app import build_app
from bot.cli.score import score_book
from bot.deps import build_deps
from bot.emulator import block_kit_problems
from bot.emulator.sender import SlackSender
from bot.feedback.track_record import flag_log
from bot.loopback import LoopbackServer
from bot.settings import load_settings
from bot.web import build_wsgi
from models.generator import generate_accounts
from tests.cli_run import run
from tests.exports import crm_report, subscriber_snapshot, usage_observations
from tests.slack_harness import CSM, SECRET

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Shape:
    """One export shape and what its card must show."""

    name: str
    build: Callable[[], pd.DataFrame]
    #: Labels a generated reason may start with: the export's own column names.
    own_columns: tuple[str, ...]
    evaluation: str
    #: The label column ``init`` must pick, as written in schema.yaml.
    label: str
    #: The file it comes in: ".csv", or ".xlsx" with the cells typed as a spreadsheet types
    #: them (``typed_workbook``).
    suffix: str = ".csv"


USAGE_COLUMNS = (
    "posts_per_month",
    "messages_per_month",
    "dislikes_per_post",
    "unfriends_per_month",
    "replies_per_message",
    "likes_per_post",
    "posts_change_pct",
    "messages_change_pct",
    "days_active_per_month",
    "new_friends_per_month",
    "adview_per_post",
    "reply_rate_pct",
)


def typed_workbook(report: pd.DataFrame) -> pd.DataFrame:
    """The CRM report as a spreadsheet holds it: dates as dates, money and counts as numbers,
    seat use as a fraction (what a cell formatted as a percentage holds)."""
    return report.assign(
        **{
            name: pd.to_datetime(report[name], format="%m/%d/%Y")
            for name in ("Report Date", "Last Login")
        },
        **{
            "MRR": report["MRR"].str.replace(r"[$,]", "", regex=True).astype(float),
            "Seats Used": report["Seats Used"].str.rstrip("%").astype(float) / 100,
            "Open Tickets": report["Open Tickets"].astype(int),
        },
    )


def weekly_book() -> pd.DataFrame:
    return generate_accounts(1200, 52, seed=5, end=dt.date(2026, 11, 16)).accounts


SHAPES = [
    Shape(
        "weekly-book",
        weekly_book,
        ("active users", "logins", "seats", "escalations", "renewal", "nps", "tenure", "arr"),
        "time",
        "churn_date",
    ),
    Shape(
        "subscriber-snapshot",
        subscriber_snapshot,
        (
            "Contract",
            "tenure",
            "MonthlyCharges",
            "TotalCharges",
            "InternetService",
            "PaymentMethod",
            "TechSupport",
            "OnlineSecurity",
            "SeniorCitizen",
            "Partner",
        ),
        "cross_validation",
        "churn",
    ),
    Shape("usage-observations", usage_observations, USAGE_COLUMNS, "time", "is_churn"),
    Shape(
        "crm-report",
        crm_report,
        ("seats used", "last login", "open tickets", "mrr"),
        "time",
        "churned",
    ),
    Shape(
        "crm-workbook",
        crm_report,
        ("seats used", "last login", "open tickets", "mrr"),
        "time",
        "churned",
        suffix=".xlsx",
    ),
    # Four months of the same: too short a history for a later period to evaluate on, so
    # `auto` cross-validates (each account's rows in one fold) and the card says why.
    Shape(
        "short-history",
        lambda: usage_observations(months=4),
        USAGE_COLUMNS,
        "cross_validation",
        "is_churn",
    ),
]


def _plain(text: str) -> str:
    """Lower case without spaces or underscores: "MonthlyCharges" ~ "Monthly charges"."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


@pytest.fixture(params=SHAPES, ids=lambda shape: shape.name)
def trained(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Shape, Path, Path, Path]:
    """The export written as CSV, its config folder from ``init``, a model from ``train``."""
    shape: Shape = request.param
    export = tmp_path / f"{shape.name}{shape.suffix}"
    if shape.suffix == ".xlsx":
        typed_workbook(shape.build()).to_excel(export, index=False)
    else:
        shape.build().to_csv(export, index=False)
    config, var = tmp_path / "config", tmp_path / "var"
    monkeypatch.setenv("CHURNBOT_VAR", str(var))
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    assert "What I guessed, and why" in err
    assert "Wrote " in out
    code, _, err = run("check-config", "--config", str(config))
    assert code == 0, err
    # A days-since or days-until feature moves with the calendar: never a drift check.
    features = yaml.safe_load((config / "features.yaml").read_text())["features"]
    product = yaml.safe_load((config / "product.yaml").read_text())
    dated = {n for n, f in features.items() if f.get("transform") in ("days_since", "days_until")}
    assert not dated & set(product["health"]["drift_features"])
    columns = yaml.safe_load((config / "schema.yaml").read_text())["columns"]
    assert [name for name, spec in columns.items() if spec.get("role") == "label"] == [shape.label]
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err
    return shape, export, config, var


def test_an_export_goes_from_file_to_a_card_with_its_own_reasons(
    trained: tuple[Shape, Path, Path, Path], real_redis: redis.Redis, emulator
) -> None:
    shape, export, config, var = trained
    card = json.loads(next((var / "registry").glob("*/card.json")).read_text())
    assert card["params"]["evaluation"] == shape.evaluation
    assert card["metrics"]["model"]["roc_auc"] > 0.7
    if shape.evaluation == "cross_validation":
        assert "no forward-in-time check was possible" in card["metrics"]["caveat"]
        several_dates = shape.name == "short-history"
        assert (card["metrics"]["because"] or "").startswith("the as-of dates span") is (
            several_dates
        )

    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(config),
            "CHURNBOT_VAR": str(var),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix)
    try:
        result = score_book(settings, deps.store, deps.switch, flags=flag_log(deps), data=export)
        assert result.healthy, result.failures
        riskiest = deps.store.top(1)[0]
        with LoopbackServer(build_wsgi(build_app(deps), deps)) as server:
            sender = SlackSender(server.url, SECRET)
            response = sender.command("/churn", riskiest["account_id"].lower(), user_id=CSM)
            sender.close()
        assert response.status_code == 200, response.text
        answer = response.json()
        assert block_kit_problems(answer["blocks"]) == []
        text = json.dumps(answer["blocks"], ensure_ascii=False)
        assert riskiest["account_id"] in text
        reasons = [reason["text"] for reason in riskiest["reasons"]]
        assert reasons, "the riskiest account has reasons"
        named = [r for r in reasons if any(_plain(c) in _plain(r) for c in shape.own_columns)]
        assert named, f"reasons {reasons} name none of the export's own columns"
        assert all(r in text for r in reasons)
        assert "not recorded" not in " ".join(reasons) or shape.name == "subscriber-snapshot"
    finally:
        deps.background.shutdown(wait=True)
        keys = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)
