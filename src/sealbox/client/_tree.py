"""Folders and trees, written once as operations (see ``_ops``): make, list, rename, move
and delete folders; rename and move files; upload a local directory keeping its tree;
share files, folders and selections; download a folder or selection link into a local
directory or as one ZIP.

Remote paths are written from the top of your files, "a/b/c.txt" (a leading or trailing
"/" is ignored; "" is the top). Names travel in bodies and headers, never in URLs.
"""

from __future__ import annotations

import mimetypes
import os
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any
from urllib.parse import quote

from sealbox.client._ops import (
    BaseUrl,
    Call,
    Local,
    Op,
    OpenSink,
    OpenSource,
    Parallel,
    ProgressCallback,
    Read,
    _fetch,
    _tus,
    attachment,
    call,
    unlock,
)
from sealbox.client.errors import ConflictError, UnsafePathError
from sealbox.client.models import (
    FileInfo,
    Folder,
    FolderPage,
    Item,
    Link,
    LinkEntry,
    LinkInfo,
    Progress,
    TreeDownload,
    TreeUpload,
)

# Files up to this size go in one raw request (one round trip, several at a time); larger
# ones over tus, one after the other, resumable within the file (64 MiB parts in memory).
SMALL = 8 * 1024 * 1024
WORKERS = 4
PAGE = 1000  # the server's largest page
MAX_WORKERS = 16


def parts(path: str) -> list[str]:
    """The names of a remote path ("/a/b/" → ["a", "b"]; "" → [])."""
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def joined(*pieces: str) -> str:
    return "/".join(piece.strip("/") for piece in pieces if piece.strip("/"))


# Folders -----------------------------------------------------------------------------


def make_folder(name: str, parent_id: str | None = None) -> Op[Folder]:
    """A new folder in ``parent_id`` (None: the top); ``ConflictError`` if the name is taken
    there (by a file or a folder)."""
    reply = yield from call(Call("POST", "/api/v1/folders", json={"name": name, "parent_id": parent_id}), 201)
    return Folder.of(reply.json())


def lookup(path: str) -> Op[Item | None]:
    """The file or folder at ``path`` (None for the top); ``NotFoundError`` if nothing is there."""
    if not parts(path):
        return None
    reply = yield from call(Call("POST", "/api/v1/lookup", json={"path": "/".join(parts(path))}), 200)
    return Item.of(reply.json())


def make_path(path: str) -> Op[Folder | None]:
    """The folder at ``path``, made with its parents as needed (like ``mkdir -p``); None for
    the top. ``ConflictError`` if a file holds one of its names."""
    names = parts(path)
    made: Folder | None = None
    for depth in range(len(names)):
        made = yield from _ensure(names[depth], made.id if made else None, "/".join(names[: depth + 1]))
    return made


def _ensure(name: str, parent_id: str | None, path: str) -> Op[Folder]:
    """The folder ``name`` in ``parent_id``, made unless it is there already."""
    try:
        return (yield from make_folder(name, parent_id))
    except ConflictError:
        found = yield from lookup(path)
        if found is None or found.kind != "folder":
            raise ConflictError(f"{path} is a file, not a folder", 409) from None
        return Folder(found.id, found.name, parent_id, found.created_at)


