"""The signed-in account: who am I, password, personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sealbox.accounts.schemas import PasswordChange, TokenCreate, TokenCreated, TokenRead, UserRead
from sealbox.api.deps import CurrentUser, RuntimeDep, WritingUser, actor_of
from sealbox.api.errors import responses
from sealbox.api.ids import parse_id

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("", responses=responses(401, 503))
async def me(runtime: RuntimeDep, user: CurrentUser) -> UserRead:
    return await runtime.accounts.user(user.user_id)


@router.post("/password", status_code=204, responses=responses(400, 401, 403, 422, 429, 503))
async def change_password(change: PasswordChange, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    """Change your password. Every other token of your account stops working.

    A wrong current password counts as a failed sign-in of your account (429 past the limit)."""
    await runtime.accounts.change_password(user, change, actor_of(request, user))
    return Response(status_code=204)


@router.get("/tokens", responses=responses(401, 503))
async def list_tokens(runtime: RuntimeDep, user: CurrentUser) -> list[TokenRead]:
    return await runtime.accounts.tokens(user)


@router.post("/tokens", status_code=201, responses=responses(400, 401, 403, 422, 503))
async def create_token(body: TokenCreate, request: Request, runtime: RuntimeDep, user: WritingUser) -> TokenCreated:
    """Create a personal API token (`full`, or `read` for downloads and listings only)."""
    return await runtime.accounts.create_token(user, body, actor_of(request, user))


@router.delete("/tokens/{token_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def revoke_token(token_id: str, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    """Revoke one of your tokens; it stops working at the next request."""
    await runtime.accounts.revoke_token(user, parse_id(token_id, "token"), actor_of(request, user))
    return Response(status_code=204)
