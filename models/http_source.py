"""Read account rows from a paginated JSON endpoint (config/sources.yaml, ``http:``).

Upstream APIs fail in ordinary ways: a deploy answers 502 for a minute, a rate limiter answers
429 with Retry-After, a connection drops mid-page. Those are retried with exponential backoff,
because a weekly digest should survive them. A 4xx other than 429 is the user's to fix (wrong
token, wrong URL), so it fails at once with a hint. httpx alone retries only connection setup
(``HTTPTransport(retries=N)`` never retries a 5xx, a 429 or a read error), hence the loop here.

The bearer token comes from an environment variable named in the config and is never written
into an error, a log line or a repr: messages name the variable instead.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd

from models.contract import AccountSchema
from models.errors import ConfigError, SourceError
from models.scoring_rows import ScoringRows, validate_table
from models.sources_config import DEFAULT_FILE, HttpSourceConfig, SourcesConfig
from models.validate import LoadResult

logger = logging.getLogger(__name__)

# A Retry-After far in the future is more likely a misconfigured server than a real wish;
# waiting an hour inside a training run helps nobody.
MAX_RETRY_AFTER_SECONDS = 120.0
BODY_SHOWN = 200
RETRY_AFTER_STATUSES = (429, 503)


class _Secret:
    """A string that stays out of reprs and tracebacks' locals unless asked for by name."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "_Secret('***')"

    def reveal(self) -> str:
        return self._value


