"""Settings and config files: clear errors naming the file, the key and what is expected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.settings import check_config_folder, load_settings
from models.errors import ConfigError

CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_bundled_config_is_valid() -> None:
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    assert settings.schema.id_column == "account_id"
    assert settings.spec.feedback_signal
    assert settings.env.slack_api_url == "https://slack.com/api/"
    assert settings.env.redis_url is None


def test_secrets_are_masked_in_repr(config_dir: Path) -> None:
    settings = load_settings(
        {"CHURNBOT_CONFIG": str(config_dir), "SLACK_BOT_TOKEN": "xoxb-very-secret"}
    )
    assert "xoxb-very-secret" not in repr(settings)
    assert settings.env.slack_bot_token is not None
    assert settings.env.slack_bot_token.get_secret_value() == "xoxb-very-secret"


def test_spec_without_feedback_signal_is_refused(config_dir: Path) -> None:
    product = config_dir / "product.yaml"
    edit(
        product,
        "feedback_signal: [helpful, not_helpful, correction, action_done, churn_outcome]",
        "feedback_signal: []",
    )
    with pytest.raises(ConfigError, match=r"product\.yaml: feedback_signal: .*needs a feedback"):
        load_settings({"CHURNBOT_CONFIG": str(config_dir)})


def test_wrong_key_and_bad_value_are_named(config_dir: Path) -> None:
    edit(config_dir / "product.yaml", "horizon_days: 90", "horizon_dayz: 90")
    edit(config_dir / "product.yaml", "floor: 0.70", "floor: high")
    with pytest.raises(ConfigError) as caught:
        load_settings({"CHURNBOT_CONFIG": str(config_dir)})
    message = str(caught.value)
    assert "product.yaml: horizon_dayz: unknown key" in message
    assert "product.yaml: accuracy_sla.floor:" in message
    assert "'high'" in message


def test_every_problem_is_reported_in_one_pass(config_dir: Path) -> None:
    edit(
        config_dir / "schema.yaml",
        "type: float, min: 0, description: Annual",
        "type: money, min: 0, description: Annual",
    )
    edit(config_dir / "sources.yaml", "max_reject_share: 0.05", "max_reject_share: 5")
    (config_dir / "product.yaml").unlink()
    problems, _ = check_config_folder(config_dir)
    assert len(problems) == 3
    assert any("schema.yaml: columns.arr.type" in p for p in problems)
    assert any("sources.yaml: max_reject_share" in p for p in problems)
    assert any("product.yaml: file not found" in p for p in problems)


def test_a_misspelt_key_names_the_key_it_is_closest_to_wherever_it_is(config_dir: Path) -> None:
    """At the top of a file, in a nested section, in an entry of a list (a playbook rule, a
    digest) or of a mapping keyed by the user's names (a feature); a key like none of the
    known ones is told the keys allowed there."""
    edit(config_dir / "product.yaml", "consumer:", "consumr:")
    edit(config_dir / "product.yaml", "max_reject_share:", "max_rejects_share:")
    edit(config_dir / "features.yaml", "{column: nps, fill: 7,", "{colunm: nps, fill: 7,")
    edit(config_dir / "playbooks.yaml", "when:", "wehn:")
    edit(config_dir / "channels.yaml", "max_accounts: 15", "max_acounts: 15")
    edit(config_dir / "reasons.yaml", "max_p_value:", "zzz_unrelated:")
    edit(config_dir / "product.yaml", "job:", "qqq: 1\njob:")
    problems, _ = check_config_folder(config_dir)
    said = "\n".join(problems)
    for where, typo, meant in [
        ("product.yaml", "consumr", "consumer"),
        ("product.yaml", "health.max_rejects_share", "max_reject_share"),
        ("features.yaml", "features.nps.colunm", "column"),
        ("channels.yaml: digest 3 (enterprise)", "max_acounts", "max_accounts"),
    ]:
        assert f"{where}: {typo}: unknown key (did you mean '{meant}'?)" in said, said
    assert "wehn: unknown key (did you mean 'when'?)" in said
    # The same slip said once: not also "consumer: Field required".
    assert "Field required" not in said
    assert (
        "reasons.yaml: zzz_unrelated: unknown key (the keys here are features, "
        "healthy_min_impact, max_p_value, min_impact, top_reasons)" in said
    )
    # Too many keys to list there (15 at product.yaml's top): where they are described.
    assert (
        "product.yaml: qqq: unknown key (check the spelling; the README's Configuration "
        "section lists the keys)" in said
    )


def test_files_after_a_broken_one_still_have_their_keys_checked(config_dir: Path) -> None:
    """features.yaml names the schema's columns, reasons.yaml the features, playbooks.yaml the
    reasons: while schema.yaml has a problem those cannot be checked, but a misspelt key in
    any of them is still reported in the same run, and the warning says what was left out."""
    edit(config_dir / "schema.yaml", "arr: {type: float,", "arr: {type: money,")
    edit(config_dir / "features.yaml", "{column: nps, fill: 7,", "{colum: nps, fill: 7,")
    edit(config_dir / "reasons.yaml", "max_p_value:", "max_pvalue:")
    edit(config_dir / "playbooks.yaml", "when:", "wehn:")
    problems, warnings = check_config_folder(config_dir)
    assert len(problems) == 4
    assert any("schema.yaml: columns.arr.type" in p for p in problems)
    assert any("features.yaml: features.nps.colum: unknown key" in p for p in problems)
    assert any("reasons.yaml: max_pvalue: unknown key" in p for p in problems)
    assert any("playbooks.yaml: rule 1 (" in p and "wehn: unknown key" in p for p in problems)
    assert (
        "features.yaml, reasons.yaml, playbooks.yaml: checked for their own keys only; the "
        "columns, features and reasons they name are checked once the files they build on load"
    ) in warnings


def test_a_broken_features_file_leaves_only_its_dependants_partly_checked(
    config_dir: Path,
) -> None:
    edit(config_dir / "features.yaml", "{column: nps, fill: 7,", "{column: nps_score, fill: 7,")
    problems, warnings = check_config_folder(config_dir)
    assert len(problems) == 1
    assert "features.yaml" in problems[0]
    assert "nps_score" in problems[0]
    assert any(
        w.startswith("reasons.yaml, playbooks.yaml: checked for their own keys") for w in warnings
    )


def test_invalid_yaml_names_the_line(config_dir: Path) -> None:
    (config_dir / "sources.yaml").write_text("mapping: {a: b\nmax_reject_share: 0.1\n")
    with pytest.raises(ConfigError, match=r"sources\.yaml: line \d+: not valid YAML"):
        load_settings({"CHURNBOT_CONFIG": str(config_dir)})


def test_schema_needs_one_id_column(config_dir: Path) -> None:
    edit(config_dir / "schema.yaml", "{type: string, role: id,", "{type: string,")
    with pytest.raises(ConfigError, match="exactly one column must have role 'id', found 0"):
        load_settings({"CHURNBOT_CONFIG": str(config_dir)})


def test_bad_port_is_named() -> None:
    with pytest.raises(ConfigError, match=r"environment: PORT: .*\(got 'eighty'\)"):
        load_settings({"CHURNBOT_CONFIG": str(CONFIG), "PORT": "eighty"})