def list_folder(
    folder_id: str | None = None,
    *,
    sort: str = "name",
    order: str = "asc",
    query: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Op[FolderPage]:
    """One page of a folder (None: the top): folders first, then files, sorted by
    ``name``, ``size`` or ``created``, only names containing ``query`` if given."""
    params: dict[str, Any] = {"sort": sort, "order": order, "limit": limit}
    if query:
        params["q"] = query
    if cursor:
        params["cursor"] = cursor
    reply = yield from call(Call("GET", f"/api/v1/folders/{folder_id or 'top'}", params=params), 200)
    return FolderPage.of(reply.json())


def folder_items(
    folder_id: str | None = None, *, sort: str = "name", order: str = "asc", query: str | None = None
) -> Op[list[Item]]:
    """Everything in a folder, page after page."""
    items: list[Item] = []
    cursor: str | None = None
    while True:
        page = yield from list_folder(folder_id, sort=sort, order=order, query=query, limit=PAGE, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if not cursor:
            return items


def rename_folder(folder_id: str, name: str) -> Op[Folder]:
    reply = yield from call(Call("PATCH", f"/api/v1/folders/{folder_id}", json={"name": name}), 200)
    return Folder.of(reply.json())


def move_folder(folder_id: str, parent_id: str | None, name: str | None = None) -> Op[Folder]:
    """Move a folder into ``parent_id`` (None: the top), renaming it too if ``name`` is
    given, in one atomic change."""
    body: dict[str, Any] = {"parent_id": parent_id, **({"name": name} if name is not None else {})}
    reply = yield from call(Call("PATCH", f"/api/v1/folders/{folder_id}", json=body), 200)
    return Folder.of(reply.json())


def delete_folder(folder_id: str) -> Op[None]:
    """Delete a folder and everything in it (unreadable at once)."""
    yield from call(Call("DELETE", f"/api/v1/folders/{folder_id}"), 204)


def rename_file(file_id: str, name: str) -> Op[FileInfo]:
    reply = yield from call(Call("PATCH", f"/api/v1/files/{file_id}", json={"name": name}), 200)
    return FileInfo.of(reply.json())


def move_file(file_id: str, folder_id: str | None, name: str | None = None) -> Op[FileInfo]:
    """Move a file into ``folder_id`` (None: the top), renaming it too if ``name`` is given."""
    body: dict[str, Any] = {"folder_id": folder_id, **({"name": name} if name is not None else {})}
    reply = yield from call(Call("PATCH", f"/api/v1/files/{file_id}", json=body), 200)
    return FileInfo.of(reply.json())


# Uploads -----------------------------------------------------------------------------


def upload_file(
    source: Any, name: str | None = None, *, folder_id: str | None = None, path: str | None = None,
    on_conflict: str = "rename",
) -> Op[FileInfo]:  # fmt: skip
    """Upload a small file (a path or file object) in one request, into ``folder_id`` and
    the relative ``path`` of folders below it (made as needed). When the name is taken
    there: ``rename`` stores "name (2).ext", ``fail`` raises ``ConflictError``. The body is
    held in memory so that a dropped connection can be retried: use ``upload`` (tus) for
    large files."""
    size, default = yield OpenSource(source)
    if size is None:
        raise ValueError("upload_file takes a path or a file object")
    data: bytes = yield Read(0, size)
    return (yield from _post(data, name or default or "upload", folder_id, path, on_conflict))


def _post(data: bytes, name: str, folder_id: str | None, path: str | None, on_conflict: str) -> Op[FileInfo]:
    kind = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    headers = {"Content-Type": kind, "Content-Disposition": attachment(name)}
    if path and parts(path):
        headers["Sealbox-Path"] = quote("/".join(parts(path)), safe="/")
    params = {"on_conflict": on_conflict, **({"folder": folder_id} if folder_id else {})}
    reply = yield from call(Call("POST", "/api/v1/files", params=params, headers=headers, content=data), 201)
    return FileInfo.of(reply.json())


@dataclass(frozen=True)
class LocalFile:
    rel: str  # relative path with "/", in NFC (as the server stores names)
    path: str
    size: int


def walk(root: str) -> tuple[list[str], list[LocalFile]]:
    """A local directory's folders (parents first) and regular files, by relative path.
    Symbolic links and special files are left out: a link could lead outside the tree."""
    if not os.path.isdir(root):
        raise NotADirectoryError(20, "not a directory", root)
    folders: list[str] = []
    files: list[LocalFile] = []
    for here, subdirs, names in os.walk(root):
        rel = os.path.relpath(here, root)
        base = "" if rel == "." else unicodedata.normalize("NFC", rel.replace(os.sep, "/"))
        subdirs[:] = sorted(d for d in subdirs if not os.path.islink(os.path.join(here, d)))
        folders += [joined(base, unicodedata.normalize("NFC", d)) for d in subdirs]
        for name in sorted(names):
            full = os.path.join(here, name)
            stat = os.lstat(full)
            if S_ISREG(stat.st_mode):
                files.append(LocalFile(joined(base, unicodedata.normalize("NFC", name)), full, stat.st_size))
    return folders, files


class Overall:
    """Progress of many transfers as one: bytes done of the total. Transfers report from
    several threads at once (``Client``), hence the lock."""

    def __init__(self, total: int, done: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.callback = total, done, callback
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            done = self.done
        if self.callback is not None and count:
            self.callback(Progress(done, self.total))

    def of_one(self) -> ProgressCallback:
        """A callback for one transfer; it adds what is new since its last report."""
        last = 0

        def report(progress: Progress) -> None:
            nonlocal last
            self.add(progress.done - last)
            last = progress.done

        return report


def remote_tree(folder_id: str | None, wanted: Iterable[str]) -> Op[tuple[dict[str, str], dict[str, int]]]:
    """What a folder holds, by relative path: its folders (ids) and its files (sizes),
    looking only into the folders whose path is in ``wanted``."""
    wanted = set(wanted)
    folders: dict[str, str] = {}
    files: dict[str, int] = {}
    queue: list[tuple[str, str | None]] = [("", folder_id)]
    while queue:
        rel, here = queue.pop()
        for item in (yield from folder_items(here)):
            sub = joined(rel, item.name)
            if item.kind == "folder":
                folders[sub] = item.id
                if sub in wanted:
                    queue.append((sub, item.id))
            else:
                files[sub] = item.size or 0
    return folders, files


def upload_dir(
    local_dir: str | os.PathLike[str],
    remote_folder: str = "",
    *,
    workers: int = WORKERS,
    upload_urls: Mapping[str, str] | None = None,
    on_upload_url: Callable[[str, str | None], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Op[TreeUpload]:
    """Upload what ``local_dir`` holds into the folder at ``remote_folder`` (made with its
    parents as needed; "" is the top), keeping its tree, empty folders included.

    Run again after an interruption, it goes on: a file already at its place with the same
    size is skipped, and a large file's tus upload resumes from ``upload_urls`` (relative
    path → upload URL, as given to ``on_upload_url(path, url)``; ``url`` None once that file
    is complete). Small files go ``workers`` at a time, one request each. A file whose
    place holds something else (another size, or a folder) is left alone and listed in
    ``conflicts``. ``on_progress`` sees the bytes of the whole tree."""
    workers = max(1, min(workers, MAX_WORKERS))
    folders, files = yield Local(walk, (os.fspath(local_dir),))
    root = yield from make_path(remote_folder)
    root_id = root.id if root else None
    remote_folders, remote_files = yield from remote_tree(root_id, folders)
    ids: dict[str, str | None] = {"": root_id, **remote_folders}
    missing = [f for f in folders if f not in ids]
    for depth in sorted({f.count("/") for f in missing}):
        level = [f for f in missing if f.count("/") == depth]
        made = yield Parallel(
            [_ensure(f.rsplit("/", 1)[-1], ids[_parent(f)], joined(remote_folder, f)) for f in level], workers
        )
        ids.update((f, folder.id) for f, folder in zip(level, made, strict=True))
    todo: list[LocalFile] = []
    skipped, conflicts = 0, []
    for f in files:
        if f.rel in remote_folders or remote_files.get(f.rel, f.size) != f.size:
            conflicts.append(f.rel)
        elif f.rel in remote_files:
            skipped += 1
        else:
            todo.append(f)
    overall = Overall(sum(f.size for f in todo), 0, on_progress)
    small = [f for f in todo if f.size <= SMALL]
    put = yield Parallel([_put(f, ids[_parent(f.rel)], joined(remote_folder, f.rel), overall) for f in small], workers)
    for f, outcome in zip(small, put, strict=True):
        skipped += outcome == "skipped"
        if outcome == "conflict":
            conflicts.append(f.rel)
    # Large files one at a time (each holds a 64 MiB part in memory), each its own
    # operation so that its file is closed when it is done.
    large = [f for f in todo if f.size > SMALL]
    yield Parallel([_put_large(f, ids[_parent(f.rel)], upload_urls or {}, on_upload_url, overall) for f in large], 1)
    sent = len(todo) - sum(outcome != "uploaded" for outcome in put)
    return TreeUpload(root_id, sent, skipped, overall.done, tuple(sorted(conflicts)))


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _put(f: LocalFile, folder_id: str | None, remote_path: str, overall: Overall) -> Op[str]:
    """One small file: ``uploaded``, ``skipped`` (the same size is there: an earlier
    attempt stored it) or ``conflict``."""
    yield OpenSource(f.path)
    data: bytes = yield Read(0, f.size)
    try:
        yield from _post(data, f.rel.rsplit("/", 1)[-1], folder_id, None, "fail")
    except ConflictError:
        found = yield from lookup(remote_path)
        return "skipped" if found is not None and found.kind == "file" and found.size == len(data) else "conflict"
    overall.add(len(data))
    return "uploaded"


def _put_large(
    f: LocalFile,
    folder_id: str | None,
    upload_urls: Mapping[str, str],
    on_upload_url: Callable[[str, str | None], None] | None,
    overall: Overall,
) -> Op[None]:
    remember = (lambda url: on_upload_url(f.rel, url)) if on_upload_url else None
    yield OpenSource(f.path)
    yield from _tus(f.size, f.rel.rsplit("/", 1)[-1], None, upload_urls.get(f.rel), remember, overall.of_one(),
                    extra={"folder": folder_id or ""})  # fmt: skip
    if on_upload_url is not None:
        on_upload_url(f.rel, None)


# Links -------------------------------------------------------------------------------


def share(
    file_id: str | None = None,
    *,
    folder_id: str | None = None,
    items: list[tuple[str, str]] | None = None,
    expires_in: int | None = None,
    download_limit: int | None = None,
    password: str | None = None,
    note: str | None = None,
) -> Op[Link]:
    """A share link to one file, one folder (what it holds when the link is used), or a
    selection of ``items`` (``(kind, id)`` pairs, ``kind`` ``file`` or ``folder``; fixed
    now). Its ``url`` (with the secret token) is only in this answer."""
    if sum(x is not None for x in (file_id, folder_id, items)) != 1:
        raise ValueError("share one of: file_id, folder_id or items")
    body: dict[str, Any] = {
        "expires_in_seconds": expires_in, "download_limit": download_limit, "password": password, "note": note,
    }  # fmt: skip
    if file_id is not None:
        url = f"/api/v1/files/{file_id}/shares"
    else:
        url = "/api/v1/shares"
        if folder_id is not None:
            body["folder_id"] = folder_id
        else:
            body["items"] = [{"kind": kind, "id": item} for kind, item in items or ()]
    reply = yield from call(Call("POST", url, json=body), 201)
    base: str = yield BaseUrl()
    return Link.of(reply.json(), base=base)


def _grant_headers(link: str, password: str | None) -> Op[dict[str, str]]:
    return {"Authorization": f"Bearer {(yield from unlock(link, password))}"} if password else {}


def download_link_archive(
    link: str, sink: Any, *, password: str | None = None, on_progress: ProgressCallback | None = None
) -> Op[int]:
    """Download everything a folder or selection link holds as one ZIP into a path or file
    object, going on from what it holds if the server allows it."""
    headers = yield from _grant_headers(link, password)
    offset = yield OpenSink(sink)
    return (yield from _fetch(f"{link.rstrip('/')}/archive", offset, headers, on_progress, authenticated=False))


def local_target(directory: str, path: str) -> str:
    """Where a link's entry goes below ``directory``. The server's paths are checked, not
    trusted: a path that could leave the directory is refused (``UnsafePathError``)."""
    names = path.rstrip("/").split("/")
    for name in names:
        if name in ("", ".", "..") or any(c in name for c in "\\\0") or (os.sep != "/" and os.sep in name):
            raise UnsafePathError(f"the link lists an unsafe path: {path!r}")
    return os.path.join(directory, *names)


def survey(directory: str, plan: list[tuple[str, str, int | None]]) -> list[str]:
    """Make the folders of a download and say, for each file, what to do: ``fetch``,
    ``skip`` (there already, complete) or ``conflict`` (something else is in the way)."""
    os.makedirs(directory, exist_ok=True)
    answers = []
    for kind, target, size in plan:
        if kind == "folder":
            os.makedirs(target, exist_ok=True)
            answers.append("skip")
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            same = os.path.isfile(target) and not os.path.islink(target) and os.path.getsize(target) == size
            answers.append("skip" if same else "conflict")
        else:
            answers.append("fetch")
    return answers


def download_link_dir(
    link: str,
    directory: str | os.PathLike[str],
    *,
    password: str | None = None,
    workers: int = WORKERS,
    on_progress: ProgressCallback | None = None,
) -> Op[TreeDownload]:
    """Download what a link holds into ``directory``, keeping its tree, file by file, with
    ``workers`` at a time. Run again, it goes on: a complete file is skipped, and one that
    was cut off (``NAME.part``) continues with ``Range``. A file in the way with another size
    is left alone and listed in ``conflicts``. A link to one file lands as that file."""
    workers = max(1, min(workers, MAX_WORKERS))
    headers = yield from _grant_headers(link, password)
    reply = yield from call(Call("GET", link, headers={"Accept": "application/json", **headers},
                                 authenticated=False), 200)  # fmt: skip
    info = LinkInfo.of(reply.json())
    entries = info.entries or (LinkEntry(info.name, "file", info.size, f"{link.rstrip('/')}/download", None),)
    root = os.fspath(directory)
    targets = [local_target(root, entry.path) for entry in entries]
    plan = [(entry.kind, target, entry.size) for entry, target in zip(entries, targets, strict=True)]
    answers: list[str] = yield Local(survey, (root, plan))
    seen: set[str] = set()
    fetch: list[tuple[LinkEntry, str]] = []
    conflicts, skipped = [], 0
    for entry, target, answer in zip(entries, targets, answers, strict=True):
        if entry.kind != "file":
            continue
        if target in seen or answer == "conflict" or entry.download_url is None:
            conflicts.append(entry.path)
        elif answer == "skip":
            skipped += 1
        else:
            fetch.append((entry, target))
        seen.add(target)
    overall = Overall(sum(entry.size or 0 for entry, _ in fetch), 0, on_progress)
    sizes = yield Parallel([_fetch_one(entry, target, headers, overall) for entry, target in fetch], workers)
    for (entry, target), size in zip(fetch, sizes, strict=True):
        if size != entry.size:
            raise ConflictError(f"{entry.path}: {size} bytes arrived, not the {entry.size} listed", 409)
        yield Local(os.replace, (target + ".part", target))
    return TreeDownload(len(fetch), skipped, overall.done, tuple(conflicts))


def _fetch_one(entry: LinkEntry, target: str, headers: dict[str, str], overall: Overall) -> Op[int]:
    offset = yield OpenSink(Path(target + ".part"))
    assert entry.download_url is not None
    return (yield from _fetch(entry.download_url, offset, headers, overall.of_one(), authenticated=False))
