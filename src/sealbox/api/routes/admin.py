"""Account administration (administrators only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sealbox.accounts.schemas import PasswordReset, UserCreate, UserRead, UserUpdate
from sealbox.api.deps import AdminUser, RuntimeDep, actor_of
from sealbox.api.errors import responses
from sealbox.api.ids import parse_id
from sealbox.ids import UserId

router = APIRouter(prefix="/api/v1/admin/users", tags=["administration"])


@router.get("", responses=responses(401, 403, 503))
async def list_users(runtime: RuntimeDep, admin: AdminUser) -> list[UserRead]:
    return await runtime.accounts.users()


@router.post("", status_code=201, responses=responses(400, 401, 403, 409, 422, 503))
async def create_user(body: UserCreate, request: Request, runtime: RuntimeDep, admin: AdminUser) -> UserRead:
    return await runtime.accounts.create_user(
        body.username, body.password, is_admin=body.is_admin, actor=actor_of(request, admin)
    )


@router.patch("/{user_id}", responses=responses(401, 403, 404, 409, 422, 503))
async def update_user(
    user_id: str, body: UserUpdate, request: Request, runtime: RuntimeDep, admin: AdminUser
) -> UserRead:
    """Disable or enable an account (takes effect at its next request), or change its role."""
    return await runtime.accounts.update_user(UserId(parse_id(user_id, "user")), body, actor_of(request, admin))


@router.post("/{user_id}/password", status_code=204, responses=responses(400, 401, 403, 404, 409, 422, 503))
async def reset_password(
    user_id: str, body: PasswordReset, request: Request, runtime: RuntimeDep, admin: AdminUser
) -> Response:
    """Set a new password for an account; all of its tokens stop working."""
    await runtime.accounts.reset_password(UserId(parse_id(user_id, "user")), body.password, actor_of(request, admin))
    return Response(status_code=204)


@router.delete("/{user_id}", status_code=204, responses=responses(401, 403, 404, 409, 422, 503))
async def delete_user(user_id: str, request: Request, runtime: RuntimeDep, admin: AdminUser) -> Response:
    """Delete an account with all its files (their keys go with them: unreadable at once)."""
    await runtime.delete_account(admin, UserId(parse_id(user_id, "user")), actor_of(request, admin))
    return Response(status_code=204)
