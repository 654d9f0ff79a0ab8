"""``churnbot init``'s guesses on exports built here: which column is the label, and which
way round a yes/no label reads."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from models.profile import Chosen, propose

TODAY = dt.date(2026, 11, 30)


def export(**label: list[str]) -> pd.DataFrame:
    n = len(next(iter(label.values())))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "champion_left_90d": ["yes", "no"] * (n // 2),
            "seats": [str(10 + i) for i in range(n)],
            **label,
        }
    )


def test_a_churn_word_beats_a_column_that_merely_says_left() -> None:
    proposal = propose(export(churned=["no", "yes"] * 20), TODAY)
    assert proposal.roles["label"] == "churned"
    assert proposal.schema["champion_left_90d"]["type"] == "bool", "a feature, not the label"
    assert proposal.features["champion_left_90d"]["transform"] == "yes_no"


def test_a_label_that_says_the_account_stayed_is_read_the_other_way_round() -> None:
    proposal = propose(export(retained=["Yes", "No"] * 20), TODAY)
    assert proposal.roles["label"] == "retained"
    assert proposal.mapping["retained"] == {"to": "retained", "values": {"No": True, "Yes": False}}
    labels = [note for note in proposal.notes if note.startswith("label:")]
    assert len(labels) == 1
    assert "read the other way round" in labels[0]


def test_a_label_in_words_becomes_a_value_map() -> None:
    proposal = propose(export(status_churn=["Active", "Churned"] * 20), TODAY)
    mapping = proposal.mapping["status_churn"]
    assert mapping["values"] == {"Active": False, "Churned": True}
    assert proposal.schema["status_churn"]["type"] == "bool"


def crm_export(dates: list[str]) -> pd.DataFrame:
    """A CRM report as a spreadsheet saves it: dates as written, money with a currency sign
    and thousands separators, a share with a percent sign, a Y/N label."""
    n = len(dates)
    return pd.DataFrame(
        {
            "Account ID": [f"A-{i % 10}" for i in range(n)],
            "Report Date": dates,
            "MRR": [f"${1000 + 250 * i:,}.00" for i in range(n)],
            "Seats Used": [f"{10 + i}%" for i in range(n)],
            "Churned?": ["N", "Y"] * (n // 2),
        }
    )


def test_dates_money_and_percentages_as_written_get_a_format_in_the_mapping() -> None:
    days = [dt.date(2025, 1, 6) + dt.timedelta(weeks=i // 10) for i in range(40)]
    proposal = propose(crm_export([f"{day:%m/%d/%Y}" for day in days]), TODAY)

    assert proposal.roles["date"] == "report_date"
    assert proposal.mapping["Report Date"] == {"to": "report_date", "format": "%m/%d/%Y"}
    assert proposal.mapping["MRR"] == {"to": "mrr", "format": "1,234.5"}
    # A percentage is a fraction (as a spreadsheet's percentage cell), shown as a percentage.
    assert proposal.mapping["Seats Used"] == {
        "to": "seats_used",
        "format": "1,234.5",
        "scale": 0.01,
    }
    assert proposal.features["seats_used"]["unit"] == "percent"
    assert (proposal.schema["mrr"]["type"], proposal.schema["seats_used"]["type"]) == (
        "int",
        "float",
    )
    assert proposal.newest == dt.date(2025, 1, 27)
    assert proposal.horizon_days == 7
    # A Y/N label is a yes/no column, not text read through a map.
    assert proposal.roles["label"] == "churned"
    assert proposal.schema["churned"]["type"] == "bool"
    assert proposal.mapping["Churned?"] == "churned"
    assert "Report Date: written like 01/31/2024 (format '%m/%d/%Y')" in proposal.notes
    assert not any("is a guess" in check for check in proposal.checks), "day 27 is above 12"


def test_dates_no_day_of_which_is_above_12_are_a_guess_the_user_must_check() -> None:
    days = [dt.date(2025, 1 + i // 10, 1) for i in range(40)]  # the first of four months
    proposal = propose(crm_export([f"{day:%d.%m.%Y}" for day in days]), TODAY)
    assert proposal.mapping["Report Date"] == {"to": "report_date", "format": "%d.%m.%Y"}
    assert not any("is a guess" in check for check in proposal.checks), "only one pattern reads"

    slashes = propose(crm_export([f"{day:%d/%m/%Y}" for day in days]), TODAY)
    assert slashes.mapping["Report Date"] == {"to": "report_date", "format": "%m/%d/%Y"}
    assert (
        "check mapping.Report Date.format in sources.yaml: no day in the export is above 12, "
        "so which part of '%m/%d/%Y' is the day is a guess"
    ) in slashes.checks


def test_a_column_the_export_lacks_never_takes_the_name_of_one_it_has() -> None:
    """No as-of date (the export's "Snapshot Date" is text): the constant that dates every
    row gets a name of its own, not the one the export's column already has."""
    frame = crm_export(["last week"] * 40)
    frame = frame.rename(columns={"Report Date": "Snapshot Date"})
    frame["Account ID"] = [f"A-{i}" for i in range(len(frame))]  # one row per account
    proposal = propose(frame, TODAY)
    assert proposal.roles["date"] == ""
    assert proposal.constants["snapshot_date_2"] == "export_date"
    assert proposal.schema["snapshot_date_2"]["role"] == "date"
    assert proposal.schema.get("snapshot_date", {}).get("role") != "date"


def test_a_status_column_whose_values_say_churned_is_the_label_when_no_name_says_so() -> None:
    n = 60
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "tier": ["Gold", "Silver", "Bronze"] * (n // 3),
            "seats": [str(10 + i) for i in range(n)],
            "Status": ["Active", "Churned", "Onboarding", "Active"] * (n // 4),
        }
    )
    proposal = propose(frame, TODAY)

    assert proposal.roles["label"] == "status"
    assert proposal.mapping["Status"] == {
        "to": "status",
        "values": {"Active": False, "Churned": True, "Onboarding": False},
    }
    assert proposal.schema["status"]["type"] == "bool"
    # One line on the label, how it was found and what it means (there were two).
    assert [note for note in proposal.notes if note.startswith("label:")] == [
        "label: Status, no column is named like a churn label, but its values Churned say an "
        "account has gone; yes/no: churned within horizon_days after the row's date (for one "
        "snapshot: churned)"
    ]
    assert any(check.startswith("check mapping.Status.values") for check in proposal.checks)


def test_without_a_label_by_name_or_by_values_init_says_what_it_needs() -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b"], "tier": ["Gold", "Silver"], "n": ["1", "2"]})
    with pytest.raises(ValueError, match=r"no churn label found: .* values such as Churned"):
        propose(frame, TODAY)


def test_a_few_odd_cells_do_not_turn_a_number_or_date_column_into_text() -> None:
    """Among 400 amounts, "approx. 40" twice; among renewal dates, "TBD": the columns stay a
    number and a date, and the check names the cells train will reject."""
    n = 400
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "mrr": [str(100 + i) for i in range(n)],
            "renewal": [f"2025-{1 + i % 12:02d}-15" for i in range(n)],
            "churned": ["no", "yes"] * (n // 2),
        }
    )
    frame.loc[[5, 9], "mrr"] = "approx. 40"
    frame.loc[7, "renewal"] = "TBD"
    proposal = propose(frame, TODAY)

    assert proposal.schema["mrr"]["type"] == "int"
    assert proposal.schema["renewal"]["type"] == "date"
    assert "mrr: 'approx. 40' are not numbers; train rejects their rows" in " ".join(
        proposal.checks
    )
    assert "renewal: 'TBD' are not dates" in " ".join(proposal.checks)


