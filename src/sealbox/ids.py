"""Typed ids shared by the domains."""

from __future__ import annotations

import uuid
from typing import NewType

UserId = NewType("UserId", uuid.UUID)
FileId = NewType("FileId", uuid.UUID)
