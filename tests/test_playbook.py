"""Playbook rules: first match wins, context matters, malformed files fail with a location."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import ConfigError
from models.generator import CAUSES
from models.playbook import Coded, load_playbook

CONFIG = Path(__file__).resolve().parent.parent / "config"
CODES = (set(CAUSES) - {"unexplained"}) | {"account_profile"}


def account(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "reason_1": "",
        "reason_2": "",
        "reason_3": "",
        "segment": "smb",
        "band": "medium",
        "industry": "Retail",
        "plan": "growth",
        "arr": 20_000.0,
        "days_to_renewal": 200,
    }
    row.update(overrides)
    return row


def recommend(*rows: dict[str, object]) -> list[str]:
    playbook = load_playbook(CONFIG / "playbooks.yaml", reason_codes=CODES)
    return list(playbook.recommend(pd.DataFrame(list(rows))))


def test_first_matching_rule_wins_with_context() -> None:
    rules = recommend(
        account(reason_1="renewal", band="high", days_to_renewal=30, segment="enterprise"),
        account(reason_1="renewal", band="high", days_to_renewal=30, segment="smb"),
        account(reason_1="usage_decline", reason_2="champion_left"),
        account(reason_1="escalations"),
        account(reason_1="usage_decline", reason_2="escalations"),
        account(reason_1="usage_decline", arr=250_000.0),
        account(reason_2="low_seat_utilisation"),
        account(reason_3="poor_nps"),
        account(),
    )
    assert rules == [
        "renewal-at-risk-ebr",
        "renewal-close",  # the same renewal on a small account: a call, not an EBR
        "champion-left",
        "escalations",
        "usage-drop",
        "usage-drop-strategic",
        "default-check-in",  # seats only the second reason: the strongest one decides
        "default-check-in",
        "default-check-in",
    ]


def test_a_book_of_coded_columns_picks_the_rules_a_table_does() -> None:
    """A scoring run hands the rules its columns as codes (models.playbook.Coded) and arrays
    instead of a table: the same rows must get the same rules, empty cells included."""
    rows = [
        account(reason_1="renewal", band="high", days_to_renewal=30, segment="enterprise"),
        account(reason_1="renewal", band="high", days_to_renewal=30, segment="smb"),
        account(reason_1="usage_decline", reason_2="champion_left"),
        account(reason_1="usage_decline", arr=250_000.0),
        account(reason_1="renewal", days_to_renewal=90, segment=None),
        account(reason_3="poor_nps"),
    ]
    table = pd.DataFrame(rows)
    playbook = load_playbook(CONFIG / "playbooks.yaml", reason_codes=CODES)
    book: dict[str, Coded | np.ndarray] = {}
    for name in table.columns:
        if pd.api.types.is_numeric_dtype(table[name]):
            book[name] = table[name].to_numpy()
        else:
            codes, levels = pd.factorize(table[name])
            book[name] = Coded(codes, np.asarray(levels, dtype=object))
    coded = playbook.rule_indices(book)
    assert coded.tolist() == playbook.rule_indices(table).tolist()
    assert coded.tolist() == [0, 2, 1, 4, 9, len(playbook.rules)]


def test_the_action_follows_the_strongest_reason_shown() -> None:
    """Each reason code leads, as the top reason, to an action whose "why" speaks of it."""
    rules = recommend(
        account(reason_1="low_seat_utilisation", reason_2="poor_nps"),
        account(reason_1="poor_nps", reason_2="low_seat_utilisation"),
        account(reason_1="renewal", days_to_renewal=1, reason_2="usage_decline"),
        account(reason_1="renewal", days_to_renewal=90),
        account(reason_1="overdue_invoices"),
        account(reason_1="csm_neglect"),
        account(reason_1="account_profile"),
    )
    assert rules == [
        "unused-seats",
        "detractor-follow-up",
        "renewal-close",
        "renewal-prep",
        "overdue-invoices",
        "reconnect",
        "success-plan",
    ]
    playbook = load_playbook(CONFIG / "playbooks.yaml", reason_codes=CODES)
    assert "seats" in playbook.action("unused-seats").why
    assert "NPS" in playbook.action("detractor-follow-up").why


def test_action_text_for_a_rule_and_the_default() -> None:
    playbook = load_playbook(CONFIG / "playbooks.yaml", reason_codes=CODES)
    chosen = playbook.action("champion-left")
    assert chosen.action.startswith("Exec-sponsor outreach")
    assert chosen.owner
    assert playbook.action("default-check-in").rule == "default-check-in"


@pytest.fixture
def playbook_file(tmp_path: Path) -> Path:
    target = tmp_path / "playbooks.yaml"
    shutil.copy(CONFIG / "playbooks.yaml", target)
    return target


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unknown_reason_names_file_rule_and_known_reasons(playbook_file: Path) -> None:
    replace(playbook_file, "{reasons_any: [champion_left]}", "{reasons_any: [champion_gone]}")
    with pytest.raises(
        ConfigError,
        match=r"playbooks\.yaml: rule 2 \(champion-left\): when\.reasons_any: unknown reason "
        r"champion_gone; known reasons: account_profile, champion_left, ",
    ):
        load_playbook(playbook_file, reason_codes=CODES)


def test_bad_condition_key_is_named(playbook_file: Path) -> None:
    replace(playbook_file, "{top_reason: [escalations]}", "{top_reasn: [escalations]}")
    with pytest.raises(ConfigError, match=r"rule 4 \(escalations\): when\.top_reasn: unknown key"):
        load_playbook(playbook_file, reason_codes=CODES)


def test_bad_condition_value_is_named(playbook_file: Path) -> None:
    replace(playbook_file, "at_least: {arr: 100000}", "at_least: {arr: lots}")
    with pytest.raises(
        ConfigError, match=r"rule 5 \(usage-drop-strategic\): when\.at_least\.arr: "
    ):
        load_playbook(playbook_file, reason_codes=CODES)


def test_missing_default_is_refused(playbook_file: Path) -> None:
    text = playbook_file.read_text()
    playbook_file.write_text(text[: text.index("default:")])
    with pytest.raises(ConfigError, match=r"playbooks\.yaml: default: missing"):
        load_playbook(playbook_file, reason_codes=CODES)


def test_unknown_band_and_segment_are_refused(playbook_file: Path) -> None:
    replace(playbook_file, "band: [high]", "band: [critical]")
    with pytest.raises(ConfigError, match=r"when\.band: unknown band critical"):
        load_playbook(playbook_file, reason_codes=CODES)
    replace(playbook_file, "band: [critical]", "band: [high]")
    replace(playbook_file, "segment: [enterprise, mid_market]", "segment: [enterprize]")
    columns = {"segment": ("smb", "enterprise"), "arr": None, "days_to_renewal": None}
    with pytest.raises(ConfigError, match=r"when\.values\.segment: unknown value enterprize"):
        load_playbook(playbook_file, reason_codes=CODES, columns=columns)


def test_a_condition_on_an_unknown_column_is_refused(playbook_file: Path) -> None:
    replace(playbook_file, "at_least: {arr: 100000}", "at_least: {mrr: 100000}")
    columns = {"segment": None, "arr": None, "days_to_renewal": None}
    with pytest.raises(
        ConfigError,
        match=r"rule 5 \(usage-drop-strategic\): when\.at_least\.mrr: not a column of "
        r"schema\.yaml nor a feature",
    ):
        load_playbook(playbook_file, reason_codes=CODES, columns=columns)


def test_rule_without_conditions_is_refused(playbook_file: Path) -> None:
    replace(playbook_file, "when: {top_reason: [csm_neglect]}", "when: {}")
    with pytest.raises(ConfigError, match=r"rule 11 \(reconnect\): when: no condition given"):
        load_playbook(playbook_file, reason_codes=CODES)
