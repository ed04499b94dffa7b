"""Request helpers shared by the API and the pages."""

from __future__ import annotations

from fastapi import Request

from sealbox.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept
