"""Settings in one place: the environment plus the config folder, read once, frozen after.

Built by :func:`load_settings` from an injected environment mapping, so tests pass a dict and
nothing reads ``os.environ`` deep inside the code. Secrets are ``SecretStr`` and mask
themselves in ``repr`` and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.digest.channels import ChannelsConfig, load_channels
from bot.feedback.config import FeedbackConfig, load_feedback_config
from bot.slack_config import SlackConfig, load_slack_config
from models.config_files import format_validation_error
from models.contract import AccountSchema, load_schema
from models.errors import ChurnbotError, ConfigError
from models.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from models.playbook import Playbook, load_playbook
from models.reasons import ReasonsConfig, load_reasons
from models.sources_config import SourcesConfig, load_sources_config
from models.spec import ProductSpec, load_spec

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


class EnvSettings(BaseModel):
    """The environment variables churnbot reads (DESIGN.md's fixed contract)."""

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
    spec: ProductSpec
    sources: SourcesConfig
    slack: SlackConfig
    feedback: FeedbackConfig
    reasons: ReasonsConfig
    playbook: Playbook
    channels: ChannelsConfig

    @property
    def paths(self) -> Paths:
        return Paths(self.env.var_dir)


def load_env(environ: Mapping[str, str]) -> EnvSettings:
    try:
        return EnvSettings.model_validate(dict(environ))
    except ValidationError as exc:
        raise ConfigError(format_validation_error("environment", exc)) from None


def _load_config(config_dir: Path) -> tuple[dict[str, object], list[str]]:
    """Load every config file, collecting all problems instead of stopping at the first.

    reasons.yaml needs the schema and playbooks.yaml the reason codes, so those two are
    checked only when what they build on loaded; channels.yaml and playbooks.yaml check their
    segments against the schema when it loaded.
    """
    loaded: dict[str, object] = {}
    problems: list[str] = []

    def attempt(key: str, load: Callable[[], object]) -> None:
        try:
            loaded[key] = load()
        except ChurnbotError as exc:
            problems.append(str(exc))

    attempt("schema", lambda: load_schema(config_dir / "schema.yaml"))
    attempt("spec", lambda: load_spec(config_dir / "product.yaml"))
    attempt("sources", lambda: load_sources_config(config_dir / "sources.yaml"))
    attempt("slack", lambda: load_slack_config(config_dir / "slack.yaml"))
    attempt("feedback", lambda: load_feedback_config(config_dir))
    schema = loaded.get("schema")
    segments = schema.columns["segment"].allowed if isinstance(schema, AccountSchema) else None
    attempt("channels", lambda: load_channels(config_dir / "channels.yaml", segments=segments))
    if isinstance(schema, AccountSchema):
        attempt(
            "reasons",
            lambda: load_reasons(
                config_dir / "reasons.yaml",
                schema=schema,
                numeric=NUMERIC_FEATURES,
                categorical=CATEGORICAL_FEATURES,
            ),
        )
    reasons = loaded.get("reasons")
    if isinstance(reasons, ReasonsConfig):
        attempt(
            "playbook",
            lambda: load_playbook(
                config_dir / "playbooks.yaml", reason_codes=reasons.codes, segments=segments
            ),
        )
    return loaded, problems


def config_problems(config_dir: Path) -> list[str]:
    """Every problem in the config folder, in one pass (for `churnbot check-config`)."""
    return _load_config(config_dir)[1]


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the environment and every config file; raise one ConfigError listing all problems."""
    env = load_env(environ)
    loaded, problems = _load_config(env.config_dir)
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(env=env, **loaded)  # type: ignore[arg-type]
