from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sealbox.audit.service import Actor
from sealbox.ids import UserId
from sealbox.inputs import Input

BEARER: Literal["bearer"] = "bearer"  # the OAuth2 token type (RFC 6750)
Scope = Literal["full", "read"]
Kind = Literal["session", "login", "personal"]


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as established by ``AccountService.authenticate``."""

    user_id: UserId
    username: str
    is_admin: bool
    token_id: uuid.UUID
    scope: Scope
    kind: Kind = "personal"

    def actor(self, client: str | None) -> Actor:
        return Actor(self.username, self.user_id, client)


class UserRead(BaseModel):
    id: str
    username: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class UserCreate(Input):
    username: str = Field(description="1-64 letters, digits or '_.@-'")
    password: str = Field(description="8 to 1024 characters")
    is_admin: bool = False


class UserUpdate(Input):
    is_active: bool | None = Field(default=None, description="False disables the account at once")
    is_admin: bool | None = None


class PasswordReset(Input):
    password: str = Field(description="The new password, 8 to 1024 characters")


class PasswordChange(Input):
    current_password: str
    new_password: str = Field(description="8 to 1024 characters")


class TokenIssued(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = BEARER
    expires_at: datetime | None


class TokenCreate(Input):
    name: str = Field(description="1 to 100 characters, no control or invisible characters")
    scope: Scope = "full"
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="None: never expires")


class TokenRead(BaseModel):
    id: str
    name: str
    kind: Kind = Field(description="session: a signed-in browser; login: from /auth/token; personal: created here")
    scope: Scope
    created_at: datetime
    expires_at: datetime | None
    current: bool = Field(description="Whether this is the token making the request")


class TokenCreated(TokenRead):
    token: str = Field(description="The token itself: shown only this once")
