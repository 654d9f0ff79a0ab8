"""Logs: one JSON object per line when stderr is not a terminal, plain lines on a terminal, and
never a secret either way; driven through the real CLI where a command logs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from bot.cli import main
from bot.emulator import SlackEmulator
from bot.logs import _SECRET, SLACK_SDK_LOGGERS, GunicornLogger, _masked, configure_logging, redact
from bot.state.store import _embedded_server

TOKEN = "xoxb-1234567890-abcdefABCDEF"
APP_TOKEN = "xapp-1-A0123-456-abcdef"
PASSWORD = "hunter2-s3cret"
SECRETS_MESSAGE = (
    f"calling Slack with {TOKEN} and {APP_TOKEN}; Redis at redis://:{PASSWORD}@db:6379/0 "
    f"and rediss://churn:{PASSWORD}@db:6380/1?password={PASSWORD}"
)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging and gunicorn change loggers: put back their handlers and levels."""
    names = ("", "gunicorn.error", "gunicorn.access", "httpx", *SLACK_SDK_LOGGERS)
    loggers = [logging.getLogger(name) for name in names]
    saved = [(list(log.handlers), log.level, log.propagate) for log in loggers]
    _embedded_server.cache_clear()
    yield
    for log, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        log.handlers[:] = handlers
        log.setLevel(level)
        log.propagate = propagate
    _embedded_server.cache_clear()


def _json_lines(text: str) -> list[dict[str, str]]:
    """Every non-empty line parsed as JSON; fails on the first line that is not."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_command_logs_json_lines_on_stderr_and_its_result_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # REDIS_URL is unset (the conftest cleans it), so connecting logs the embedded-store warning.
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path))
    capsys.readouterr()
    code = main(["feedback", "forget", "U0123ABCD"])
    out, err = capsys.readouterr()

    assert code == 0, out + err
    assert out.strip() == "Erased the user from 0 feedback events."
    records = _json_lines(err)
    warning = [r for r in records if "REDIS_URL is not set" in r["message"]]
    assert len(warning) == 1, err
    assert set(warning[0]) == {"time", "level", "logger", "message"}
    assert warning[0]["level"] == "WARNING"
    assert warning[0]["logger"] == "bot.state.store"
    assert warning[0]["time"].endswith("+00:00")


def test_json_lines_mask_secrets_in_messages_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging()
    log = logging.getLogger("churnbot.test")

    log.info(SECRETS_MESSAGE)
    try:
        raise RuntimeError(f"token {TOKEN} refused")
    except RuntimeError:
        log.exception("posting failed for %s", "C0123")

    text = stderr.getvalue()
    assert TOKEN not in text
    assert APP_TOKEN not in text
    assert PASSWORD not in text
    first, second = _json_lines(text)
    assert first["message"] == (
        "calling Slack with *** and ***; Redis at redis://:***@db:6379/0 "
        "and rediss://churn:***@db:6380/1?password=***"
    )
    assert second["message"] == "posting failed for C0123"
    assert second["level"] == "ERROR"
    assert "RuntimeError: token *** refused" in second["exception"]


def test_a_terminal_gets_plain_lines_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging(verbose=True)

    logging.getLogger("churnbot.test").debug(SECRETS_MESSAGE)

    text = stderr.getvalue()
    assert not text.lstrip().startswith("{")
    assert " DEBUG churnbot.test: calling Slack with *** and ***" in text
    assert PASSWORD not in text


def test_configuring_twice_keeps_one_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging()
    configure_logging()

    logging.getLogger("churnbot.test").warning("once")

    assert [r["message"] for r in _json_lines(stderr.getvalue())] == ["once"]


@pytest.mark.parametrize("verbose", [False, True])
def test_slack_sdk_builds_its_debug_lines_only_when_verbose(
    monkeypatch: pytest.MonkeyPatch, verbose: bool
) -> None:
    """slack-sdk tests its logger's own level before formatting a call's bodies for debug:
    configured, that level follows churnbot's, so a plain run formats and logs none."""
    from slack_sdk import WebClient

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging(verbose=verbose)
    seen: list[logging.LogRecord] = []
    client_logger = logging.getLogger(SLACK_SDK_LOGGERS[0])
    client_logger.addFilter(lambda record: seen.append(record) or True)
    try:
        with SlackEmulator() as slack:
            WebClient(base_url=slack.base_url, token=slack.token).auth_test()
    finally:
        client_logger.filters.clear()

    assert (client_logger.level <= logging.DEBUG) is verbose
    assert bool([r for r in seen if r.levelno == logging.DEBUG]) is verbose


