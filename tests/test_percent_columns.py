"""Percentages as an export writes them ("78%", "57 %", "57,5 %") read as fractions and shown
as percentages again: ``init`` writes ``scale: 0.01`` and ``unit: percent`` by itself, and a
card's reason reads "Seat utilization: 41% (accounts that stayed: median 63%)", not "41".

The export is a regional CSV in another company's shape: semicolons, a decimal comma, German
column names but one, day-first dates, a Y/N label, and the percent sign after a space, a
no-break space or a narrow no-break space as European locales write it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
import yaml

from bot.cli.score import score_book
from bot.deps import build_deps
from bot.feedback.track_record import flag_log
from bot.settings import load_settings
from models.config_files import load_yaml_model
from models.errors import ConfigError
from models.features import FeaturesConfig
from models.loaders import load_table
from models.sources_config import SourcesConfig
from models.wording import Generated, wording_from_spec
from tests.cli_run import run

SPACES = (" ", "\u00a0", "\u202f")
REASON = re.compile(
    r"^Seat utilization: (\d+(?:\.\d)?)% \(accounts that stayed: median \d+(?:\.\d)?%\)$"
)


def regional_export(accounts: int = 500, weeks: int = 40, seed: int = 3) -> pd.DataFrame:
    """Every other week per account; churn follows seat utilization, written like "57,5 %"."""
    rng = np.random.default_rng(seed)
    rows = []
    first = dt.date(2025, 1, 6)
    for account in range(accounts):
        adoption = rng.normal(0, 1)
        for week in range(0, weeks, 2):
            day = first + dt.timedelta(weeks=week)
            used = float(np.clip(0.6 + 0.1 * adoption + rng.normal(0, 0.2), 0.02, 1.0))
            churned = rng.random() < 1 / (1 + np.exp(3.5 + 6 * (used - 0.6)))
            percent = f"{used * 100:.1f}".replace(".", ",").removesuffix(",0")
            rows.append(
                {
                    "Kunden-Nr": f"K{account:05d}",
                    "Stichtag": f"{day:%d.%m.%Y}",
                    "Betreuer": f"csm{account % 5}@example.de",
                    "Seat utilization": f"{percent}{SPACES[(account + week) % 3]}%",
                    "Umsatz": f"{rng.gamma(2, 500):.2f}".replace(".", ","),
                    "Churn": "Y" if churned else "N",
                }
            )
            if churned:
                break
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_a_regional_percent_column_reads_as_a_fraction_and_a_card_shows_percentages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_redis: redis.Redis
) -> None:
    export, config, var = tmp_path / "export.csv", tmp_path / "config", tmp_path / "var"
    table = regional_export()
    table.to_csv(export, sep=";", index=False)
    monkeypatch.setenv("CHURNBOT_VAR", str(var))

    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    assert sources["mapping"]["Seat utilization"] == {
        "to": "seat_utilization",
        "format": "1.234,5",
        "scale": 0.01,
    }
    features = yaml.safe_load((config / "features.yaml").read_text())
    assert features["features"]["seat_utilization"]["unit"] == "percent"
    assert {"column": "seat_utilization", "format": "{value:.1%}"} in features["card"]["context"]
    assert "Seat utilization: percentages, read as fractions" in err

    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err
    settings = load_settings({"CHURNBOT_CONFIG": str(config), "CHURNBOT_VAR": str(var)})
    frame = load_table(export, settings.schema, settings.sources).frame
    assert len(frame) == len(table), "every cell, whatever space stands before its sign"
    written = table["Seat utilization"].str.replace(",", ".").str.extract(r"^([\d.]+)")[0]
    assert frame["seat_utilization"].to_numpy() == pytest.approx(
        written.astype(float).to_numpy() / 100
    )

    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix)
    try:
        result = score_book(settings, deps.store, deps.switch, flags=flag_log(deps), data=export)
        assert result.healthy, result.failures
        riskiest = deps.store.top(5)
        reasons = [reason["text"] for card in riskiest for reason in card["reasons"]]
        shown = [match for text in reasons if (match := REASON.match(text))]
        assert shown, f"no seat utilization reason worded as a percentage in {reasons}"
        newest = table.groupby("Kunden-Nr").tail(1).set_index("Kunden-Nr")["Seat utilization"]
        for card in riskiest:
            for reason in card["reasons"]:
                if match := REASON.match(reason["text"]):
                    cell = newest[card["account_id"]]  # "41 %", "57,5 %": as the export wrote it
                    assert match.group(1) == re.sub(r"\D+%$", "", cell).replace(",", ".")
    finally:
        deps.background.shutdown(wait=True)
        keys = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)


def test_a_generated_reason_shows_a_fraction_as_a_percentage() -> None:
    wording = Generated(
        label="Seat utilization",
        transform="as_is",
        field="seat_utilization",
        reference={"median": 0.63},
        healthy=False,
        unit="percent",
    )
    text = "Seat utilization: 41% (accounts that stayed: median 63%)"
    assert wording.render({"seat_utilization": 0.41}) == text
    assert wording_from_spec(wording.to_spec()).render({"seat_utilization": 0.41}) == text
    assert wording.render({"seat_utilization": 0.575}).startswith("Seat utilization: 57.5% ")
    plain = Generated(label="Seats", transform="as_is", field="seats", reference={}, healthy=False)
    assert "unit" not in plain.to_spec()["generated"], "a spec without a unit reads as before"
    assert plain.render({"seats": 41.0}) == "Seats: 41"


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (
            "{column: seats, unit: percnt}",
            "features.seats.unit: unknown unit 'percnt'; did you mean percent? use percent",
        ),
        (
            "{column: renewal, transform: days_until, unit: percent}",
            "unit does not apply to transform days_until",
        ),
        (
            "{columns: [seats, seats_before], transform: change, unit: percent}",
            "a change already reads as a percentage",
        ),
    ],
)
def test_a_wrong_unit_is_a_config_error_naming_the_feature(
    tmp_path: Path, feature: str, message: str
) -> None:
    path = tmp_path / "features.yaml"
    path.write_text(f"features:\n  seats: {feature}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_yaml_model(path, FeaturesConfig)


def test_a_misspelt_time_zone_names_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("timezone: Europe/Berln\n")
    with pytest.raises(
        ConfigError, match=re.escape("unknown IANA time zone 'Europe/Berln'; did you mean")
    ):
        load_yaml_model(path, SourcesConfig)
