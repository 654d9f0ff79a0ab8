"""``churnbot init --data FILE``: profile an export and write a starter config folder.

The guesses come from :mod:`models.profile`; this module writes them as the config files
``check-config``, ``train`` and ``score`` read, and says on stderr what it guessed, why, and
what the user must check. The files that are not about the data (the product spec, Slack,
feedback) start as copies of the bundled ones, with the health limits set for the export.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import yaml

from bot.cli.common import console, out, status
from bot.settings import check_config_folder, load_env
from models.errors import ConfigError, DataContractError
from models.loaders import RawTable, export_day, read_raw, single_byte_encoding
from models.profile import Chosen, Proposal, propose

BUNDLED = Path(__file__).resolve().parents[2] / "config"
COPIED = ("slack.yaml", "feedback.yaml")
#: A digest's channel until the user sets theirs (a valid id, so the folder checks clean).
PLACEHOLDER_CHANNEL = "C0CHANGEME"
#: Lines left out of the profile that are listed by number and reason; the rest are counted.
UNREADABLE_SHOWN = 5
#: Health: how old the newest rows may be on top of the export's own age.
FRESHNESS_DAYS = 8
DRIFT_FEATURES = 4
CONTEXT_COLUMNS = 3


@click.command("init")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The export to profile (.csv, .tsv, .xlsx or .parquet).",
)
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write [default: CHURNBOT_CONFIG, else config/].",
)
@click.option("--force", is_flag=True, help="Overwrite config files that already exist.")
@click.option("--id", "account", metavar="COLUMN", help="The column naming each account.")
@click.option("--date", metavar="COLUMN", help="The column with the day each row describes.")
@click.option(
    "--label", metavar="COLUMN", help="The column that says whether (or when) it churned."
)
def command(
    data: Path,
    config_dir: Path | None,
    force: bool,
    account: str | None,
    date: str | None,
    label: str | None,
) -> None:
    """Profile an export and write a starter config folder for it.

    Guesses the id, date, label, name, owner and segment columns and one feature per other
    column, prints what it guessed and why, and what to check; --id, --date and --label name
    a role's column instead of guessing it. `churnbot train --data FILE` and `churnbot score
    --data FILE` then work with no edits on a clean export.
    """
    folder = config_dir or load_env(os.environ).config_dir
    with status("Profiling the export") as step:  # a large export takes a while to read
        step(f"reading {data}")
        encoding = single_byte_encoding(data)
        table = read_raw(data, encoding or "utf-8")
    for note in table.notes:
        console.print(f"warning: {note}", markup=False, highlight=False)
    raw = readable_rows(table)
    if raw.empty:
        left_out = f" ({_lines(table)} unreadable)" if table.unreadable else ""
        raise DataContractError(f"{data}: no rows to profile{left_out}")
    existing = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if existing and not force:
        raise ConfigError(
            f"{folder}: already holds {', '.join(existing)}; write elsewhere with --config "
            "FOLDER, or pass --force to overwrite"
        )
    today = dt.datetime.now(dt.UTC).date()
    try:
        with status("Profiling the export") as step:
            step(f"profiling {len(raw):,} rows and {len(raw.columns)} columns")
            proposal = propose(
                raw, export_day(data), Chosen(account=account, date=date, label=label)
            )
    except ValueError as exc:
        raise DataContractError(f"{data}: {exc}") from None
    if encoding:
        proposal.notes.insert(
            0,
            f"encoding: {encoding}, not UTF-8 (as Excel on Windows saves CSV); written to "
            "sources.yaml, so train and score read it so too",
        )
    files = starter_files(proposal, today, encoding=encoding)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    if table.unreadable:
        _report_unreadable(table)
    console.print(f"Profiled {len(raw):,} rows and {len(raw.columns)} columns of {data}:")
    for column in proposal.columns:
        console.print(f"  {column.source}: {column.describe()}", markup=False, highlight=False)
    console.print("What I guessed, and why:")
    for note in proposal.notes:
        console.print(f"  • {note}", markup=False, highlight=False)
    problems, warnings = check_config_folder(folder)
    for problem in problems:
        console.print(f"  ! {problem}", markup=False, highlight=False)
    console.print("Check before you rely on it:")
    for check in [
        *proposal.checks,
        *freshness_check(proposal, today, folder),
        f"set the digest channel in {folder / 'channels.yaml'}",
    ]:
        console.print(f"  - {check}", markup=False, highlight=False)
    out.print(f"Wrote {', '.join(sorted(files))} to {folder}", markup=False, highlight=False)
    out.print(
        f"Next: export CHURNBOT_CONFIG={folder}, then churnbot train --data {data} and "
        f"churnbot score --data {data}",
        markup=False,
        highlight=False,
    )
    if problems:
        raise ConfigError(
            f"{folder}: the starter config has problems to fix first (listed above); "
            f"{len(warnings)} warning(s)"
        )


def freshness_check(proposal: Proposal, today: dt.date, folder: Path) -> list[str]:
    """For an export whose newest date is weeks old: the freshness limit init wrote lets this
    export pass, and is to be lowered to the cadence of the exports to come."""
    age = _data_age(proposal, today)
    if age <= FRESHNESS_DAYS:
        return []
    return [
        f"lower health.max_data_age_days in {folder / 'product.yaml'} ({age + FRESHNESS_DAYS}, "
        f"so that this export, {age} days old, passes the freshness check) to how often a "
        "new export will arrive and a day (8 for weekly, 32 for monthly), or stale data will "
        "be served as fresh"
    ]


def _data_age(proposal: Proposal, today: dt.date) -> int:
    """Days from the export's newest date to today (0 when it has none or is dated ahead)."""
    return max((today - proposal.newest).days, 0) if proposal.newest else 0


def readable_rows(table: RawTable) -> pd.DataFrame:
    """The rows of ``table`` the reader could split into the header's cells.

    An unreadable row's cells in ``table.frame`` are padded or cut to the header for the
    rejects file; profiled, a short line's missing cells would read as empty and mark a
    column ``required: false`` that is required on the clean file, and ``train``/``score``
    reject those rows anyway, so the profile leaves them out. Blank rows (every cell empty:
    a blank line) are left out too, as loading skips them: profiled, they would make every
    column look optional and the id column look incomplete.
    """
    frame = table.frame
    keep = frame.replace("", np.nan).notna().any(axis=1).to_numpy(copy=True)
    if table.unreadable:
        bad = np.fromiter((reject.record for reject in table.unreadable), dtype=np.int64)
        keep &= ~np.isin(table.records, bad)
    return frame if keep.all() else frame.loc[keep].reset_index(drop=True)


def _lines(table: RawTable) -> str:
    count = len({reject.record for reject in table.unreadable})
    return f"{count:,} {table.record_label}{'s' if count != 1 else ''}"


def _report_unreadable(table: RawTable) -> None:
    """Say on stderr which lines the profile left out and why, the first few by number, so
    a user fixes the export rather than wonders why ``train`` rejects rows ``init`` read."""
    reasons: dict[int, list[str]] = {}
    for reject in table.unreadable:
        reasons.setdefault(reject.record, []).append(reject.reason)
    console.print(
        f"Left out {_lines(table)} that cannot be split into the header's cells; `train` and "
        "`score` reject them too and quarantine them in the rejects file:",
        markup=False,
        highlight=False,
    )
    for record, why in list(reasons.items())[:UNREADABLE_SHOWN]:
        console.print(
            f"  {table.record_label} {record}: {'; '.join(why)}", markup=False, highlight=False
        )
    if len(reasons) > UNREADABLE_SHOWN:
        console.print(
            f"  ... and {len(reasons) - UNREADABLE_SHOWN:,} more", markup=False, highlight=False
        )


def starter_files(
    proposal: Proposal, today: dt.date, *, encoding: str | None = None
) -> dict[str, str]:
    """Every config file of the starter folder, as YAML text; ``encoding``: the export's,
    when it is not UTF-8."""
    numeric = [
        name
        for name, feature in proposal.features.items()
        if feature.get("transform", "as_is") not in ("category", "missing", "yes_no")
    ]
    roles = proposal.roles
    by_name = {column.name: column for column in proposal.columns}
    # A column written as percentages is shown as one (its context entry carries the format).
    context = ([roles["segment"]] if roles["segment"] else []) + [
        by_name[column].context if column in by_name else column
        for column in (str(proposal.features[name]["column"]) for name in numeric[:CONTEXT_COLUMNS])
        if column != roles["segment"]
    ]
    files = {
        "schema.yaml": _yaml(
            "The account-data contract, written by `churnbot init` from the export.",
            {"columns": proposal.schema},
        ),
        "sources.yaml": _yaml(
            "How the export's columns map onto schema.yaml (their column: our column).",
            {
                "mapping": proposal.mapping,
                **({"constants": proposal.constants} if proposal.constants else {}),
                **({"encoding": encoding} if encoding else {}),
                **({"timezone": proposal.timezone} if proposal.timezone else {}),
                "max_reject_share": 0.05,
            },
        ),
        "features.yaml": _yaml(
            "The model's features (see the bundled config/features.yaml for the transforms).",
            {"features": proposal.features, "card": {"context": context}},
        ),
        "reasons.yaml": _yaml(
            "Reason templates; features without one get a generated sentence.",
            {
                "min_impact": 0.05,
                "healthy_min_impact": 0.4,
                "max_p_value": 0.05,
                "top_reasons": 3,
                "features": {},
            },
        ),
        "playbooks.yaml": _yaml(
            "Rules from reasons to actions; the reason codes are the feature names.",
            {
                "rules": [],
                "default": {
                    "name": "review",
                    # Worded for a card with reasons and for one without (none passed the
                    # evidence test): a starter playbook has no rule that knows which.
                    "action": "Review the account and check in with the main contact",
                    "why": "Where reasons are shown, they are what moved the score; a short "
                    "call confirms them or surfaces what changed",
                    "owner": "CSM",
                },
            },
        ),
        "product.yaml": _yaml(
            "The data product spec: bundled defaults, health limits set for this export.",
            _product(proposal, numeric, today),
        ),
        "channels.yaml": _yaml(
            "One digest of every account; set the channel id and the schedule.",
            {
                "grace_minutes": 120,
                "digests": [
                    {
                        "name": "all-accounts",
                        "channel": PLACEHOLDER_CHANNEL,
                        **(
                            {"segments": proposal.segment_levels}
                            if proposal.segment_levels
                            else {"owners": proposal.owners or ["unassigned"]}
                        ),
                        "schedule": "0 9 * * mon",
                        "timezone": "UTC",
                        "max_accounts": 10,
                        "min_risk": 0.1,
                    }
                ],
            },
        ),
    }
    for name in COPIED:
        files[name] = (BUNDLED / name).read_text(encoding="utf-8")
    return files


def _product(proposal: Proposal, numeric: list[str], today: dt.date) -> dict[str, Any]:
    product = yaml.safe_load((BUNDLED / "product.yaml").read_text(encoding="utf-8"))
    product["health"]["max_data_age_days"] = _data_age(proposal, today) + FRESHNESS_DAYS
    # Not a days-since or days-until feature: it moves with the calendar by construction (a
    # book's accounts age every week), so its drift says nothing about the data.
    product["health"]["drift_features"] = [
        name
        for name in numeric
        if not name.endswith("_missing")
        and proposal.features[name].get("transform") not in ("days_since", "days_until")
    ][:DRIFT_FEATURES]
    product["inference_contract"]["input"] = "schema.yaml"
    if proposal.horizon_days is not None:
        product["horizon_days"] = proposal.horizon_days
    return dict(product)


def _yaml(comment: str, data: dict[str, Any]) -> str:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return f"# {comment}\n{body}"
