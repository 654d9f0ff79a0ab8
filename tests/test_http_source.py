"""HttpAccountSource against a real HTTP server on a loopback port, not a mocked transport."""

from __future__ import annotations

import csv
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from models.contract import load_schema
from models.errors import ConfigError, DataContractError, SourceError
from models.http_source import HttpAccountSource
from models.sources_config import HttpSourceConfig, SourcesConfig

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "config" / "schema.yaml")
TOKEN = "tok-3f9a1c-SECRET"
ENV = {"CHURNBOT_SOURCE_TOKEN": TOKEN}
LENIENT = SourcesConfig(max_reject_share=1.0)


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    authorization: str | None


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeApi:
    """A loopback server whose answers a test scripts through ``respond``."""

    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    respond: Callable[[Seen], Reply] = lambda seen: (500, {}, b"not scripted")
    release: threading.Event = field(default_factory=threading.Event)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that timed out closes the socket; that is the point of the test."""


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            seen = Seen(url.path, dict(parse_qsl(url.query)), self.headers.get("Authorization"))
            fake.requests.append(seen)
            status, headers, body = fake.respond(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output clean."""

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/accounts"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def records(count: int) -> list[dict]:
    """Valid account records with JSON types: numbers as numbers, empty cells as null."""
    with (Path(__file__).parent / "data" / "accounts_good.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for index in range(count):
        record: dict = {}
        for name, value in rows[index % len(rows)].items():
            kind = SCHEMA.columns[name].type
            if value == "":
                record[name] = None
            elif kind == "int":
                record[name] = int(value)
            elif kind == "float":
                record[name] = float(value)
            elif kind == "bool":
                record[name] = value in ("true", "yes")
            else:
                record[name] = value
        record["account_id"] = f"A-{index + 1:03d}"
        out.append(record)
    return out


def as_json(payload: object, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def authorised(handler: Callable[[Seen], Reply]) -> Callable[[Seen], Reply]:
    """Answer 401 unless the request carries the right bearer token, as a real API would."""

    def respond(seen: Seen) -> Reply:
        if seen.authorization != f"Bearer {TOKEN}":
            return as_json({"error": "invalid token"}, status=401)
        return handler(seen)

    return respond


def cursor_pages(items: list[dict]) -> Callable[[Seen], Reply]:
    def respond(seen: Seen) -> Reply:
        start = int(seen.query.get("cursor", "0"))
        size = int(seen.query["page_size"])
        end = start + size
        following = str(end) if end < len(items) else None
        return as_json({"items": items[start:end], "next_cursor": following})

    return authorised(respond)


def numbered_pages(items: list[dict]) -> Callable[[Seen], Reply]:
    def respond(seen: Seen) -> Reply:
        page, size = int(seen.query["page"]), int(seen.query["page_size"])
        return as_json({"items": items[(page - 1) * size : page * size]})

    return authorised(respond)


def config(api: FakeApi, **overrides: object) -> HttpSourceConfig:
    settings: dict = {"url": api.url, "page_size": 2, "max_retries": 2, "backoff_seconds": 0.5}
    settings["timeout_seconds"] = 5.0
    settings.update(overrides)
    return HttpSourceConfig(**settings)


def source(api: FakeApi, sleeps: list[float] | None = None, **overrides: object):
    sleeps = [] if sleeps is None else sleeps
    return HttpAccountSource(config(api, **overrides), environ=ENV, sleep=sleeps.append)


def test_cursor_pagination_follows_next_cursor_until_null(api: FakeApi) -> None:
    api.respond = cursor_pages(records(5))

    result = source(api).load(SCHEMA, SourcesConfig())

    assert [seen.query.get("cursor") for seen in api.requests] == [None, "2", "4"]
    assert {seen.query["page_size"] for seen in api.requests} == {"2"}
    assert result.frame["account_id"].tolist() == [f"A-{i:03d}" for i in range(1, 6)]
    assert result.frame["tenure_months"].dtype == "int64"
    assert result.rejects == ()


@pytest.mark.parametrize(("count", "pages"), [(5, ["1", "2", "3"]), (4, ["1", "2", "3"])])
def test_page_pagination_stops_at_a_short_or_empty_page(
    api: FakeApi, count: int, pages: list[str]
) -> None:
    api.respond = numbered_pages(records(count))

    fetched = source(api, pagination="page").fetch_records()

    assert [seen.query["page"] for seen in api.requests] == pages
    assert len(fetched) == count


def test_the_bearer_token_is_sent_from_the_named_environment_variable(api: FakeApi) -> None:
    api.respond = cursor_pages(records(1))
    settings = config(api, token_env="THEIR_API_TOKEN")

    HttpAccountSource(settings, environ={"THEIR_API_TOKEN": TOKEN}).fetch_records()

    assert api.requests[0].authorization == f"Bearer {TOKEN}"


def test_a_missing_token_variable_is_named() -> None:
    settings = HttpSourceConfig(url="http://127.0.0.1:9/accounts", token_env="THEIR_API_TOKEN")

    with pytest.raises(SourceError, match=r"environment variable \$THEIR_API_TOKEN, which is not"):
        HttpAccountSource(settings, environ={})


def test_a_server_error_is_retried_with_backoff(api: FakeApi) -> None:
    pages = cursor_pages(records(3))
    api.respond = lambda seen: (500, {}, b"boom") if len(api.requests) == 1 else pages(seen)
    sleeps: list[float] = []

    fetched = source(api, sleeps).fetch_records()

    assert len(fetched) == 3
    assert len(api.requests) == 3  # page 1 twice, then page 2
    assert sleeps == [0.5]


def test_a_persistent_503_gives_up_after_max_retries_plus_one_attempts(api: FakeApi) -> None:
    api.respond = lambda seen: (503, {}, b"down")
    sleeps: list[float] = []

    with pytest.raises(
        SourceError,
        match=(
            r"/accounts: page 1: gave up after 3 attempt\(s\); last failure: HTTP 503 Service "
            r"Unavailable \(retries are set by http\.max_retries"
        ),
    ):
        source(api, sleeps).fetch_records()

    assert len(api.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_honoured_on_429(api: FakeApi) -> None:
    pages = cursor_pages(records(1))
    busy = (429, {"Retry-After": "7"}, b"slow down")
    api.respond = lambda seen: busy if len(api.requests) == 1 else pages(seen)
    sleeps: list[float] = []

    source(api, sleeps).fetch_records()

    assert sleeps == [7.0]


def test_a_retry_after_date_in_the_past_means_no_wait(api: FakeApi) -> None:
    pages = cursor_pages(records(1))
    busy = (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"maintenance")
    api.respond = lambda seen: busy if len(api.requests) == 1 else pages(seen)
    sleeps: list[float] = []

    source(api, sleeps).fetch_records()

    assert sleeps == [0.0]


def test_a_401_fails_at_once_with_a_hint_and_without_the_token(api: FakeApi) -> None:
    api.respond = cursor_pages(records(1))
    settings = config(api)
    wrong = HttpAccountSource(settings, environ={"CHURNBOT_SOURCE_TOKEN": "wrong-token-123"})

    with pytest.raises(
        SourceError,
        match=r"page 1: HTTP 401 Unauthorized; check the token in \$CHURNBOT_SOURCE_TOKEN$",
    ) as caught:
        wrong.fetch_records()

    assert "wrong-token-123" not in str(caught.value)
    assert len(api.requests) == 1


def test_the_token_never_reaches_errors_logs_or_repr(
    api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"error": "bad request", "headers": {"Authorization": f"Bearer {TOKEN}"}}
    replies = iter([(502, {}, f"upstream rejected Bearer {TOKEN}".encode()), as_json(echo, 400)])
    api.respond = lambda seen: next(replies)
    caplog.set_level(logging.DEBUG)
    http = source(api)

    with pytest.raises(
        SourceError, match=r"HTTP 400 Bad Request; server said: .*Bearer \*\*\*"
    ) as e:
        http.fetch_records()

    assert api.requests[0].authorization == f"Bearer {TOKEN}"
    assert "HTTP 502" in caplog.text
    for text in (str(e.value), repr(http), repr(vars(http)), caplog.text):
        assert TOKEN not in text


def test_a_refused_connection_is_retried_then_reported(api: FakeApi) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sleeps: list[float] = []
    http = source(api, sleeps, url=f"http://127.0.0.1:{closed_port}/accounts")

    with pytest.raises(SourceError, match=r"gave up after 3 attempt\(s\); last failure: Connect"):
        http.fetch_records()

    assert sleeps == [0.5, 1.0]


def test_a_slow_endpoint_times_out_and_is_retried(api: FakeApi) -> None:
    def stall(seen: Seen) -> Reply:
        api.release.wait(timeout=10)
        return as_json({"items": []})

    api.respond = stall

    with pytest.raises(
        SourceError, match=r"gave up after 2 attempt\(s\); last failure: ReadTimeout"
    ):
        source(api, timeout_seconds=0.2, max_retries=1).fetch_records()

    assert len(api.requests) == 2


def test_malformed_json_names_the_page(api: FakeApi) -> None:
    first = cursor_pages(records(3))
    api.respond = lambda seen: (
        first(seen) if len(api.requests) == 1 else (200, {}, b"<html>oops</html>")
    )

    with pytest.raises(SourceError, match=r"/accounts: page 2: the response is not valid JSON"):
        source(api).fetch_records()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"data": []}, r"page 1: no 'items' list in the response \(keys: data\)"),
        ([1, 2], r"page 1: expected a JSON object with a 'items' list, got a JSON list"),
        ({"items": [1]}, r"page 1: item 1 of 'items' is a JSON int, expected an object"),
    ],
)
def test_a_page_of_the_wrong_shape_is_reported(api: FakeApi, payload: object, message: str) -> None:
    api.respond = lambda seen: as_json(payload)

    with pytest.raises(SourceError, match=message):
        source(api).fetch_records()


