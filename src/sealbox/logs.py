"""Structured logs: one JSON object per line on stderr, for every line the server writes.

Our own events (``structlog``) and every standard-library logger (uvicorn's error and
access loggers, asyncio's, warnings) go through the same renderer, so a traceback, when
there is one, is a field of a one-line JSON object instead of lines of text.

Never log tokens, passwords, keys, file names or request paths (link paths carry tokens).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

CONFIG_FILE = Path(__file__).with_name("logging.json")
_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


class AlreadyLogged(Exception):
    """Raised to cut a response short after the reason was logged as one event.

    The ASGI server reports every exception that escapes the application; this one was
    already reported, so ``DropAlreadyLogged`` removes the server's second, longer report.
    """


class DropAlreadyLogged(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AlreadyLogged))


def json_formatter() -> logging.Formatter:
    """The formatter of every handler: records of any logger as one JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, _STAMP],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def log_config(level: int = logging.INFO) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the server and the CLI, from ``logging.json``
    (which ``sealbox serve`` also hands to uvicorn as its ``--log-config``).

    uvicorn's loggers stay at WARNING and its access log is off: an access line holds the
    request's path and query, where link tokens live. The reverse proxy keeps a masked
    access log instead (docs/deploy.md).
    """
    config: dict[str, Any] = json.loads(CONFIG_FILE.read_text())
    config["root"]["level"] = logging.getLevelName(level)
    return config


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("sealbox").critical("uncaught", exc_info=(kind, exc, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def configure_logging(level: int = logging.INFO) -> None:
    logging.config.dictConfig(log_config(level))
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _STAMP,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
