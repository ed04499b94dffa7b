"""Dependencies shared by the routes: the runtime and the authenticated caller.

The callers come from ``sealbox.web.auth``, the one place where every surface asks the
authority (``sealbox.accounts.authority``) who may do what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sealbox.accounts.schemas import Principal
from sealbox.audit.service import Actor
from sealbox.runtime import Runtime
from sealbox.web.auth import AdminUser, CurrentUser, Reader, WritingUser
from sealbox.web.context import client_of, runtime_of

RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

__all__ = ["AdminUser", "CurrentUser", "Reader", "RuntimeDep", "WritingUser", "actor_of"]


def actor_of(request: Request, user: Principal) -> Actor:
    return user.actor(client_of(request))