def test_gunicorn_logs_through_the_same_json_lines_and_nothing_on_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging()
    config = Config()
    config.set("accesslog", "-")  # as `churnbot serve` sets it

    gunicorn = GunicornLogger(config)
    gunicorn.info("Booting worker with pid: %s", 42)
    gunicorn.access_log.info("POST /slack/events 200")

    records = [(r["logger"], r["level"], r["message"]) for r in _json_lines(stderr.getvalue())]
    assert records == [
        ("gunicorn.error", "INFO", "Booting worker with pid: 42"),
        ("gunicorn.access", "INFO", "POST /slack/events 200"),
    ]
    assert stdout.getvalue() == ""


def _access_line(logger: Logger, config: Config) -> str:
    """The access line ``logger`` formats for one feedback click (at a fixed time)."""
    logger.now = lambda: "[30/Nov/2026:16:00:00 +0000]"
    response = SimpleNamespace(
        status="200 OK", sent=0, headers=[("Content-Type", "text/plain; charset=utf-8")]
    )
    request = SimpleNamespace(
        headers=[("USER-AGENT", "Slackbot 1.0"), ("X-SLACK-SIGNATURE", "v0=abc")]
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/slack/events",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": "Slackbot 1.0",
        "HTTP_REFERER": 'https://example.com/"quoted"',
        "wsgi.url_scheme": "https",
    }
    atoms = logger.atoms(response, request, environ, dt.timedelta(microseconds=2_500))
    return str(config.access_log_format % logger.atoms_wrapper_class(atoms))


#: An access log format that names a request header, a response header and an environ variable.
WITH_HEADERS = (
    '%(h)s "%(r)s" %(s)s %({x-slack-signature}i)s %({content-type}o)s %({wsgi.url_scheme}e)s'
)


@pytest.mark.parametrize("access_format", [None, WITH_HEADERS])
def test_the_access_line_is_gunicorns_own(access_format: str | None) -> None:
    """The access log's atoms are built lighter (no atom per header and environ variable
    unless the format names one), and the line reads exactly as gunicorn's own."""
    config = Config()
    config.set("accesslog", "-")
    if access_format is not None:
        config.set("access_log_format", access_format)
    ours = _access_line(GunicornLogger(config), config)
    assert ours == _access_line(Logger(config), config)
    if access_format is not None:
        assert ours.endswith("v0=abc text/plain; charset=utf-8 https")


@pytest.mark.parametrize(
    "text",
    [
        SECRETS_MESSAGE,
        '10.0.0.7 - - [30/Nov/2026:20:19:00 +0000] "POST /slack/events HTTP/1.1" 200 0 "-" '
        '"Slackbot 1.0 (+https://api.slack.com/robots)"',
        "no secret here",
        "xoxb-1",
        "xapp-1-A",
        "XOXB-1 and xoxz-1",
        "HTTPS://u:p@h",
        "redis://:p@h",
        "redis://h and later user@example.com",
        "redis://h/0",
        "a@b then x://c:d",
        "?PassWord=abc",
        "&password=",
        "a=b",
        "",
    ],
)
def test_a_text_without_what_a_secret_needs_is_left_as_is_unscanned(text: str) -> None:
    """``redact`` skips the pattern for a text that cannot match it: the same result."""
    assert redact(text) == _SECRET.sub(_masked, text)
