"""The folder commands of ``sealbox``: ``mkdir``, ``mv`` and ``ls``, on paths written from
the top of your files ("photos/2024"; a leading "/" is allowed, "" or "/" is the top).
Exit codes as in ``sealbox.cli.client``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

import typer

from sealbox.cli.client import EXIT_NOT_FOUND, EXIT_REFUSED, JsonOpt, ProfileOpt, _print, client, fail, out
from sealbox.client import Client, Item, NotFoundError

# The server's bounds, checked here first so that a mistake gets a clear message at once.
MAX_PATH = 4096
MAX_QUERY = 255
EXIT_USAGE = 2


def remote_path(value: str) -> str:
    """A path as the server takes it ("/a/b/" → "a/b"), bounded."""
    if len(value) > MAX_PATH:
        fail(f"a path is at most {MAX_PATH} characters", EXIT_USAGE)
    stripped = value.strip("/")
    if "//" in stripped:
        fail(f"a path has no empty parts: {value!r}", EXIT_USAGE)
    return stripped


def find(sdk: Client, path: str) -> Item | None:
    """What is at ``path`` (None for the top); exit 3 if nothing is."""
    try:
        return sdk.lookup(path)
    except NotFoundError:
        fail(f"nothing at {path or '/'}", EXIT_NOT_FOUND)


def mkdir(
    paths: Annotated[list[str], typer.Argument(help="Folder paths, e.g. photos/2024 (parents are made too)")],
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Make folders, with their parents as needed; an existing folder is fine."""
    wanted = [remote_path(path) for path in paths]
    made = []
    with client(profile) as sdk:
        for path in wanted:
            if not path:
                fail("the top exists already: name a folder", EXIT_USAGE)
            folder = sdk.make_path(path)
            assert folder is not None
            made.append({"id": folder.id, "path": path})
            if not as_json:
                out.print(f"{folder.id}  {path}/", highlight=False)
    if as_json:
        _print(made, True, lambda: None)


def mv(
    source: Annotated[str, typer.Argument(help="The file or folder to move, e.g. drafts/report.pdf")],
    dest: Annotated[str, typer.Argument(help="An existing folder to move it into, or its new path")],
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Move or rename a file or folder, in one atomic change. When DEST is an existing
    folder, SOURCE moves into it; otherwise SOURCE takes the path DEST (its folder must
    exist)."""
    src, to = remote_path(source), remote_path(dest)
    if not src:
        fail("the top cannot be moved", EXIT_REFUSED)
    with client(profile) as sdk:
        item = find(sdk, src)
        assert item is not None
        parent_id: str | None
        new_name: str | None
        try:
            there = sdk.lookup(to)
        except NotFoundError:
            there = None
            parent_path, _, name = to.rpartition("/")
            parent = find(sdk, parent_path)
            if parent is not None and parent.kind != "folder":
                fail(f"{parent_path} is a file, not a folder", EXIT_REFUSED)
            parent_id, new_name, final = (parent.id if parent else None), name, to
        else:
            if there is not None and there.kind != "folder":
                fail(f"{to} exists already", EXIT_REFUSED)
            parent_id, new_name = (there.id if there else None), None
            final = "/".join(p for p in (to, item.name) if p)
        if item.kind == "folder":
            sdk.move_folder(item.id, parent_id, new_name)
        else:
            sdk.move_file(item.id, parent_id, new_name)
    said = {"id": item.id, "kind": item.kind, "from": src, "to": final}
    _print(said, as_json, lambda: out.print(f"moved {src} to {final}", highlight=False))


Sort = Literal["name", "size", "created"]


def ls(
    path: Annotated[str, typer.Argument(help="A folder, e.g. photos/2024 (default: the top)")] = "",
    sort: Annotated[Sort, typer.Option(help="Order by name, size or date of creation")] = "name",
    desc: Annotated[bool, typer.Option("--desc", help="Largest, newest or last first")] = False,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only names containing this (any case)")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every file of yours, in any folder, newest first")] = False,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """List a folder: its folders (with a trailing "/"), then its files. With --all, every
    file you have, newest first, whatever its folder."""
    where = remote_path(path)
    if filter_ is not None and len(filter_) > MAX_QUERY:
        fail(f"--filter is at most {MAX_QUERY} characters", EXIT_USAGE)
    if every:
        if where or filter_:
            fail("--all lists every file: give no PATH or --filter with it", EXIT_USAGE)
        _every(profile, as_json)
        return
    with client(profile) as sdk:
        folder_id = None
        if where:
            item = find(sdk, where)
            assert item is not None
            if item.kind != "folder":
                fail(f"{where} is a file, not a folder", EXIT_REFUSED)
            folder_id = item.id
        items = sdk.folder_items(folder_id, sort=sort, order="desc" if desc else "asc", query=filter_)

    def text() -> None:
        folders = sum(item.kind == "folder" for item in items)
        counts = f"{_count(folders, 'folder')}, {_count(len(items) - folders, 'file')}"
        out.print(f"/{where}  ({counts})", highlight=False)
        out.print(f"{'ID':<36}  {'SIZE':>12}  {'CREATED':<16}  NAME", highlight=False)
        for item in items:
            size = "-" if item.size is None else str(item.size)
            name = item.name + ("/" if item.kind == "folder" else "")
            out.print(f"{item.id}  {size:>12}  {item.created_at:%Y-%m-%d %H:%M}  {name}", highlight=False)

    _print([asdict(item) for item in items], as_json, text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _every(profile: str, as_json: bool) -> None:
    with client(profile) as sdk:
        files = sdk.files()

    def text() -> None:
        for f in files:
            out.print(f"{f.id}  {f.size:>12}  {f.created_at:%Y-%m-%d %H:%M}  {f.name}", highlight=False)

    _print([asdict(f) for f in files], as_json, text)


def install(app: typer.Typer) -> None:
    for command in (mkdir, mv, ls):
        app.command()(command)