def test_bad_records_are_quarantined_with_record_numbers_across_pages(api: FakeApi) -> None:
    items = records(5)
    items[3]["nps"] = 42
    items[3]["plan"] = "gold"
    api.respond = cursor_pages(items)

    result = source(api).load(SCHEMA, LENIENT)

    assert [(r.record, r.column, r.value) for r in result.rejects] == [
        (4, "plan", "gold"),
        (4, "nps", "42"),
    ]
    assert result.record_label == "record"
    assert len(result.frame) == 4


def test_reports_name_the_url_without_its_query(api: FakeApi) -> None:
    items = records(3)
    items[0]["arr"] = "lots"
    api.respond = cursor_pages(items)
    http = source(api, url=f"{api.url}?api_key=abc123")

    with pytest.raises(
        DataContractError, match=r"^http://127\.0\.0\.1:\d+/accounts: 1 of 3 rows"
    ) as e:
        http.load(SCHEMA, SourcesConfig())

    assert "abc123" not in str(e.value)
    assert api.requests[0].query["api_key"] == "abc123"


def test_an_empty_endpoint_is_an_error(api: FakeApi) -> None:
    api.respond = cursor_pages([])

    with pytest.raises(SourceError, match="returned no account records"):
        source(api).load(SCHEMA, SourcesConfig())


def test_a_repeated_cursor_stops_instead_of_looping(api: FakeApi) -> None:
    api.respond = authorised(lambda seen: as_json({"items": records(2), "next_cursor": "same"}))

    with pytest.raises(SourceError, match=r"page 2: the server sent the cursor 'same' again"):
        source(api).fetch_records()


def test_a_page_parameter_the_server_ignores_is_caught(api: FakeApi) -> None:
    api.respond = authorised(lambda seen: as_json({"items": records(2)}))

    with pytest.raises(SourceError, match=r"page 2 repeats page 1"):
        source(api, pagination="page").fetch_records()


def test_a_url_that_is_not_http_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"http\.url: expected an http:// or https:// address"):
        HttpAccountSource(HttpSourceConfig(url="ftp://example.com/x"), environ=ENV)


def test_errors_name_the_sources_file_in_use() -> None:
    config = HttpSourceConfig(url="ftp://example.com/accounts")
    with pytest.raises(ConfigError, match=r"^their-config/sources\.yaml: http\.url: expected"):
        HttpAccountSource(config, environ={}, source_file=Path("their-config/sources.yaml"))
