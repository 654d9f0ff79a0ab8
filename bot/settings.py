"""Settings in one place: the environment plus the config folder, read once, frozen after.

Built by :func:`load_settings` from an injected environment mapping, so tests pass a dict and
nothing reads ``os.environ`` deep inside the code. Secrets are ``SecretStr`` and mask
themselves in ``repr`` and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.digest.channels import ChannelsConfig, load_channels
from bot.digest.holdout import HoldoutConfig, load_holdout_config
from bot.feedback.config import FeedbackConfig, load_feedback_config
from bot.feedback.save_rate_config import SaveRateFile, load_save_rate_config
from bot.slack_config import SlackConfig, load_slack_config
from models.config_files import format_validation_error, load_yaml_model
from models.contract import AccountSchema, load_schema
from models.errors import ChurnbotError, ConfigError
from models.features import FeaturesConfig, FeatureSet, load_features
from models.playbook import Playbook, load_playbook, read_playbook
from models.sources_config import SourcesConfig, load_sources_config, sources_problems
from models.spec import ProductSpec, load_spec

if TYPE_CHECKING:
    from models.reasons import ReasonsConfig

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


class EnvSettings(BaseModel):
    """The environment variables churnbot reads. Their names are a fixed contract: the Procfile,
    deployments, the README and the tests set them, so a rename breaks them all."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=SLACK_DEFAULT_API_URL, alias="SLACK_API_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    config_dir: Path = Field(default=Path("config"), alias="CHURNBOT_CONFIG")
    var_dir: Path = Field(default=Path("var"), alias="CHURNBOT_VAR")
    port: int = Field(default=3000, ge=1, le=65535, alias="PORT")


@dataclass(frozen=True)
class Paths:
    """Default locations, so `sample-data`, `train` and `score` chain with no arguments."""

    var_dir: Path

    @property
    def accounts(self) -> Path:
        return self.var_dir / "data" / "accounts.parquet"

    @property
    def truth(self) -> Path:
        return self.var_dir / "data" / "truth.csv"

    @property
    def registry(self) -> Path:
        return self.var_dir / "registry"

    @property
    def reports(self) -> Path:
        return self.var_dir / "reports"

    @property
    def rejects(self) -> Path:
        return self.var_dir / "rejects"


@dataclass(frozen=True)
class Settings:
    env: EnvSettings
    schema: AccountSchema
    features: FeatureSet
    spec: ProductSpec
    sources: SourcesConfig
    slack: SlackConfig
    feedback: FeedbackConfig
    reasons: ReasonsConfig
    playbook: Playbook
    channels: ChannelsConfig
    holdout: HoldoutConfig
    save_rate: SaveRateFile
    warnings: tuple[str, ...] = ()

    @property
    def paths(self) -> Paths:
        return Paths(self.env.var_dir)

    @property
    def segments(self) -> tuple[str, ...]:
        """The values of the schema's segment column (empty without one, or when any value
        is allowed)."""
        return _segments(self.schema) or ()


def load_env(environ: Mapping[str, str]) -> EnvSettings:
    try:
        return EnvSettings.model_validate(dict(environ))
    except ValidationError as exc:
        raise ConfigError(format_validation_error("environment", exc)) from None


def require_signing_secret(env: EnvSettings) -> None:
    """Over HTTP every request is verified: no signing secret, no app (checked by ``churnbot
    serve`` before it forks its workers, and by ``bot.app.build_app``)."""
    if env.slack_signing_secret is None:
        raise ConfigError(
            "environment: SLACK_SIGNING_SECRET is not set; the app must verify every Slack "
            "request (find it under Basic Information in your Slack app's settings), or run "
            "`churnbot serve --socket-mode` with SLACK_APP_TOKEN"
        )


def require_bot_token(env: EnvSettings) -> None:
    """The app answers through the Web API with the bot token (checked by ``churnbot serve``
    before it forks; a test may inject a client that carries its own)."""
    if env.slack_bot_token is None:
        raise ConfigError(
            "environment: SLACK_BOT_TOKEN is not set; the app answers Slack through the Web API "
            "with it (the Bot User OAuth Token, xoxb-..., under OAuth & Permissions in your "
            "Slack app's settings)"
        )


