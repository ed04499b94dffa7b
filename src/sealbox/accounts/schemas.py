from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from sealbox.ids import UserId


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
    token_type: str = "bearer"
    expires_at: datetime | None
