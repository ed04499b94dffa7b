"""A folder's listing pages through every item exactly once, in order, whatever the sort,
order and filter, with the dates and ids each backend's driver returns (SQLite and
PostgreSQL); a cursor that was altered is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from sealbox.errors import InvalidInput
from sealbox.files.folders import Entry, FolderService
from sealbox.models import File
from tests.unit.test_rotation import ACTOR, World, _chunks, _url, run

NAMES = ["b.txt", "B.txt", "a.txt", "c lima.txt", "Lima.pdf", "d.txt", "e.txt", "lima (2).pdf"]


def _expected(items: list[Entry], sort: str, order: str, q: str | None) -> list[str]:
    """The listing order the API documents: folders first, then files, each by ``sort``
    in ``order``, ties by name (ignoring case, then exactly), then id."""
    if q:
        items = [item for item in items if q.casefold() in item.name.casefold()]

    def key(item: Entry) -> tuple[Any, ...]:
        primary: Any = {
            "name": item.name.casefold(),
            "size": item.size or 0,
            "created": item.created_at,
        }[sort]
        return (primary, item.name.casefold(), item.name, item.id)

    ordered: list[str] = []
    for kind in ("folder", "file"):
        group = sorted((i for i in items if i.kind == kind), key=key, reverse=order == "desc")
        ordered += [i.id for i in group]
    return ordered


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_item_is_listed_once_in_order_across_pages(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    async def scenario(w: World) -> None:
        folders = FolderService(w.files)
        box = uuid.UUID((await folders.create(w.owner, None, "box", ACTOR)).id)
        for name in ("sub B", "sub a", "lima sub"):
            await folders.create(w.owner, box, name, ACTOR)
        made = []
        for n, name in enumerate(NAMES):
            # Sizes with ties; dates with ties and microseconds.
            data = b"x" * (n % 3)
            made.append((await w.files.upload(w.owner, name, None, _chunks(data), ACTOR)).id)
        async with w.db.write() as session:
            for n, file_id in enumerate(made):
                when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=(n % 4) * 250_001)
                await session.execute(
                    update(File).where(File.id == uuid.UUID(file_id)).values(folder_id=box, created_at=when)
                )
        everything = (await folders.page(w.owner, box, limit=1000)).items
        assert len(everything) == len(NAMES) + 3
        assert {item.id for item in everything if item.kind == "file"} == set(made)
        file_dates = {item.created_at for item in everything if item.kind == "file"}
        assert datetime(2026, 1, 1, 0, 0, 0, 250_001, tzinfo=UTC) in file_dates  # microseconds kept, in UTC
        for sort in ("name", "size", "created"):
            for order in ("asc", "desc"):
                for q in (None, "LIMA"):
                    seen: list[str] = []
                    cursor = None
                    while True:
                        page = await folders.page(w.owner, box, sort=sort, order=order, query=q, limit=2, cursor=cursor)  # type: ignore[arg-type]
                        seen += [item.id for item in page.items]
                        assert page.total == len(_expected(everything, sort, order, q))
                        cursor = page.next_cursor
                        if cursor is None:
                            break
                    assert seen == _expected(everything, sort, order, q), (sort, order, q)

    run(tmp_path, scenario, _url(request, backend))


def _cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "parts",
    [
        ["name", "asc", 1, 5, "a", "a", str(uuid.uuid4())],  # a size where a name belongs
        ["size", "asc", 1, "a", "a", "a", str(uuid.uuid4())],  # a name where a size belongs
        ["name", "asc", True, "a", "a", "a", str(uuid.uuid4())],
        ["name", "asc", 1, "a", "a", "a", "not an id"],
        ["name", "asc", 1, "a", "a", None, str(uuid.uuid4())],
        ["name", "asc", 1, "a"],
        {"sort": "name"},
    ],
)
def test_an_altered_cursor_is_refused(tmp_path: Path, parts: Any) -> None:
    async def scenario(w: World) -> None:
        folders = FolderService(w.files)
        await w.files.upload(w.owner, "a.txt", None, _chunks(b"a"), ACTOR)
        sort = parts[0] if isinstance(parts, list) else "name"
        with pytest.raises(InvalidInput, match="the cursor is not valid"):
            await folders.page(w.owner, None, sort=sort, cursor=_cursor(parts))

    run(tmp_path, scenario)
