"""The ``churnbot`` command line, driven through ``bot.cli.main(argv)`` as a user would run it.

What matters here is the CLI's fixed contract: every command has ``--help``; with no arguments
``sample-data``, ``train`` and ``score`` chain on default locations; every problem a user can
fix ends in an honest message and exit status 2, never a traceback; results go to stdout and
progress and logs to stderr, so ``churnbot models list | less`` works.

Generating and training take seconds, so one book is generated and one model trained per
module (through the CLI itself) and each test works on its own copy of that ``var/`` folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from urllib.parse import urlsplit

import click
import pandas as pd
import pytest
import redis
import yaml

from bot.cli import cli, main
from bot.cli.sample_data import last_monday
from bot.cli.train import warn_if_foreign
from bot.settings import load_settings
from bot.state.store import _embedded_server, connect
from models.features import FeatureSet
from models.registry import Registry
from tests.redis_fixtures import DEFAULT_TEST_REDIS_URL

REPO = Path(__file__).resolve().parent.parent
ENV_PREFIXES = ("SLACK_", "REDIS_URL", "CHURNBOT_", "PORT")
# A fixed end date keeps the determinism and CSV tests independent of the calendar.
FIXED_END = "2026-11-16"
BOOK = ("--accounts", "1500", "--weeks", "52", "--seed", "3")


@dataclass(frozen=True)
class Run:
    """One CLI invocation: its exit status and what it printed."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout and stderr with whitespace collapsed: rich wraps lines at the console width."""
        return " ".join((self.out + "\n" + self.err).split())

    @property
    def squashed(self) -> str:
        """No whitespace at all: rich may break a long path in the middle."""
        return "".join((self.out + self.err).split())


def _checked(run: Run) -> Run:
    # A user never sees a stack trace, whatever the exit status.
    assert "Traceback" not in run.out + run.err, run.out + run.err
    return run


def churnbot(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Run the CLI in-process and capture its output (rich and click write to sys.std*)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return _checked(Run(code, out, err))


def _churnbot_redirected(*argv: str) -> Run:
    """The same for module-scoped fixtures, where the function-scoped capsys is unavailable."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return _checked(Run(code, out.getvalue(), err.getvalue()))


def _isolate(mp: pytest.MonkeyPatch, var: Path) -> None:
    """A clean environment with ``var`` as CHURNBOT_VAR, run from the repository root.

    The module fixtures run before the autouse environment cleaner, so they clear it too.
    The config folder is left at its default (``config/`` in the working directory).
    """
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            mp.delenv(name)
    mp.chdir(REPO)
    mp.setenv("CHURNBOT_VAR", str(var))


@pytest.fixture(autouse=True)
def fresh_embedded_store() -> Iterator[None]:
    """The embedded store is one per process: without a reset, a kill switch tripped or a
    snapshot published by one test would change what the next test's scoring run sees."""
    _embedded_server.cache_clear()
    yield
    _embedded_server.cache_clear()


@dataclass(frozen=True)
class Chain:
    """``sample-data`` then ``train`` with default locations, run once for the module."""

    var: Path
    sample_data: Run
    train: Run


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    # Dated the last Monday up to today: `score` and `demo` check freshness against today.
    var = tmp_path_factory.mktemp("chain") / "var"
    end = last_monday(dt.date.today()).isoformat()
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, var)
        sample_data = _churnbot_redirected("sample-data", *BOOK, "--end", end)
        train = _churnbot_redirected("train") if sample_data.code == 0 else sample_data
    return Chain(var, sample_data, train)


