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
from typing import Any, TextIO

from gunicorn.glogging import Logger

#: Slack tokens: bot/user/app-level/refresh/config tokens all start like this.
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]+")
#: ``scheme://user:PASSWORD@host`` and ``?password=PASSWORD``.
_URL_PASSWORD = re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<keep>[?&]password=)[^&\s]+", re.IGNORECASE)
_MASK = "***"
_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """``text`` with Slack tokens and URL passwords replaced by ``***``."""
    text = _SLACK_TOKEN.sub(_MASK, text)
    text = _URL_PASSWORD.sub(rf"\g<keep>{_MASK}@", text)
    return _QUERY_PASSWORD.sub(rf"\g<keep>{_MASK}", text)


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
        return json.dumps(entry, ensure_ascii=False)


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
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # One line per HTTP call would drown the output; failures still surface as errors.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)


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