def _load_config(config_dir: Path) -> tuple[dict[str, object], list[str], list[str]]:
    """Load every config file, collecting all problems instead of stopping at the first.

    features.yaml needs the schema, reasons.yaml the features, playbooks.yaml the reason codes
    and the columns, so each is checked only when what it builds on loaded; channels.yaml and
    playbooks.yaml check segment values against the schema's segment column when it has one.
    Returns what loaded, the problems and the warnings.
    """
    from models.reasons import ReasonsConfig, load_reasons, reason_codes

    loaded: dict[str, object] = {}
    problems: list[str] = []
    warnings: list[str] = []
    if not config_dir.is_dir():  # one line, not "file not found" for each file it should hold
        what = "is a file, not a folder" if config_dir.exists() else "does not exist"
        problems.append(
            f"{config_dir}: the config folder {what} (set CHURNBOT_CONFIG to the folder that "
            "holds schema.yaml, features.yaml and the rest; `churnbot init --data FILE` "
            "writes a starter one)"
        )
        return loaded, problems, warnings

    def attempt(key: str, load: Callable[[], object]) -> None:
        try:
            loaded[key] = load()
        except ChurnbotError as exc:
            problems.append(str(exc))

    partly_checked: list[str] = []

    def own_keys_only(file: str, check: Callable[[Path], object]) -> None:
        """A file whose dependencies did not load: its own shape, so that one run still
        reports a misspelt key there too, not only after the files before it are fixed."""
        partly_checked.append(file)
        try:
            check(config_dir / file)
        except ChurnbotError as exc:
            problems.append(str(exc))

    attempt("schema", lambda: load_schema(config_dir / "schema.yaml"))
    attempt("spec", lambda: load_spec(config_dir / "product.yaml"))
    attempt("sources", lambda: load_sources_config(config_dir / "sources.yaml"))
    attempt("slack", lambda: load_slack_config(config_dir / "slack.yaml"))
    attempt("feedback", lambda: load_feedback_config(config_dir))
    attempt("holdout", lambda: load_holdout_config(config_dir))
    attempt("save_rate", lambda: load_save_rate_config(config_dir))
    schema = loaded.get("schema")
    segments = _segments(schema) if isinstance(schema, AccountSchema) else None
    attempt("channels", lambda: load_channels(config_dir / "channels.yaml", segments=segments))
    if isinstance(schema, AccountSchema):

        def features() -> FeatureSet:
            feature_set, found = load_features(config_dir / "features.yaml", schema)
            warnings.extend(found)
            return feature_set

        attempt("features", features)
    else:
        own_keys_only("features.yaml", lambda path: load_yaml_model(path, FeaturesConfig))
    feature_set = loaded.get("features")
    if isinstance(schema, AccountSchema) and isinstance(feature_set, FeatureSet):
        attempt(
            "reasons",
            lambda: load_reasons(config_dir / "reasons.yaml", schema=schema, features=feature_set),
        )
    else:
        own_keys_only("reasons.yaml", lambda path: load_yaml_model(path, ReasonsConfig))
    reasons = loaded.get("reasons")
    if isinstance(reasons, ReasonsConfig) and isinstance(feature_set, FeatureSet):
        assert isinstance(schema, AccountSchema)
        columns = {
            **{name: spec.allowed for name, spec in schema.columns.items()},
            **dict.fromkeys(feature_set.names),
        }
        attempt(
            "playbook",
            lambda: load_playbook(
                config_dir / "playbooks.yaml",
                reason_codes=reason_codes(reasons, feature_set.names),
                columns=columns,
            ),
        )
    else:
        own_keys_only("playbooks.yaml", read_playbook)
    if partly_checked:
        warnings.append(
            f"{', '.join(partly_checked)}: checked for their own keys only; the columns, "
            "features and reasons they name are checked once the files they build on load"
        )
    sources = loaded.get("sources")
    if isinstance(sources, SourcesConfig) and isinstance(schema, AccountSchema):
        problems += sources_problems(sources, schema)
    spec = loaded.get("spec")
    if isinstance(spec, ProductSpec) and isinstance(feature_set, FeatureSet):
        problems += feature_set.drift_problems(
            spec.health.drift_features, str(config_dir / "product.yaml")
        )
    return loaded, problems, warnings


def _segments(schema: AccountSchema) -> tuple[str, ...] | None:
    """The allowed values of the schema's segment column (None when it has none or any)."""
    column = schema.optional_column("segment")
    return None if column is None else schema.columns[column].allowed


def check_config_folder(config_dir: Path) -> tuple[list[str], list[str]]:
    """Every problem and every warning (allowed but probably not meant, such as a declared
    column that no feature uses) of the config folder, in one pass."""
    _, problems, warnings = _load_config(config_dir)
    return problems, warnings


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the environment and every config file; raise one ConfigError listing all problems."""
    env = load_env(environ)
    loaded, problems, warnings = _load_config(env.config_dir)
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(env=env, warnings=tuple(warnings), **loaded)  # type: ignore[arg-type]
