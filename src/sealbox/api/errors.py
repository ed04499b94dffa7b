"""Errors as ``application/problem+json`` (RFC 9457). HTTP statuses live only here."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from sealbox.errors import (
    AuthenticationFailed,
    ChecksumMismatch,
    Conflict,
    Gone,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    SealboxError,
    TooLarge,
    Unavailable,
)
from sealbox.logs import AlreadyLogged

log = structlog.get_logger()
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PROBLEM = "application/problem+json"

STATUS: list[tuple[type[SealboxError], int]] = [
    (TooLarge, 413),
    (ChecksumMismatch, 460),
    (InvalidInput, 400),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (RateLimited, 429),
    (IntegrityFailure, 500),
    (Unavailable, 503),
]
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    460: "Checksum Mismatch",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str


def status_of(exc: SealboxError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def problem(status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail, code=code)
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM, headers=headers)


def problem_for(exc: SealboxError) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = "5"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        # Never echo details of a server-side failure: they may describe stored data.
        log.warning("request.failed", code=exc.code, detail=exc.message)
        detail = "the file could not be read safely" if isinstance(exc, IntegrityFailure) else exc.message
        return problem(status, detail, exc.code, headers)
    return problem(status, exc.message, exc.code, headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations for the error statuses a route can answer."""
    return {status: {"model": Problem, "description": TITLES[status], "content": {PROBLEM: {}}} for status in statuses}


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route answers at this request's path (RFC 9110 §15.5.6: a 405
    lists them all, not only those of the first route that matched the path)."""
    allowed = []
    for method in METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def install(app: FastAPI) -> None:
    @app.exception_handler(SealboxError)
    async def _sealbox(_: Request, exc: SealboxError) -> JSONResponse:
        return problem_for(exc)

    # A schema built by a page from form fields fails like a request body: 422, not 500.
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return problem(422, "; ".join(parts) or "invalid request", "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return problem(exc.status_code, detail, "http_error", headers)

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client went away while sending its body (an upload); nothing was stored.
        # Not an error of ours: one line at INFO, naming the route, not the path (which
        # may hold a link token).
        log.info("request.disconnected", method=request.method, route=route_of(request))
        return problem(400, "the client disconnected", "client_disconnected")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, AlreadyLogged):
            log.error("request.crashed", route=route_of(request), error=type(exc).__name__, exc_info=exc)
        return problem(500, "internal error", "internal_error")


def route_of(request: Request) -> str | None:
    """The matched route's template (``/s/{token}/download``): safe to log, unlike the path."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