@pytest.fixture
def var(chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the module's trained var/ folder, set as CHURNBOT_VAR."""
    assert chain.train.code == 0, chain.train.text
    copy = tmp_path / "var"
    shutil.copytree(chain.var, copy)
    _isolate(monkeypatch, copy)
    return copy


@pytest.fixture
def empty_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "var"
    _isolate(monkeypatch, folder)
    return folder


def champion(var: Path) -> str:
    return (var / "registry" / "champion").read_text().strip()


# --- help -----------------------------------------------------------------------------------


def _command_paths(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):  # through get_command: the top group loads lazily
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None
            yield from _command_paths(sub, (*path, name))


COMMANDS = list(_command_paths(cli))


def test_the_command_tree_is_the_documented_one() -> None:
    """Guards the enumeration below (an empty walk would make the help test vacuous)."""
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"sample-data", "train", "score", "models list", "demo", "check-config"} <= names


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "churnbot" for p, _ in COMMANDS]
)
def test_every_command_has_help(
    path: tuple[str, ...],
    command: click.Command,
    empty_var: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert command.help, f"`churnbot {' '.join(path)}` has no help text: give it a docstring"
    run = churnbot(capsys, *path, "--help")
    assert run.code == 0, run.text
    assert "Usage:" in run.out
    assert command.help.split("\n")[0].strip() in run.text
    assert not empty_var.exists(), "--help must not do the work"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    run = churnbot(capsys, "--version")
    assert run.code == 0, run.text
    assert run.out == f"churnbot, version {installed_version('churnbot')}\n"
    assert run.err == ""


# --- the default chain ----------------------------------------------------------------------


def test_sample_data_train_score_chain_on_default_locations(
    chain: Chain, var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert chain.sample_data.code == 0, chain.sample_data.text
    assert "1,500 accounts, 52 weeks" in " ".join(chain.sample_data.out.split())
    assert (var / "data" / "accounts.parquet").is_file()
    assert (var / "data" / "truth.csv").is_file()

    assert chain.train.code == 0, chain.train.text
    version = champion(var)
    assert f"Promoted {version} to champion" in chain.train.text
    assert (var / "registry" / version / "card.json").is_file()
    report = json.loads((var / "reports" / "evaluation.json").read_text())
    assert report["model"]["roc_auc"] > report["baseline"]["roc_auc"]
    assert (var / "reports" / f"evaluation-{version}.json").is_file()

    # REDIS_URL is unset: the embedded store, and still a clean run.
    run = churnbot(capsys, "score")
    assert run.code == 0, run.text
    assert "Published snapshot" in run.text
    assert f"model {version}" in run.text
    assert "FAILED" not in run.text


# --- sample data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_books(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same book written twice with the same seed, as CSV via --out."""
    root = tmp_path_factory.mktemp("csv")
    paths = (root / "first" / "accounts.csv", root / "second" / "accounts.csv")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root / "var")
        for path in paths:
            run = _churnbot_redirected("sample-data", *BOOK, "--end", FIXED_END, "--out", str(path))
            assert run.code == 0, run.text
    return paths


def test_sample_data_same_seed_same_files(csv_books: tuple[Path, Path]) -> None:
    first, second = csv_books
    assert first.read_bytes() == second.read_bytes()
    truth = first.with_name("truth.csv")
    assert truth.is_file()
    assert truth.read_bytes() == second.with_name("truth.csv").read_bytes()
    assert not (first.parent.parent / "var" / "data").exists(), "--out replaces the default"


def test_sample_data_csv_is_what_train_loads(
    csv_books: tuple[Path, Path], empty_var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = csv_books[0]
    run = churnbot(capsys, "train", "--data", str(data))
    assert run.code == 0, run.text
    assert "Loaded 78,000 good rows of 78,000" in run.text
    card = json.loads((empty_var / "registry" / champion(empty_var) / "card.json").read_text())
    assert card["data_source"] == str(data)


# --- the model registry ---------------------------------------------------------------------


def test_models_list_stars_the_champion(var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = churnbot(capsys, "models", "list")
    assert run.code == 0, run.text
    # The table is the result: all of it on stdout (so `| less` works), nothing else there.
    assert champion(var) in run.out
    table = [line for line in run.out.splitlines() if line.strip()]
    assert table, run.text
    assert all(line[0] in "┏┃┡│└" for line in table), run.out
    assert "│" not in run.err
    rows = [line for line in run.text.split("│") if line.strip()]
    assert rows, run.text
    starred = [i for i, cell in enumerate(rows) if cell.strip() == "*"]
    assert len(starred) == 1, run.text
    assert rows[starred[0] + 1].strip() == champion(var)


def test_models_list_without_models_says_what_to_do(
    empty_var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = churnbot(capsys, "models", "list")
    assert run.code == 0
    assert "churnbot train" in run.err
    assert run.out == "", "an empty list is an empty result"


def test_models_show_prints_the_champion_card_as_json(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = churnbot(capsys, "models", "show")
    assert run.code == 0, run.text
    card = json.loads(run.out)
    assert card["version"] == champion(var)
    assert card["metrics"]["model"]["roc_auc"] > 0.5
    assert json.loads(churnbot(capsys, "models", "show", card["version"]).out) == card


def test_models_promote_unknown_version_names_the_known_ones(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = champion(var)
    run = churnbot(capsys, "models", "promote", "UNKNOWN")
    assert run.code == 2
    assert "UNKNOWN" in run.err
    assert f"known versions: {version}" in run.text
    assert champion(var) == version


def test_models_promote_known_version(var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version = champion(var)
    run = churnbot(capsys, "models", "promote", version)
    assert run.code == 0, run.text
    assert f"Champion is now {version}" in run.out


# --- bad input data -------------------------------------------------------------------------


@pytest.fixture
def rows(var: Path) -> pd.DataFrame:
    """The first weeks of the module's book, as a frame to damage."""
    return pd.read_parquet(var / "data" / "accounts.parquet").head(1000)


def test_train_missing_required_column_names_it(
    rows: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    rows.drop(columns=["seats_active"]).to_csv(path, index=False)
    run = churnbot(capsys, "train", "--data", str(path))
    assert run.code == 2
    assert "missing required column(s) 'seats_active'" in run.text
    assert "config/sources.yaml" in run.text


def test_train_too_many_bad_rows_stops_and_quarantines_them(
    rows: pd.DataFrame, var: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = rows.astype({"segment": "object"})
    bad.loc[:99, "segment"] = "bogus"  # 10% of the rows, over the 5% max_reject_share
    path = tmp_path / "export.csv"
    bad.to_csv(path, index=False)
    before = sorted((var / "registry").iterdir())

    run = churnbot(capsys, "train", "--data", str(path))

    assert run.code == 2
    assert "100 of 1000 rows (10.0%) rejected" in run.text
    assert "max_reject_share" in run.text
    rejects = var / "rejects" / "export.rejects.csv"
    assert rejects.is_file(), run.text
    quarantined = pd.read_csv(rejects)
    assert len(quarantined) == 100
    assert set(quarantined["segment"]) == {"bogus"}
    # Over the limit only the first problems are described (see RejectLimitError).
    assert quarantined["reject_reasons"].iloc[0].startswith("segment: 'bogus'")
    assert sorted((var / "registry").iterdir()) == before, "no model from rejected data"


# --- config ---------------------------------------------------------------------------------


def test_check_config_accepts_the_bundled_config(
    empty_var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = churnbot(capsys, "check-config")
    assert run.code == 0, run.text
    assert "configuration is valid" in run.out


def test_check_config_lists_every_problem(
    empty_var: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    product = yaml.safe_load((config / "product.yaml").read_text())
    del product["feedback_signal"]  # a spec without a feedback signal is refused
    (config / "product.yaml").write_text(yaml.safe_dump(product))
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    sources["max_reject_share"] = "lots"
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))

    run = churnbot(capsys, "check-config")

    assert run.code == 2
    assert "2 config file(s) have problems" in run.err
    # One line per problem, naming the file and the key.
    assert f"{config / 'product.yaml'}: feedback_signal:" in run.err
    assert f"{config / 'sources.yaml'}: max_reject_share:" in run.err


def test_training_over_a_champion_of_another_configuration_says_so(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, config B's `train` replaced config A's champion in a shared registry silently,
    and A's next `score` failed."""
    settings = load_settings(os.environ)
    replaced = Registry(settings.paths.registry).card(champion(var))
    capsys.readouterr()
    warn_if_foreign(replaced, settings)
    assert capsys.readouterr().err == "", "the same configuration: nothing to say"

    read = sorted(FeatureSet.from_dict(replaced.notes["feature_set"]).source_columns)[0]
    columns = {k: v for k, v in settings.schema.columns.items() if k != read}
    other = dataclasses.replace(
        settings, schema=settings.schema.model_copy(update={"columns": columns})
    )
    warn_if_foreign(replaced, other)
    err = " ".join(capsys.readouterr().err.split())
    assert f"the champion this model replaced, {replaced.version}, was trained on another" in err
    assert f"(it read {read})" in err
    assert "its own CHURNBOT_VAR" in err


def test_a_config_folder_that_does_not_exist_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "my-confg"
    run = churnbot(capsys, "check-config", "--config", str(missing))
    assert run.code != 0
    assert "the config folder does not exist" in run.text
    assert "file not found" not in run.text, "not one line per file it should hold"


def test_spec_prints_the_data_product_spec(
    empty_var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = churnbot(capsys, "spec")
    assert run.code == 0, run.text
    spec = yaml.safe_load(run.out)
    assert spec["name"] == "Churn-risk digest"
    assert spec["consumer"]
    assert spec["accuracy_sla"]["metric"] == "roc_auc"
    assert "churn_outcome" in spec["feedback_signal"]


# --- scoring without a trustworthy model, and the demo -------------------------------------


def test_score_without_a_model_trips_the_kill_switch_and_says_why(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(var / "registry")
    run = churnbot(capsys, "score")
    assert run.code != 0
    assert "kill switch is on" in run.text
    assert "no champion model" in run.text
    # Nothing good was published in this store: no "last good data" is promised.
    assert "Slackshowsnoscoresatall,asnoearlierrunpasseditschecks" in run.squashed
    assert "churnbot train" in run.text


def test_score_with_a_mistyped_data_path_changes_nothing(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the missing file was a scoring run with unusable data: the kill switch went on
    for every CSM, and stayed on after the next good run."""
    run = churnbot(capsys, "score", "--data", str(var / "acounts.csv"))
    assert run.code == 2
    assert "Invalid value for '--data'" in run.text
    assert "does not exist" in run.text
    assert "acounts.csv" in run.squashed

    after = churnbot(capsys, "score")
    assert after.code == 0, after.text
    assert "kill switch" not in after.text


def test_score_without_data_and_no_default_book_changes_nothing(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forgotten --data on a folder without the sample book: before, a scoring run on a
    missing file that tripped the kill switch for every CSM."""
    book = var / "data" / "accounts.parquet"
    book.rename(book.with_suffix(".kept"))
    try:
        run = churnbot(capsys, "score")
    finally:
        book.with_suffix(".kept").rename(book)
    assert run.code == 2
    assert "no --data given and the default book" in run.text
    assert "pass --data FILE" in run.text
    after = churnbot(capsys, "score")
    assert after.code == 0, after.text
    assert "kill switch" not in after.text


def test_a_healthy_score_says_the_kill_switch_a_failed_run_tripped_is_still_on(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unusable = var / "unusable.csv"
    unusable.write_text("", encoding="utf-8")
    tripped = churnbot(capsys, "score", "--data", str(unusable))
    assert tripped.code != 0
    assert "the kill switch is on" in tripped.text
    assert "Scoring, explaining" not in tripped.err, "no progress bar for work never started"

    run = churnbot(capsys, "score")
    assert run.code == 0, run.text
    assert "Published snapshot" in run.out
    note = " ".join(run.err.split())
    assert "the kill switch is still on" in note
    assert "by health-check: Input data" in note
    assert "`/churn-admin killswitch off`" in note


def test_demo_reuses_the_sample_book_and_shows_the_top_accounts(
    var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = var / "data" / "accounts.parquet"
    written = book.stat().st_mtime_ns
    run = churnbot(capsys, "demo", "--top", "3")
    assert run.code == 0, run.text
    # Progress on stderr; what the demo shows on stdout.
    assert f"Usingthesamplebookin{book}" in "".join(run.err.split())
    assert "Using the sample book" not in run.out
    assert "own embedded in-process store" in " ".join(run.err.split())
    assert book.stat().st_mtime_ns == written
    shown = " ".join(run.out.split())
    assert "Explanations: the recorded cause is among the top" in shown
    live, _, paused = shown.partition("The same digest while the kill switch is on")
    assert paused, "the demo also shows the digest with the kill switch on"
    assert "Top 3 accounts at risk of churning" in live
    assert "1,500 accounts" in live
    assert live.count("why:") == 3, "one recommended action per account shown"
    # The banner says how old the scores shown while paused are: from today, here.
    assert "Using the last good scores, from this" not in live
    assert "Using the last good scores, from this" in paused
    assert paused.count("why:") == 3, "the same accounts, from the last good snapshot"


#: A database of the test Redis that no other test uses: the demo must leave it as it found it.
CONFIGURED_DB = 11


@pytest.fixture
def configured_redis(real_redis: redis.Redis) -> Iterator[tuple[str, redis.Redis]]:
    """The URL of a real Redis database an operator configured, and a client of it."""
    base = urlsplit(os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL))
    url = base._replace(path=f"/{CONFIGURED_DB}").geturl()
    client = connect(url)
    yield url, client
    client.close()


def test_demo_never_touches_the_configured_redis(
    var: Path,
    configured_redis: tuple[str, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, live = configured_redis
    sentinel = "churnbot:{demo-test}:live-scores"
    live.set(sentinel, "a team's real scores")
    before = set(live.scan_iter(count=1_000))
    monkeypatch.setenv("REDIS_URL", url)
    try:
        run = churnbot(capsys, "demo", "--top", "2")
        written = set(live.scan_iter(count=1_000)) - before
    finally:
        # Leave the database as it was, even when the demo wrongly wrote into it.
        live.delete(sentinel, *(set(live.scan_iter(count=1_000)) - before))

    assert run.code == 0, run.text
    assert not written, f"the demo wrote {len(written)} keys, e.g. {sorted(written)[:3]}"
    assert "Top 2 accounts at risk of churning" in " ".join(run.out.split())
    note = "REDIS_URL is set, but the demo never touches a configured store"
    assert note in " ".join(run.err.split())
