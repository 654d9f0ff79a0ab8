"""Log set-up for every churnbot process: JSON lines for machines, plain lines for people.

Under a process manager, a container or a platform, stderr is not a terminal: each record is
then one JSON object per line (``time``, ``level``, ``logger``, ``message``, and ``exception``
when there is one), which a log pipeline parses without a regex and which a multi-line
traceback cannot split. At a terminal a person reads plain lines instead.

gunicorn's own error and access logs go the same way (:class:`GunicornLogger`), so the web
process writes one format. Either way a log line never carries a secret: Slack tokens and the
passwords of URLs (e.g. a ``REDIS_URL`` quoted in a library's error) are masked in the message
and the traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from gunicorn.glogging import Logger

#: What a log line must not show, in one pattern so a line is scanned once (the web process
#: writes one per request): Slack tokens (bot/user/app-level/refresh/config tokens all start
#: like this), ``scheme://user:PASSWORD@host`` and ``?password=PASSWORD``.
_SECRET = re.compile(
    r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]+"
    r"|(?P<url>(?i:\b[a-z][a-z0-9+.-]*://[^:/@\s]*:))[^@\s/]+@"
    r"|(?P<query>(?i:[?&]password=))[^&\s]+"
)
_MASK = "***"
#: ``json.dumps(..., ensure_ascii=False)``, one encoder for every line (``json.dumps`` with an
#: option builds a new one per call; every digest posted writes a line).
_json_line = json.JSONEncoder(ensure_ascii=False).encode
_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _masked(found: re.Match[str]) -> str:
    if found["url"]:
        return f"{found['url']}{_MASK}@"
    return (found["query"] or "") + _MASK


def redact(text: str) -> str:
    """``text`` with Slack tokens and URL passwords replaced by ``***``."""
    return _SECRET.sub(_masked, text) if _may_hold_secret(text) else text


def _may_hold_secret(text: str) -> bool:
    """Whether ``text`` holds what every match of :data:`_SECRET` holds: ``xox`` or ``xapp``, or
    ``://`` and an ``@``, or an ``=``. Looking for those is a scan in C; the pattern is tried
    at every position of the text, which for an access line (none of them: Slack's user agent
    has a URL, without a password) was 3% of a feedback click's instructions."""
    return "xox" in text or "xapp" in text or "=" in text or ("://" in text and "@" in text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; times in UTC."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return _json_line(entry)


class PlainFormatter(logging.Formatter):
    """The classic ``time LEVEL logger: message`` line, secrets masked."""

    def __init__(self) -> None:
        super().__init__(_PLAIN)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests and tools swap it),
    never to a stream that was closed since start-up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """``StreamHandler.__init__`` assigns the stream; the property above always wins."""


#: The loggers of the slack-sdk clients churnbot uses (their module names).
SLACK_SDK_LOGGERS = ("slack_sdk.web.base_client", "slack_sdk.webhook.client")


def configure_logging(*, verbose: bool = False) -> None:
    """Send every logger's records to stderr, as JSON lines unless stderr is a terminal.

    Replaces the handler a previous call installed (the CLI runs once per process, tests run
    it many times) and leaves any other handler alone.
    """
    handler = _StderrHandler()
    handler.setFormatter(PlainFormatter() if sys.stderr.isatty() else JsonFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.DEBUG if verbose else logging.INFO
    root.setLevel(level)
    # slack-sdk formats a debug line (the request's and the response's bodies) on every call
    # unless its client loggers have a level of their own: it tests ``logger.level``, which
    # is NOTSET, not the level they inherit. They get the root's, so that is done only when
    # verbose (about 2% of a digest's CPU otherwise).
    for name in SLACK_SDK_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # One line per HTTP call would drown the output; failures still surface as errors.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)


#: An access log format atom naming one request header, response header or environ variable
#: (``%({x-slack-signature}i)s``, ``%({content-type}o)s``, ``%({wsgi.url_scheme}e)s``).
_HEADER_ATOM = re.compile(r"%\(\{[^}]*\}[ioe]\)")


class _Lookups:
    """The WSGI environ for the atoms gunicorn reads by name, listing none of its variables."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.get = environ.get
        self._environ = environ

    def __getitem__(self, key: str) -> Any:
        return self._environ[key]

    def items(self) -> tuple[()]:
        return ()


@dataclass(frozen=True)
class _Status:
    """A response as the access line reads it: its status and size, none of its headers."""

    status: Any
    sent: Any
    headers: tuple[()] = ()


class GunicornLogger(Logger):
    """gunicorn's ``logger_class``: its error and access records go through the root logger's
    handler (:func:`configure_logging`) instead of gunicorn's own plain-text handlers, so the
    web process logs JSON lines off a terminal like every other churnbot process."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            log.propagate = True
        self._header_atoms = bool(_HEADER_ATOM.search(cfg.access_log_format))

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """gunicorn's atoms for one access line, without one per request header, response
        header and environ variable unless the format names one (the default names none):
        building and escaping those for every request was most of a line's cost, about as
        much as the rest of a feedback click's own work in the web process."""
        if self._header_atoms:
            return super().atoms(resp, req, environ, request_time)
        bare = _Status(resp.status, getattr(resp, "sent", None))
        return super().atoms(bare, (), _Lookups(environ), request_time)
