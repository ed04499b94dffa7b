"""Where files sit: each account's folders, its name key, and the rules for names in a
folder, as steps of a write transaction (``Tx``).

Names are unique within a folder, across files and folders alike (a ZIP of the folder,
or a download into a directory, could not hold both). The database never sees a name:
it sees a tag, an HMAC of the folder's id and the name under the account's name key
(``crypto.keys.NameCipher``), unique per account. Every step that claims a name holds
the owner's row lock first (``LOCK_OWNER``): the check across the two tables, and a
move's check that a folder does not go inside itself, are then serialised per account
on PostgreSQL as they are by SQLite's one writer.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import CompoundSelect, Row, bindparam, insert, select, union_all

from sealbox import names
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import WRAP_FORMAT, NameCipher, WrapDomain, new_dek
from sealbox.db.base import Columns, utcnow
from sealbox.db.session import Tx
from sealbox.errors import Conflict, IntegrityFailure, InvalidInput, NotFound
from sealbox.ids import UserId
from sealbox.models import File, Folder, NameKey

FOLDERS = Columns(Folder)
INSERT_FOLDER = insert(Folder.__table__)  # type: ignore[arg-type]
INSERT_NAME_KEY = insert(NameKey.__table__)  # type: ignore[arg-type]
NAME_KEY = select(NameKey.key_id, NameKey.wrapped_key, NameKey.wrap_format).where(
    NameKey.owner_id == bindparam("owner")
)
FOLDER_OF = select(Folder.id, Folder.parent_id).where(
    Folder.id == bindparam("id"), Folder.owner_id == bindparam("owner")
)
# Which of the tags bound as ``tags`` an entry (file or folder) of the owner holds.
TAKEN: CompoundSelect[*tuple[Any, ...]] = union_all(
    select(File.name_tag).where(
        File.owner_id == bindparam("owner"), File.name_tag.in_(bindparam("tags", expanding=True))
    ),
    select(Folder.name_tag).where(
        Folder.owner_id == bindparam("owner"), Folder.name_tag.in_(bindparam("tags", expanding=True))
    ),
)
FOLDER_BY_TAG = select(Folder.id, Folder.request_id).where(
    Folder.owner_id == bindparam("owner"), Folder.name_tag == bindparam("tag")
)

# How deep a tree may go, and how long a relative path sent with an upload may be.
MAX_DEPTH = 64
MAX_PATH = 4096
# Names tried when an upload's name is taken: "report (2).pdf" ... "report (100).pdf".
MAX_RENAMES = 100
# How far an upload's taken name is numbered before it is refused (409).
MAX_NUMBERED = 100_000
Conflicts = Literal["rename", "fail"]


@dataclass(frozen=True)
class Place:
    """Where a new file goes: a folder of its owner (``None``: the top), and below it a
    relative path of folders made as needed; what to do when its name is taken there
    (``rename``: the first free "name (n).ext"; ``fail``: 409)."""

    folder_id: uuid.UUID | None = None
    path: tuple[str, ...] = ()
    on_conflict: Conflicts = "rename"
    # The upload link it comes through: its path may enter only folders made through
    # that same link (never the owner's own, which they may have shared).
    via: uuid.UUID | None = None


TOP = Place()


def split_path(value: str | None) -> tuple[str, ...]:
    """A relative folder path ("photos/2024") as its checked names; "" or None is none.

    Each part is a name as a file name is (no "/" or "\\", not "." or ".."); a path may
    not start with "/" nor have empty parts, and is bounded in length and depth."""
    if not value:
        return ()
    if len(value) > MAX_PATH:
        raise InvalidInput(f"a folder path is at most {MAX_PATH} characters")
    parts = value.split("/")
    if len(parts) > MAX_DEPTH:
        raise InvalidInput(f"a folder path is at most {MAX_DEPTH} folders deep")
    if any(part == "" for part in parts):
        raise InvalidInput("a folder path is relative, with no empty parts ('a/b', not '/a' or 'a//b')")
    return tuple(names.folder_name(part) for part in parts)


_DOUBLE_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")


def renamed(name: str, n: int) -> str:
    """``name`` numbered ``n``: "report (2).pdf", "backup (2).tar.gz", ".env (2)"."""
    lower = name.lower()
    for extension in _DOUBLE_EXTENSIONS:
        if lower.endswith(extension) and len(name) > len(extension):
            return f"{name[: -len(extension)]} ({n}){name[-len(extension) :]}"
    stem, dot, extension = name.rpartition(".")
    if dot and stem:
        return f"{stem} ({n}).{extension}"
    return f"{name} ({n})"


Wrap = Callable[[Tx, bytes, bytes, WrapDomain], tuple[str, bytes]]
Unwrap = Callable[[str, bytes, bytes, WrapDomain, int], bytes]


class NameKeys:
    """Each account's name key: made (and wrapped under the primary master key) the first
    time the account names something, unwrapped when it is used, and kept unwrapped in a
    small cache (plaintext in memory, like a file's key while it is read)."""

    CACHED = 4096

    def __init__(self, wrap: Wrap, unwrap: Unwrap) -> None:
        self._wrap = wrap
        self._unwrap = unwrap
        self._cache: OrderedDict[tuple[uuid.UUID, bytes], NameCipher] = OrderedDict()
        self._lock = threading.Lock()  # the committer's thread and the event loop both use it

    def _cipher(self, owner: uuid.UUID, key_id: str, wrapped: bytes, wrap_format: int) -> NameCipher:
        with self._lock:
            cipher = self._cache.get((owner, wrapped))
            if cipher is not None:
                self._cache.move_to_end((owner, wrapped))
                return cipher
        cipher = NameCipher(self._unwrap(key_id, owner.bytes, wrapped, WrapDomain.NAMES, wrap_format))
        with self._lock:
            self._cache[(owner, wrapped)] = cipher
            while len(self._cache) > self.CACHED:
                self._cache.popitem(last=False)
        return cipher

    def in_tx(self, tx: Tx, owner: uuid.UUID) -> NameCipher:
        """The account's name key in a write transaction holding the owner's lock; made
        if it has none yet."""
        row = tx.conn.execute(NAME_KEY, {"owner": owner}).first()
        if row is not None:
            return self._cipher(owner, row[0], row[1], row[2])
        key = new_dek()
        key_id, wrapped = self._wrap(tx, owner.bytes, key, WrapDomain.NAMES)
        tx.conn.execute(
            INSERT_NAME_KEY,
            [
                {
                    "owner_id": owner,
                    "key_id": key_id,
                    "wrapped_key": wrapped,
                    "wrap_format": WRAP_FORMAT,
                    "created_at": utcnow(),
                }
            ],
        )
        cipher = NameCipher(key)
        with self._lock:
            self._cache[(owner, wrapped)] = cipher
        return cipher

    def of(self, owner: uuid.UUID, row: Row[*tuple[Any, ...]] | None) -> NameCipher | None:
        """The name key from its row (``NAME_KEY``), read outside a transaction."""
        if row is None:
            return None
        return self._cipher(owner, str(row[0]), bytes(row[1]), int(row[2]))


def decrypt_name(cipher: NameCipher, row_id: uuid.UUID, sealed: bytes) -> str:
    try:
        return cipher.decrypt(row_id.bytes, "name", sealed)
    except IntegrityError as exc:
        raise IntegrityFailure("stored names failed authentication") from exc


def folder_in(tx: Tx, owner: UserId, folder_id: uuid.UUID) -> uuid.UUID | None:
    """The parent of the owner's folder ``folder_id``; ``NotFound`` if it has none such."""
    row = tx.conn.execute(FOLDER_OF, {"id": folder_id, "owner": owner}).first()
    if row is None:
        raise NotFound("folder not found")
    parent: uuid.UUID | None = row[1]
    return parent


def ancestors(tx: Tx, owner: UserId, folder_id: uuid.UUID | None) -> list[uuid.UUID]:
    """``folder_id`` and the folders above it, nearest first (none for the top)."""
    chain: list[uuid.UUID] = []
    current = folder_id
    while current is not None:
        if len(chain) > MAX_DEPTH:
            raise IntegrityFailure("the folder tree is deeper than it may be")
        chain.append(current)
        current = folder_in(tx, owner, current)
    return chain


def taken(tx: Tx, owner: UserId, tags: Sequence[bytes]) -> set[bytes]:
    return {row[0] for row in tx.conn.execute(TAKEN, {"owner": owner, "tags": list(tags)})}


def claim(tx: Tx, owner: UserId, cipher: NameCipher, folder_id: uuid.UUID | None, name: str) -> bytes:
    """The tag of ``name`` in ``folder_id``, or ``Conflict`` if an entry there has it."""
    tag = cipher.tag(folder_id.bytes if folder_id else None, name)
    if taken(tx, owner, [tag]):
        raise Conflict(f"an item named {name!r} already exists in that folder")
    return tag


def free_name(
    tx: Tx, owner: UserId, cipher: NameCipher, folder_id: uuid.UUID | None, name: str, on_conflict: Conflicts
) -> tuple[str, bytes]:
    """``name`` and its tag in ``folder_id`` if free; else, as ``on_conflict`` says,
    ``Conflict`` or the first free numbered name."""
    if on_conflict == "fail":
        return name, claim(tx, owner, cipher, folder_id, name)
    parent = folder_id.bytes if folder_id else None
    tag = cipher.tag(parent, name)
    if not taken(tx, owner, [tag]):
        return name, tag  # the usual case: one tag, one lookup
    # The numbered names in batches, each one lookup: "name (2)" to "name (100)", then a
    # thousand at a time (a scanner that always writes "scan.pdf" makes many).
    first, batch = 2, MAX_RENAMES - 1
    while first <= MAX_NUMBERED:
        numbers = range(first, min(first + batch, MAX_NUMBERED + 1))
        candidates = [c for c in (renamed(name, n) for n in numbers) if len(c) <= names.MAX_FILE_NAME]
        tags = [cipher.tag(parent, c) for c in candidates]
        held = taken(tx, owner, tags) if tags else set()
        for candidate, tag in zip(candidates, tags, strict=True):
            if tag not in held:
                return candidate, tag
        first, batch = first + batch, 1000
    raise Conflict(f"an item named {name!r} already exists in that folder, and so do its numbered names")


def make_folder(
    tx: Tx,
    owner: UserId,
    cipher: NameCipher,
    parent: uuid.UUID | None,
    name: str,
    tag: bytes,
    folder_id: uuid.UUID | None = None,
    via: uuid.UUID | None = None,
) -> uuid.UUID:
    folder_id = folder_id or uuid.uuid4()
    values = {
        "id": folder_id,
        "owner_id": owner,
        "parent_id": parent,
        "name_enc": cipher.encrypt(folder_id.bytes, "name", name),
        "name_tag": tag,
        "created_at": utcnow(),
        "request_id": via,
    }
    tx.conn.execute(INSERT_FOLDER, [values])
    return folder_id


def make_path(
    tx: Tx,
    owner: UserId,
    cipher: NameCipher,
    parent: uuid.UUID | None,
    path: Sequence[str],
    *,
    numbered: bool = False,
    via: uuid.UUID | None = None,
) -> tuple[uuid.UUID | None, int]:
    """The folder at ``path`` below ``parent``, made where missing (like ``mkdir -p``);
    through the upload link ``via``, only folders made through that link are entered
    (another folder of the name is stepped around like a file, when ``numbered``);
    returns it and how many folders were made. ``Conflict`` if a file is in the way;
    with ``numbered``, the first of "name (2)", "name (3)"... that is a folder or free
    is used instead (so a stranger uploading through a link cannot learn, from a
    refusal, which file names the owner's folder holds)."""
    made = 0
    depth = len(ancestors(tx, owner, parent)) if path else 0
    for name in path:
        depth += 1
        if depth > MAX_DEPTH:
            raise InvalidInput(f"folders nest at most {MAX_DEPTH} deep")
        within = parent.bytes if parent else None
        candidates = [name, *(renamed(name, n) for n in range(2, MAX_RENAMES + 1))] if numbered else [name]
        for candidate in (c for c in candidates if len(c) <= names.MAX_FILE_NAME):
            tag = cipher.tag(within, candidate)
            found = tx.conn.execute(FOLDER_BY_TAG, {"owner": owner, "tag": tag}).first()
            if found is not None and (via is None or found[1] == via):
                parent = found[0]
                break
            if found is None and not taken(tx, owner, [tag]):
                parent = make_folder(tx, owner, cipher, parent, candidate, tag, via=via)
                made += 1
                break
        else:
            raise Conflict(f"a file named {name!r} is where a folder of that name would go")
    return parent, made


def place(
    tx: Tx, owner: UserId, cipher: NameCipher, where: Place, *, stranger: bool = False
) -> tuple[uuid.UUID | None, int]:
    """The folder a new file goes to (``where``), checked and made as needed; for a
    ``stranger`` (an upload through a link), a file in the way of a folder of the path
    is stepped around (``make_path``'s ``numbered``) rather than refused."""
    if where.folder_id is not None:
        folder_in(tx, owner, where.folder_id)
    return make_path(tx, owner, cipher, where.folder_id, where.path, numbered=stranger, via=where.via)
