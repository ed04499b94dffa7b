from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from sealbox.ids import UserId

BEARER: Literal["bearer"] = "bearer"  # the OAuth2 token type (RFC 6750)


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as established by ``AccountService.authenticate``."""

    user_id: UserId
    username: str
    is_admin: bool


class UserRead(BaseModel):
    id: str
    username: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class TokenIssued(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = BEARER
    expires_at: datetime | None
