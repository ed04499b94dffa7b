"""Ids in URLs: anything malformed names nothing, so it is answered like a missing item."""

from __future__ import annotations

import uuid

from sealbox.errors import NotFound


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found") from None
