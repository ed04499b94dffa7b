from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from sealbox.accounts.schemas import TokenIssued
from sealbox.api.deps import RuntimeDep
from sealbox.api.errors import responses
from sealbox.errors import InvalidInput, TooLarge
from sealbox.web.context import client_of

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
MAX_FORM = 16 << 10

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
    """A small urlencoded form, read with a size cap (the route is unauthenticated)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise InvalidInput("send username and password as application/x-www-form-urlencoded")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_FORM:
            raise TooLarge(f"the form is larger than {MAX_FORM} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    return {key: values[0] for key, values in fields.items()}


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
