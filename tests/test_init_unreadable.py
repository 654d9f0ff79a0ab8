"""``churnbot init`` on an export with lines the reader cannot split into the header's cells.

``read_raw`` keeps such lines in its frame, padded or cut to the header, for the rejects file.
Profiled as data, a short line's missing cells read as empty and mark required columns
``required: false``; so ``init`` leaves them out, counts only the rows it profiled, and names
the lines and why on stderr. Driven through the CLI in-process (tests/cli_run.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bot.cli.init import freshness_check
from models.profile import propose
from tests.cli_run import run

ROWS = 400
#: The header's field count; a short line below has fewer.
WIDTH = 8


def snapshot() -> pd.DataFrame:
    """A telco-like subscriber snapshot with a Yes/No label, every cell filled."""
    rng = np.random.default_rng(7)
    tenure = rng.integers(0, 72, ROWS)
    monthly = np.round(rng.uniform(18, 120, ROWS), 2)
    frame = pd.DataFrame(
        {
            "subscriber": [f"S-{i:05d}" for i in range(ROWS)],
            "Plan": rng.choice(["Month-to-month", "One year", "Two year"], ROWS),
            "tenure_months": tenure.astype(str),
            "Fiber": rng.choice(["Yes", "No"], ROWS),
            "TechSupport": rng.choice(["Yes", "No"], ROWS),
            "MonthlyCharges": monthly.astype(str),
            "TotalCharges": np.round(monthly * np.maximum(tenure, 1), 2).astype(str),
            "Churned": rng.choice(["Yes", "No"], ROWS, p=[0.3, 0.7]),
        }
    )
    assert len(frame.columns) == WIDTH
    return frame


def _init(export: Path, config: Path) -> tuple[str, str, dict[str, dict[str, object]]]:
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    schema = yaml.safe_load((config / "schema.yaml").read_text(encoding="utf-8"))["columns"]
    return out, " ".join(err.split()), schema  # rich wraps stderr at 80 columns


def test_init_leaves_unreadable_lines_out_of_the_profile_and_names_them(tmp_path: Path) -> None:
    clean = tmp_path / "clean.csv"
    snapshot().to_csv(clean, index=False)
    lines = clean.read_bytes().split(b"\n")
    # Line 41 stops after four fields; line 121 has a byte that is not UTF-8 in a number.
    # Both are copies of rows the file still holds, so its readable rows are the clean file's.
    short = b",".join(lines[40].split(b",")[:4])
    cells = lines[119].split(b",")
    cells[5] = b"\xff" + cells[5]
    bad_byte = b",".join(cells)
    dirty = tmp_path / "dirty.csv"
    # And two blank lines, which loading skips: profiled, they made every column optional.
    body = [
        *lines[:40],
        short,
        *lines[40:119],
        bad_byte,
        *lines[119:200],
        b"",
        b"," * (WIDTH - 1),
        *lines[200:],
    ]
    dirty.write_bytes(b"\n".join(body))

    _, clean_err, clean_schema = _init(clean, tmp_path / "clean-config")
    assert f"Profiled {ROWS:,} rows" in clean_err
    assert "Left out" not in clean_err
    out, err, schema = _init(dirty, tmp_path / "dirty-config")

    # The short line's missing cells: TechSupport, MonthlyCharges, TotalCharges (and the label).
    for column in ("tech_support", "monthly_charges", "total_charges"):
        assert clean_schema[column]["required"] is True
        assert schema[column] == clean_schema[column], column
    assert schema == clean_schema
    assert f"Profiled {ROWS:,} rows and {WIDTH} columns" in err, err
    assert "Left out 2 lines" in err, err
    assert f"line 41: 4 fields, the header has {WIDTH}" in err, err
    assert "line 121: not UTF-8 (byte 0xff" in err, err
    assert "`train` and `score` reject them too" in err, err
    assert "Left out" not in out, "notes go to stderr"
    assert "Wrote " in out, "results go to stdout"


def test_init_stops_when_no_line_can_be_read(tmp_path: Path) -> None:
    export = tmp_path / "broken.csv"
    export.write_text("id,plan,churned\na1,basic\na2\n", encoding="utf-8")
    code, out, err = run("init", "--data", str(export), "--config", str(tmp_path / "config"))
    assert code == 2, out + err
    assert f"error: {export}: no rows to profile (2 lines unreadable)" in " ".join(err.split())
    assert not (tmp_path / "config").exists()


def test_a_windows_code_page_export_is_read_as_such_and_the_config_says_so(
    tmp_path: Path, monkeypatch
) -> None:
    """Excel on Windows saves "CSV (Comma delimited)" in cp1252: read as UTF-8, every line
    with an accent would be rejected. init recognises it, writes ``encoding: cp1252``, and
    train then reads every line, accents intact."""
    frame = snapshot()
    frame["Plan"] = frame["Plan"].str.replace("Month-to-month", "Mensuel échu")
    frame["TotalCharges"] = frame["TotalCharges"] + " €"  # a sign, not a letter
    export = tmp_path / "windows.csv"
    frame.to_csv(export, index=False, encoding="cp1252")
    config = tmp_path / "config"
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))

    code, out, err = run("init", "--data", str(export), "--config", str(config))

    assert code == 0, out + err
    assert "encoding: cp1252, not UTF-8" in " ".join(err.split())
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    assert sources["encoding"] == "cp1252"
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export), "--no-promote")
    assert code == 0, out + err
    assert f"Loaded {ROWS} good rows of {ROWS}" in err


def test_init_takes_the_label_the_user_names(tmp_path: Path) -> None:
    frame = snapshot().rename(columns={"Churned": "Outcome"})
    export = tmp_path / "renamed.csv"
    frame.to_csv(export, index=False)

    code, _, err = run("init", "--data", str(export), "--config", str(tmp_path / "a"))
    assert code != 0
    assert "no churn label found" in err

    code, out, err = run(
        "init", "--data", str(export), "--config", str(tmp_path / "b"), "--label", "Outcome"
    )
    assert code == 0, out + err
    schema = yaml.safe_load((tmp_path / "b" / "schema.yaml").read_text())["columns"]
    assert schema["outcome"]["role"] == "label"


def test_an_old_export_is_told_to_lower_the_freshness_limit_written_for_it() -> None:
    proposal = propose(snapshot(), dt.date(2026, 1, 31))
    proposal.newest = dt.date(2026, 1, 1)
    [check] = freshness_check(proposal, dt.date(2026, 1, 31), Path("cfg"))
    assert check.startswith("lower health.max_data_age_days in cfg/product.yaml (38, so that")
    proposal.newest = dt.date(2026, 1, 27)
    assert freshness_check(proposal, dt.date(2026, 1, 31), Path("cfg")) == []
