from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class FileRead(BaseModel):
    id: str
    name: str
    size: int
    content_type: str
    created_at: datetime
    etag: str
    folder_id: str | None = None  # the folder it is in; null: the top


class FilePage(BaseModel):
    items: list[FileRead]
    next_cursor: str | None
