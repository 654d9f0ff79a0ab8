"""Read account rows with a SQL query (config/sources.yaml, ``sql:``) and validate them like a file.

The database URL carries a password, so it lives in an environment variable named by
``sql.url_env`` and never in a config file, a message, a log line or a repr: messages name the
variable and show the address with the password masked. Every failure (no variable, not a URL,
no driver, server unreachable, login refused, SQL error) becomes one :class:`SourceError` line
naming the variable and the query's first words, because that is what a user can act on.

Rows are fetched in chunks of ``sql.chunk_rows`` through a server-side cursor where the driver
has one (``stream_results``), so neither the driver nor the server buffers the whole result;
the rows are then validated in one pass, as a file is, so record numbers are row numbers of the
result and duplicates are found across chunks. Cells stay as the driver returns them (object
dtype, like JSON from the HTTP source) so an integer id never turns into ``1.0``; only columns
holding timestamps are typed, because their text form has a time of day a date column refuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from models.contract import AccountSchema
from models.errors import ConfigError, SourceError
from models.scoring_rows import ScoringRows, validate_table
from models.sources_config import SourcesConfig
from models.validate import LoadResult

QUERY_WORDS_SHOWN = 6
QUERY_CHARS_SHOWN = 60
REASON_CHARS_SHOWN = 300
# psycopg 3 is the PostgreSQL driver churnbot installs; SQLAlchemy's default for a bare
# postgresql:// URL is psycopg2, and postgres:// (Heroku's spelling) is not a dialect at all.
DRIVER_FOR = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"


class SqlAccountSource:
    """Run the configured query and hand its rows to the validator."""

    def __init__(self, sources: SourcesConfig, *, environ: Mapping[str, str]) -> None:
        if sources.sql is None:
            raise ConfigError(f"{sources.file}: sql: no SQL source configured")
        config = sources.sql
        self._sources = sources
        self._config = config
        self._env = f"${config.url_env}"
        self.query_head = _query_head(config.query)
        text = environ.get(config.url_env, "").strip()
        if not text:
            raise SourceError(
                f"the SQL source needs a database URL in the environment variable {self._env}, "
                f"which is not set ({sources.file}: sql.url_env)"
            )
        try:
            url = make_url(text)
        except ArgumentError:
            # The text itself is not shown: a malformed URL may still hold a password.
            raise SourceError(
                f"{self._env} does not hold a database URL (expected e.g. {URL_EXAMPLE}; "
                f"{sources.file}: sql.url_env)"
            ) from None
        self._url: URL = url.set(drivername=DRIVER_FOR.get(url.drivername, url.drivername))
        # Whatever a driver echoes back, these never leave this object.
        self._secrets = [secret for secret in (text, url.password) if secret]
        self.label = self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SqlAccountSource(url={self.label!r}, url_env={self._config.url_env!r})"

    def read_frame(self) -> pd.DataFrame:
        """Every row of the query's result, cells as the driver returns them."""
        chunks = []
        with self._connect() as connection:
            try:
                result = connection.execution_options(
                    stream_results=True, max_row_buffer=self._config.chunk_rows
                ).exec_driver_sql(self._driver_query(connection))
                if not result.returns_rows:
                    raise SourceError(self._failure("the query returned no rows (not a SELECT?)"))
                columns = list(result.keys())
                for rows in result.partitions(self._config.chunk_rows):
                    chunks.append(pd.DataFrame(rows, columns=columns, dtype=object))
            except SQLAlchemyError as exc:
                raise SourceError(self._failure(f"the query failed: {self._reason(exc)}")) from None
        if not chunks:
            return pd.DataFrame(columns=columns, dtype=object)
        frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
        return _typed_timestamps(frame)

    def load(self, schema: AccountSchema, *, rows: ScoringRows | None = None) -> LoadResult:
        """Run the query and validate its rows (with ``rows``, only those a scoring run
        needs); record numbers are the result's row numbers."""
        frame = self.read_frame()
        if frame.empty:
            raise SourceError(self._failure("the query returned no account rows"))
        return validate_table(
            frame,
            schema,
            source=f"SQL {self._env}",
            sources=self._sources,
            record_label="row",
            need=rows,
        )

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        connect_args = {}
        if self._url.get_backend_name() == "postgresql":
            # libpq waits as long as the OS does for an unreachable host; a digest run should
            # fail in seconds with a clear line instead.
            connect_args["connect_timeout"] = self._config.connect_timeout_seconds
        try:
            engine = create_engine(self._url, connect_args=connect_args)
        except (NoSuchModuleError, ImportError):
            raise SourceError(
                f"{self._env}: no database driver for '{self._url.drivername}' is installed "
                f"(churnbot ships PostgreSQL: {URL_EXAMPLE})"
            ) from None
        try:
            try:
                connection = engine.connect()
            except SQLAlchemyError as exc:
                raise SourceError(
                    self._failure(f"cannot connect to {self.label}: {self._reason(exc)}")
                ) from None
            with connection:
                yield connection
        finally:
            engine.dispose()

    def _driver_query(self, connection: Connection) -> str:
        """The query as the driver must receive it: drivers with %-style parameters read a
        literal % (as in LIKE 'A%') as a placeholder unless it is doubled."""
        query = self._config.query
        if connection.dialect.paramstyle in ("format", "pyformat"):
            return query.replace("%", "%%")
        return query

    def _failure(self, what: str) -> str:
        return f"SQL source {self._env}, query '{self.query_head}': {what}"

    def _reason(self, exc: SQLAlchemyError) -> str:
        """The driver's own message on one line, without SQLAlchemy's SQL echo and links, and
        with the URL and its password removed whatever the driver put in."""
        original = getattr(exc, "orig", None)
        text = str(original) if original is not None else str(exc)
        # PostgreSQL's position marker (LINE 1: ... ^) shows driver-rewritten SQL; the query
        # head in the message already says which query.
        text = " ".join(text.split("\nLINE ")[0].split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if len(text) > REASON_CHARS_SHOWN:
            text = text[: REASON_CHARS_SHOWN - 3] + "..."
        return text or type(exc).__name__


def _query_head(query: str) -> str:
    """The first few words of the query, enough to recognise it in a message."""
    words = query.split()
    head = " ".join(words[:QUERY_WORDS_SHOWN])
    if len(head) > QUERY_CHARS_SHOWN:
        head = head[: QUERY_CHARS_SHOWN - 3].rstrip()
    return head + (" ..." if head != " ".join(words) else "")


def _typed_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding only timestamps (and NULLs) as datetime64 (in UTC for time-zone-aware
    ones, which a date column reads as their day in sources.yaml's ``timezone``), so a date
    column accepts them; every other column keeps the driver's values."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if pd.api.types.infer_dtype(column, skipna=True) == "datetime":
            values = column.dropna()
            aware = len(values) > 0 and getattr(values.iloc[0], "tzinfo", None) is not None
            typed = pd.to_datetime(column, utc=True)
            frame.isetitem(position, typed.array if aware else typed.dt.tz_localize(None).array)
    return frame
