from __future__ import annotations

from fastapi import APIRouter, Request

from sealbox.accounts.schemas import TokenIssued
from sealbox.api.deps import RuntimeDep
from sealbox.api.errors import responses
from sealbox.errors import InvalidInput
from sealbox.web.context import client_of
from sealbox.web.forms import FORM, read_form

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                }
            }
        },
    }
}


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith(FORM):
        raise InvalidInput(f"send username and password as {FORM}")
    return await read_form(request)


@router.post("/token", openapi_extra=_FORM_SCHEMA, responses=responses(400, 401, 413, 429, 503))
async def token(request: Request, runtime: RuntimeDep) -> TokenIssued:
    """Exchange a user name and password for a bearer token (OAuth2 password flow)."""
    form = await _form(request)
    grant = form.get("grant_type")
    if grant not in (None, "", "password"):
        raise InvalidInput("grant_type must be 'password'")
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise InvalidInput("username and password are required")
    return await runtime.accounts.login(username, password, client_of(request))
