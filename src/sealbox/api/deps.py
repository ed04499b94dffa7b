"""Dependencies shared by the routes: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sealbox.accounts.schemas import Principal
from sealbox.errors import AuthenticationFailed
from sealbox.runtime import Runtime

# auto_error=False: a missing token is answered by our own problem+json 401.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_user(runtime: RuntimeDep, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
    if not token:
        raise AuthenticationFailed("an 'Authorization: Bearer' token is required")
    return await runtime.accounts.authenticate(token)


CurrentUser = Annotated[Principal, Depends(current_user)]