def test_a_column_with_many_odd_cells_is_still_text() -> None:
    n = 400
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "code": [str(i) if i % 10 else "X" for i in range(n)],
            "seats": [str(10 + i % 7) for i in range(n)],
            "churned": ["no", "yes"] * (n // 2),
        }
    )
    proposal = propose(frame, TODAY)
    assert proposal.schema.get("code", {}).get("type") != "int"


def test_the_as_of_date_is_the_day_each_row_describes_not_another_day_of_the_account() -> None:
    """A CRM export holds several dates per row; the as-of date is the one under which an
    account's rows have days of their own, not its created or renewal date (which repeat)."""
    weeks = [dt.date(2025, 1, 6) + dt.timedelta(weeks=w) for w in range(8)]
    rows = [
        {
            "Record ID": f"r{a}",
            "Create Date": f"{dt.date(2023, 1 + a % 12, 1 + a % 28)}",
            "Renewal Date": f"{dt.date(2026, 1 + a % 12, 1)}",
            "Snapshot": f"{week}",
            "Seats": str(10 + a),
            "Churned": "no",
        }
        for a in range(30)
        for week in weeks
    ]
    proposal = propose(pd.DataFrame(rows), TODAY)
    assert proposal.roles["date"] == "snapshot"
    assert proposal.horizon_days == 7


def test_a_snapshot_with_a_created_date_is_still_one_snapshot() -> None:
    """One row per account: its "Created" date is the account's, not the day the export
    describes, so the export is dated by a constant (and said so)."""
    frame = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(40)],
            "Created": [f"{dt.date(2024, 1 + i % 12, 1)}" for i in range(40)],
            "seats": [str(i) for i in range(40)],
            "canceled": ["true", "false"] * 20,
        }
    )
    proposal = propose(frame, TODAY)
    assert proposal.roles["date"] == ""
    assert proposal.constants["snapshot_date"] == "export_date"
    assert proposal.newest == TODAY
    assert proposal.features["created"]["transform"] == "days_since"