class HttpAccountSource:
    """Fetch every page of account records and validate them like any other table."""

    def __init__(
        self,
        config: HttpSourceConfig,
        *,
        environ: Mapping[str, str],
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        source_file: Path = DEFAULT_FILE,
    ) -> None:
        self._file = source_file
        try:
            url = httpx.URL(config.url)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{source_file}: http.url: {exc} (got {config.url!r})") from None
        if url.scheme not in ("http", "https"):
            raise ConfigError(
                f"{source_file}: http.url: expected an http:// or https:// address "
                f"(got {config.url!r})"
            )
        token = environ.get(config.token_env, "").strip()
        if not token:
            raise SourceError(
                f"the HTTP source needs a bearer token in the environment variable "
                f"${config.token_env}, which is not set ({source_file}: http.token_env)"
            )
        self._config = config
        self._url = url
        # Query strings can carry keys; errors and reports show the address without them.
        self.label = str(url.copy_with(query=None, fragment=None, username=None, password=None))
        self._token = _Secret(token)
        self._transport = transport
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"HttpAccountSource(url={self.label!r}, token_env={self._config.token_env!r})"

    def fetch_records(self) -> list[dict]:
        """Every record of every page, in order, following cursor or page-number pagination."""
        config = self._config
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        records: list[dict] = []
        with httpx.Client(
            transport=self._transport,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds),
            follow_redirects=False,
        ) as client:
            if config.pagination == "cursor":
                self._follow_cursor(client, records)
            else:
                self._follow_pages(client, records)
        return records

    def load(
        self, schema: AccountSchema, sources: SourcesConfig, *, rows: ScoringRows | None = None
    ) -> LoadResult:
        """Fetch all records and validate them (with ``rows``, only those a scoring run
        needs); record numbers count from 1 across pages."""
        records = self.fetch_records()
        if not records:
            raise SourceError(f"{self.label}: the endpoint returned no account records")
        return validate_table(
            # Object cells keep JSON values as sent (42, not 42.0 from a column with nulls;
            # big integers exact); the validator parses them like CSV text.
            pd.DataFrame(records, dtype=object),
            schema,
            source=self.label,
            sources=sources,
            record_label="record",
            need=rows,
        )

    def _follow_cursor(self, client: httpx.Client, records: list[dict]) -> None:
        config = self._config
        params: dict[str, str | int] = {config.page_size_param: config.page_size}
        seen: set[str] = set()
        page_number = 1
        while True:
            page = self._get_page(client, params, page_number)
            records.extend(self._items(page, page_number))
            cursor = page.get(config.cursor_field)
            if cursor is None or cursor == "":
                return
            cursor = str(cursor)
            if cursor in seen:
                raise SourceError(
                    f"{self.label}: page {page_number}: the server sent the cursor {cursor!r} "
                    f"again ({config.cursor_field}); stopping instead of looping forever"
                )
            seen.add(cursor)
            params = {config.page_size_param: config.page_size, config.cursor_param: cursor}
            page_number += 1

    def _follow_pages(self, client: httpx.Client, records: list[dict]) -> None:
        config = self._config
        previous: list[dict] | None = None
        page_number = 1
        while True:
            params = {config.page_param: page_number, config.page_size_param: config.page_size}
            items = self._items(self._get_page(client, params, page_number), page_number)
            if items and items == previous:
                raise SourceError(
                    f"{self.label}: page {page_number} repeats page {page_number - 1}; does the "
                    f"endpoint support the '{config.page_param}' parameter? "
                    f"({self._file}: http.page_param)"
                )
            records.extend(items)
            if len(items) < config.page_size:
                return
            previous = items
            page_number += 1

    def _get_page(
        self, client: httpx.Client, params: Mapping[str, str | int], page_number: int
    ) -> dict:
        """One page as a JSON object, retrying what a later attempt can fix."""
        attempts = self._config.max_retries + 1
        where = f"{self.label}: page {page_number}"
        for attempt in range(attempts):
            retry_after = None
            try:
                # Merged by hand: httpx drops the URL's own query when given params.
                response = client.get(self._url.copy_merge_params(dict(params)))
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                # httpx messages name the host, never the headers; redact all the same.
                failure = self._redact(f"{type(exc).__name__} ({str(exc) or 'no details'})")
            except httpx.HTTPError as exc:
                raise SourceError(f"{where}: {self._redact(str(exc))}") from None
            else:
                if response.is_success:
                    return self._json(response, where)
                if response.status_code != 429 and response.status_code < 500:
                    raise SourceError(self._client_error(response, where))
                failure = f"HTTP {response.status_code} {response.reason_phrase}"
                if response.status_code in RETRY_AFTER_STATUSES:
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt + 1 < attempts:
                delay = self._config.backoff_seconds * 2**attempt
                if retry_after is not None:
                    delay = retry_after
                logger.warning(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    where,
                    failure,
                    delay,
                    attempt + 2,
                    attempts,
                )
                self._sleep(delay)
        raise SourceError(
            f"{where}: gave up after {attempts} attempt(s); last failure: {failure} "
            f"(retries are set by http.max_retries in {self._file})"
        )

    def _json(self, response: httpx.Response, where: str) -> dict:
        try:
            page = response.json()
        except ValueError:
            snippet = self._redact(response.text[:BODY_SHOWN])
            raise SourceError(f"{where}: the response is not valid JSON: {snippet!r}") from None
        if not isinstance(page, dict):
            raise SourceError(
                f"{where}: expected a JSON object with a '{self._config.items_field}' list, "
                f"got a JSON {type(page).__name__}"
            )
        return page

    def _items(self, page: dict, page_number: int) -> list[dict]:
        field = self._config.items_field
        items = page.get(field)
        where = f"{self.label}: page {page_number}"
        if not isinstance(items, list):
            keys = ", ".join(sorted(page)) or "none"
            raise SourceError(
                f"{where}: no '{field}' list in the response (keys: {keys}); "
                f"set http.items_field in {self._file}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise SourceError(
                    f"{where}: item {index + 1} of '{field}' is a JSON "
                    f"{type(item).__name__}, expected an object"
                )
        return items

    def _client_error(self, response: httpx.Response, where: str) -> str:
        status = f"HTTP {response.status_code} {response.reason_phrase}"
        token_env = self._config.token_env
        if response.status_code == 401:
            hint = f"check the token in ${token_env}"
        elif response.status_code == 403:
            hint = f"the token in ${token_env} is not allowed to read this endpoint"
        elif response.status_code == 404:
            hint = f"check http.url in {self._file}"
        elif response.is_redirect:
            target = response.headers.get("Location", "?")
            hint = f"the endpoint redirects to {target}; set http.url to the final address"
        else:
            hint = f"server said: {self._redact(response.text[:BODY_SHOWN])!r}"
        return f"{where}: {status}; {hint}"

    def _redact(self, text: str) -> str:
        """Servers sometimes echo request headers into errors; never pass the token on."""
        return text.replace(self._token.reveal(), "***")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
