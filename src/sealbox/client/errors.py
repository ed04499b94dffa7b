"""Typed exceptions, mapped from the server's ``application/problem+json`` answers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The server refused or failed a request; ``detail`` is its one-line reason."""

    status: int = 0

    def __init__(self, detail: str, status: int | None = None, code: str = "", retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status if status is not None else self.status
        self.code = code
        self.retry_after = retry_after


class ValidationError(ApiError):
    status = 400


class AuthenticationError(ApiError):
    status = 401


class ForbiddenError(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class ConflictError(ApiError):
    status = 409


class GoneError(ApiError):
    status = 410


class TooLargeError(ApiError):
    status = 413


class RateLimitedError(ApiError):
    status = 429


class ChecksumMismatch(ApiError):
    status = 460


class ServerError(ApiError):
    status = 500


class UnsafePathError(ApiError):
    """A link listed a path that could leave the download's directory ("../x", "/etc/x"):
    nothing is written for it."""


class TransportError(ApiError):
    """The server could not be reached, or the connection broke, after every retry."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    412: ValidationError,
    415: ValidationError,
    422: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: TooLargeError,
    416: ValidationError,
    429: RateLimitedError,
    460: ChecksumMismatch,
}


def error_for(status: int, body: bytes, headers: dict[str, str]) -> ApiError:
    detail, code = f"the server answered {status}", ""
    try:
        import json

        problem: Any = json.loads(body)
        detail = str(problem.get("detail") or detail)
        code = str(problem.get("code") or "")
    except (ValueError, AttributeError):
        pass
    retry = headers.get("retry-after")
    cls = BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(detail, status, code, int(retry) if retry and retry.isdigit() else None)