def test_several_rows_per_account_without_a_day_of_their_own_is_refused_with_what_to_add() -> None:
    frame = crm_export(["last week"] * 40)  # ten accounts, four rows each, no date at all
    with pytest.raises(ValueError, match=r"several rows per account \(Account ID repeats\)"):
        propose(frame, TODAY)


@pytest.mark.parametrize(
    ("column", "values", "churned"),
    [
        ("Lifecycle Stage", ["Customer", "Former Customer"], {"Former Customer"}),
        ("Gekündigt", ["Ja", "Nein"], None),
        ("churn_state", ["Kunde", "Ehemalig"], set()),
    ],
)
def test_labels_in_other_words_and_languages(
    column: str, values: list[str], churned: set[str] | None
) -> None:
    n = 40
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "seats": [str(i) for i in range(n)],
            column: values * (n // len(values)),
        }
    )
    proposal = propose(frame, TODAY)
    name = proposal.roles["label"]
    assert proposal.schema[name]["type"] == "bool"
    entry = proposal.mapping[column]
    if churned is None:  # yes/no as the export's language writes it: read as it is
        assert entry == name
        return
    assert {value for value, gone in entry["values"].items() if gone} == churned
    warned = any(check.startswith(f"none of {column}'s values") for check in proposal.checks)
    assert warned is (not churned)


def test_a_role_the_user_names_is_not_guessed() -> None:
    """Columns no rule would pick: the user names the label, the date and the id."""
    weeks = [dt.date(2025, 1, 6) + dt.timedelta(weeks=w) for w in range(6)]
    frame = pd.DataFrame(
        [
            {"Kunde": f"k{a}", "Woche": f"{week}", "Nutzer": str(a + w), "Status": s}
            for a in range(20)
            for w, week in enumerate(weeks)
            for s in [("weg" if a % 4 == 0 and w == len(weeks) - 1 else "da")]
        ]
    )
    proposal = propose(frame, TODAY, Chosen(account="kunde", date="Woche", label="Status"))
    assert (proposal.roles["id"], proposal.roles["date"], proposal.roles["label"]) == (
        "kunde",
        "woche",
        "status",
    )
    assert proposal.mapping["Status"]["to"] == "status"

    with pytest.raises(ValueError, match=r"--date 'Tag': no such column \(the export has 'Kunde'"):
        propose(frame, TODAY, Chosen(date="Tag"))
    with pytest.raises(ValueError, match=r"--date 'Nutzer': the column holds int values, not date"):
        propose(frame, TODAY, Chosen(date="Nutzer"))


def test_feature_labels_keep_the_exports_acronyms() -> None:
    n = 40
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "NPS": [str(i % 11) for i in range(n)],
            "ARR (USD)": [str(1000 * (i + 1)) for i in range(n)],
            "MonthlyCharges": [str(20 + i) for i in range(n)],
            "churned": ["no", "yes"] * (n // 2),
        }
    )
    features = propose(frame, TODAY).features
    assert features["nps"]["label"] == "NPS"
    assert features["arr_usd"]["label"] == "ARR USD"
    assert features["monthly_charges"]["label"] == "Monthly charges"


def test_unix_time_named_like_a_time_is_a_date_read_as_its_utc_day() -> None:
    n = 40
    created = [1_700_000_000 + 86_400 * i for i in range(n)]
    frame = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(n)],
            "created": [str(t) for t in created],
            "last_seen_ms": [str(1000 * t + 5) for t in created],
            "seats": [str(1_700_000_000 + i) for i in range(n)],  # a number, not named a time
            "canceled": ["true", "false"] * (n // 2),
        }
    )
    proposal = propose(frame, TODAY)
    assert proposal.mapping["created"] == {"to": "created", "format": "epoch"}
    assert proposal.features["created"]["transform"] == "days_since"
    assert proposal.schema["seats"]["type"] == "int"
    assert "created: written like 1706659200 (format 'epoch')" in proposal.notes


def test_a_german_export_names_its_company_and_account_manager() -> None:
    n = 40
    frame = pd.DataFrame(
        {
            "Kundennummer": [f"K{i}" for i in range(n)],
            "Firma": [f"Müller {i} GmbH" for i in range(n)],
            "Betreuer": ["anna", "ben"] * (n // 2),
            "Umsatz": [str(100 + i) for i in range(n)],
            "Gekündigt": ["Ja", "Nein"] * (n // 2),
        }
    )
    roles = propose(frame, TODAY).roles
    assert (roles["name"], roles["owner"], roles["label"]) == ("firma", "betreuer", "gek_ndigt")
