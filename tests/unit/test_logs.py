"""The log configuration: every record, ours or a library's, is one JSON line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sealbox.logs import AlreadyLogged, configure_logging


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """What the configured handler writes (to stderr in the server)."""
    configure_logging()
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    handler.setStream(written)
    yield written
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(stderr: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.getvalue().splitlines()]


def fail() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("logger", ["uvicorn.error", "uvicorn.asgi", "asyncio", "py.warnings", "sealbox"])
def test_library_records_with_tracebacks_are_one_json_line(stderr: io.StringIO, logger: str) -> None:
    try:
        fail()
    except ValueError:
        logging.getLogger(logger).error("Exception in ASGI application\n", exc_info=True)
    [record] = lines(stderr)
    assert record["level"] == "error"
    assert record["logger"] == logger
    assert "ValueError: boom" in str(record["exception"])


def test_our_events_with_tracebacks_are_one_json_line(stderr: io.StringIO) -> None:
    try:
        fail()
    except ValueError as exc:
        structlog.get_logger().error("request.crashed", error="ValueError", exc_info=exc)
    [record] = lines(stderr)
    assert record["event"] == "request.crashed"
    assert "Traceback" in str(record["exception"])


def test_uvicorn_info_and_access_lines_are_not_written(stderr: io.StringIO) -> None:
    # An access line holds the path, and link paths hold tokens.
    logging.getLogger("uvicorn.access").warning('127.0.0.1 - "GET /s/secret-token HTTP/1.1" 200')
    logging.getLogger("uvicorn.error").info("Started server process")
    assert lines(stderr) == []


def test_an_exception_already_logged_is_not_reported_again(stderr: io.StringIO) -> None:
    try:
        raise AlreadyLogged("integrity_failure")
    except AlreadyLogged:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=True)
    assert lines(stderr) == []
