"""Master keys (a keyring of Fernet keys) and the per-file keys they wrap.

Key hierarchy::

    master key (Fernet, in the keyring, never beside the data)
      └─ wraps → DEK (32 random bytes per file or upload; stored only wrapped, in its row,
                   │  with a prefix naming its domain: see ``WrapDomain``)
                   ├─ HKDF → blob keys (sealbox stream v1, fresh salt per write)
                   └─ HKDF → K_meta (encrypts the file name and content type)

Keyring file format (JSON, mode 0600)::

    {"format": "sealbox-keyring", "version": 1,
     "keys": [{"id": "k1", "key": "<Fernet key>", "created_at": "2026-11-27T10:00:00Z"}]}

The first key is the primary: it wraps new DEKs. ``SEALBOX_MASTER_KEYS`` holds the same
keys as ``id:key`` pairs separated by commas, primary first.
"""

from __future__ import annotations

import binascii
import enum
import errno
import hashlib
import hmac
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbox.crypto.errors import IntegrityError, KeyringError, UnknownKeyId


class WrapDomain(enum.Enum):
    """What a wrapped data key belongs to: its prefix inside the Fernet token.

    A file's key and a resumable upload's key are wrapped with different prefixes, so a
    token made for one can never be taken for the other, even under one master key and
    one id. ``LEGACY`` is the single prefix of format 1 (before the split): it is only
    read, to open rows written before, until ``sealbox serve`` re-wraps them at start.

    The key of a file made of segments has a prefix of its own (``SEGMENTED_FILE``): each
    of its segments is a complete stream under that key, bound to the file's id, so if
    the same token could also open a one-blob file, a record changed to say "one blob"
    (with one segment copied to the file's blob key) would hand out one part of the file
    as if it were all of it. Only the wrapped key, which nobody can forge without a
    master key, says which layout the key was made for.
    """

    FILE = b"SBOX-DEK2/file"
    SEGMENTED_FILE = b"SBOX-DEK2/segmented-file"
    UPLOAD = b"SBOX-DEK2/upload"
    NAMES = b"SBOX-DEK2/names"  # an account's name key, bound to the account's id
    LEGACY = b"SBOX-DEK1"


# The ``wrap_format`` of a row: 1 = ``WrapDomain.LEGACY``, 2 = its own domain's prefix;
# for files, 3 = ``WrapDomain.SEGMENTED_FILE`` (a file made of segments; one written
# with format 2 before that prefix existed is re-wrapped when ``sealbox serve`` starts).
WRAP_FORMAT = 2
SEGMENTED_WRAP_FORMAT = 3


def wrap_domain(domain: WrapDomain, wrap_format: int) -> WrapDomain:
    """The prefix a row of ``domain`` written in ``wrap_format`` was wrapped with."""
    if wrap_format == WRAP_FORMAT:
        return domain
    if wrap_format == 1:
        return WrapDomain.LEGACY
    raise IntegrityError(f"unknown wrapped key format {wrap_format}")


def file_wrap_domain(segments: int, wrap_format: int) -> WrapDomain:
    """The prefix a file row's key was wrapped with, given its layout (``segments``: 0
    for one blob, n for n segments) and its ``wrap_format``.

    A one-blob file's key is never ``SEGMENTED_FILE`` and a file made of segments never
    ``LEGACY``, so a row whose layout was changed does not open. (Format 2 for a file
    made of segments is the plain file prefix it was wrapped with before the split:
    read until ``sealbox serve`` re-wraps it.)
    """
    if segments == 0:
        return wrap_domain(WrapDomain.FILE, wrap_format)
    if wrap_format == SEGMENTED_WRAP_FORMAT:
        return WrapDomain.SEGMENTED_FILE
    if wrap_format == WRAP_FORMAT:
        return WrapDomain.FILE
    raise IntegrityError(f"wrapped key format {wrap_format} is not one of a file made of segments")


def file_wrapping(segments: int) -> tuple[WrapDomain, int]:
    """The prefix and ``wrap_format`` a file's key is wrapped with now, by its layout."""
    if segments:
        return WrapDomain.SEGMENTED_FILE, SEGMENTED_WRAP_FORMAT
    return WrapDomain.FILE, WRAP_FORMAT


KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FORMAT = "sealbox-keyring"


@dataclass(frozen=True)
class MasterKey:
    """One master key. Its repr shows the id only: the key must never reach a log line,
    a traceback or an error message."""

    id: str
    key: str = field(repr=False)
    created_at: str = ""

    def fernet(self) -> Fernet:
        return Fernet(self.key)


def new_master_key(key_id: str | None = None) -> MasterKey:
    """Create a new random master key with a unique id."""
    now = datetime.now(UTC)
    if key_id is None:
        key_id = f"k{now:%Y%m%d}-{os.urandom(4).hex()}"
    return MasterKey(key_id, Fernet.generate_key().decode(), now.strftime("%Y-%m-%dT%H:%M:%SZ"))


class Keyring:
    """An ordered set of master keys; the first one is the primary."""

    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise KeyringError("the keyring holds no keys")
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise KeyringError("the keyring holds two keys with the same id")
        for number, k in enumerate(keys, 1):
            if not KEY_ID_PATTERN.match(k.id):
                # The id is not shown: a key pasted where its id belongs would end up in
                # the message (and in logs).
                raise KeyringError(f"key number {number} has an invalid id (1 to 64 letters, digits or '_.-')")
            try:
                k.fernet()
            except (ValueError, binascii.Error):
                raise KeyringError(f"key {k.id!r} is not a valid Fernet key") from None
        self.keys = list(keys)
        self._fernets = {k.id: k.fernet() for k in keys}

    def __repr__(self) -> str:
        return f"Keyring(ids={[k.id for k in self.keys]!r})"

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    @property
    def problem(self) -> str | None:
        """Keys held in memory cannot go bad: always ``None`` (see ``KeyringFile.problem``)."""
        return None

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._fernets)

    @property
    def primary_id(self) -> str:
        return self.primary.id

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]:
        """Wrap ``dek`` for ``file_id`` (a file's or an upload's id, as ``domain`` says)
        under the primary key; return (key id, token)."""
        return self.primary.id, self._seal(self.primary.id, file_id, dek, domain)

    def _seal(self, key_id: str, file_id: bytes, dek: bytes, domain: WrapDomain) -> bytes:
        if len(dek) != 32 or len(file_id) != 16:
            raise ValueError("a DEK is 32 bytes and a file id 16")
        if domain is WrapDomain.LEGACY:
            raise ValueError("the legacy wrap format is read, never written")
        return MultiFernet([self._fernets[key_id]]).encrypt(domain.value + file_id + dek)

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        """Return the DEK that ``wrapped`` holds for ``file_id`` in ``domain``.

        Raises ``UnknownKeyId`` if the key is not in the keyring and ``IntegrityError`` if
        the token does not open, was made for another file, or for another domain.
        """
        fernet = self._fernets.get(key_id)
        if fernet is None:
            raise UnknownKeyId(key_id)
        try:
            plain = fernet.decrypt(wrapped)
        except InvalidToken:
            raise IntegrityError("wrapped file key failed authentication") from None
        prefix = domain.value
        if len(plain) != len(prefix) + 48 or not plain.startswith(prefix):
            raise IntegrityError("wrapped file key has the wrong format")
        if plain[len(prefix) : len(prefix) + 16] != file_id:
            raise IntegrityError("wrapped file key belongs to another file")
        return plain[len(prefix) + 16 :]

    def upgrade(
        self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain, old: WrapDomain = WrapDomain.LEGACY
    ) -> bytes:
        """Re-wrap a token of an older format (``old``: format 1's ``WrapDomain.LEGACY``
        unless said) for ``domain``, under the same master key ``key_id``; raises like
        ``unwrap``."""
        dek = self.unwrap(key_id, file_id, wrapped, old)
        return self._seal(key_id, file_id, dek, domain)

    def with_primary(self, key: MasterKey) -> Keyring:
        """A keyring with ``key`` as the new primary and every current key kept."""
        return Keyring([key, *self.keys])

    def without(self, key_id: str) -> Keyring:
        return Keyring([k for k in self.keys if k.id != key_id])

    def merged(self, other: Keyring) -> Keyring:
        """This keyring plus the keys of ``other`` it lacks (this primary stays primary).

        Raises ``KeyringError`` if both hold different keys under one id.
        """
        mine = {k.id: k for k in self.keys}
        for key in other.keys:
            if key.id in mine and mine[key.id].key != key.key:
                raise KeyringError(f"key {key.id!r} in the backup differs from the key with that id here")
        return Keyring([*self.keys, *(k for k in other.keys if k.id not in mine)])

    def to_json(self) -> str:
        keys = [{"id": k.id, "key": k.key, "created_at": k.created_at} for k in self.keys]
        return json.dumps({"format": _FORMAT, "version": 1, "keys": keys}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> Keyring:
        keys = None
        try:
            doc = json.loads(text)
            if doc.get("format") != _FORMAT or doc.get("version") != 1:
                raise KeyringError(f"{source} is not a sealbox keyring (version 1)")
            keys = [MasterKey(str(k["id"]), str(k["key"]), str(k.get("created_at", ""))) for k in doc["keys"]]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            pass
        if keys is None:
            # Raised outside the handler, so that no chained exception carries the
            # text (a JSONDecodeError holds the whole document, keys included).
            raise KeyringError(f"{source} is malformed: expected a sealbox keyring in JSON")
        return cls(keys)

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """Parse ``id:key,id:key`` (primary first), as in ``SEALBOX_MASTER_KEYS``."""
        keys = []
        for item in value.split(","):
            key_id, sep, key = item.strip().partition(":")
            if not sep:
                raise KeyringError("SEALBOX_MASTER_KEYS must be 'id:key' pairs separated by commas")
            keys.append(MasterKey(key_id, key, ""))
        return cls(keys)


class KeyProvider(Protocol):
    """What sealbox needs from its master keys. ``Keyring`` implements it, and so can an
    external key service (a KMS such as Vault transit) later.

    Contract:
    - ``wrap`` seals a 32-byte DEK for one file under the current primary key and returns
      the id of that key with the token; it must bind the file id, so that a token
      opens only for the file it was made for.
    - ``unwrap`` returns exactly the DEK given to ``wrap``, or raises ``UnknownKeyId``
      (the key is not available) or ``IntegrityError`` (the token is not authentic or
      belongs to another file). It never returns a wrong key.
    - ``ids`` lists every key id that ``unwrap`` can open; the server refuses to start
      if a stored file names an id outside it. ``primary_id`` names the key ``wrap``
      uses now.
    - ``problem`` is ``None`` while the keys are current, or says why the source could
      not be read again (the keys already loaded stay in use; the server is not ready).
    - Both bind the ``WrapDomain`` too: a token made for an upload never opens as a
      file's, nor the other way round. ``upgrade`` turns a format-1 token into one of
      ``domain`` under the same master key.
    """

    @property
    def ids(self) -> frozenset[str]: ...

    @property
    def primary_id(self) -> str: ...

    @property
    def problem(self) -> str | None: ...

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]: ...

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes: ...

    def upgrade(
        self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain, old: WrapDomain = WrapDomain.LEGACY
    ) -> bytes: ...


class KeyringFile:
    """A ``KeyProvider`` over a keyring file that follows changes to the file.

    A look costs two ``stat`` calls (the file, not following a link, and its
    directory); unwrapping looks at most once per ``CHECK_SECONDS`` (1 s), while
    wrapping (once per new file, so a new primary is used as soon as ``keys rotate``
    makes it primary), ``ids`` and ``primary_id`` (readiness, key status, the
    retired-key check) always look.
    When the file was replaced (as ``keys rotate``, ``retire`` and ``import``
    do, atomically) or its owner or mode, or those of its directory, changed, it is read
    again with every check of ``load_keyring_file``. A read that fails keeps the keys
    already loaded (they are still this server's own keys), sets ``problem`` (the server
    then reports not ready) and is passed to ``report`` once per change of the file; a
    later good read clears it. An unknown key id forces a fresh read before it is
    reported.
    """

    # Two stats per unwrap were a measurable part of a small download; a change of the
    # file is noticed within this many seconds by unwrapping, at once by the others.
    # An unknown key id does not wait (it forces a read).
    CHECK_SECONDS = 1.0

    def __init__(self, path: Path, report: Callable[[str | None], None] | None = None) -> None:
        self.path = path
        self.problem: str | None = None
        self._report = report
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._looked = time.monotonic()
        self._keyring = load_keyring_file(path)

    def __repr__(self) -> str:
        return f"KeyringFile({str(self.path)!r})"

    def _stat(self) -> tuple[int, ...]:
        try:
            f, d = os.lstat(self.path), os.stat(self.path.parent)
        except OSError:
            return (0,)
        return (f.st_dev, f.st_ino, f.st_size, f.st_mtime_ns, f.st_ctime_ns, f.st_mode, d.st_ino, d.st_mode, d.st_uid)

    def _recent(self) -> Keyring:
        # The keyring as of the last look, if that was less than CHECK_SECONDS ago.
        if time.monotonic() - self._looked < self.CHECK_SECONDS:
            return self._keyring
        return self.current()

    def current(self, force: bool = False) -> Keyring:
        # Wrapping runs on the committer's thread, the rest on the event loop: a look and
        # the read it may lead to are one step, so no thread sees a new stamp with the
        # old keys.
        with self._lock:
            return self._current(force)

    def _current(self, force: bool) -> Keyring:
        self._looked = time.monotonic()
        stamp = self._stat()
        changed = stamp != self._stamp
        if force or changed:
            self._stamp = stamp
            try:
                ring = load_keyring_file(self.path)
            except KeyringError as exc:
                self._update(str(exc), changed)
            else:
                self._keyring = ring
                self._update(None, changed)
        return self._keyring

    def _update(self, problem: str | None, changed: bool) -> None:
        # Once per change: a refused file is read again only when it changes, and a
        # forced read that meets the same refusal says nothing new.
        if problem == self.problem and not (changed and problem is not None):
            return
        self.problem = problem
        if self._report is not None:
            self._report(problem)

    @property
    def ids(self) -> frozenset[str]:
        return self.current().ids

    @property
    def primary_id(self) -> str:
        return self.current().primary.id

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]:
        return self.current().wrap(file_id, dek, domain)

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        try:
            return self._recent().unwrap(key_id, file_id, wrapped, domain)
        except UnknownKeyId:
            return self.current(force=True).unwrap(key_id, file_id, wrapped, domain)

    def upgrade(
        self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain, old: WrapDomain = WrapDomain.LEGACY
    ) -> bytes:
        try:
            return self._recent().upgrade(key_id, file_id, wrapped, domain, old)
        except UnknownKeyId:
            return self.current(force=True).upgrade(key_id, file_id, wrapped, domain, old)


# Whoever can replace the keyring can plant a primary key they know, and every file
# uploaded from then on is theirs to read. So the file is read through one descriptor,
# never through a symbolic link, and only if neither it nor any directory above it can
# be changed by anyone but root and the user running sealbox.
MAX_KEYRING_BYTES = 1 << 20


def load_keyring_file(path: Path, *, trust_owner: bool = False) -> Keyring:
    """Read the keyring at ``path``, refusing (``KeyringError``, saying why and how to
    fix it) a file that is missing, a symbolic link or not a regular file, that belongs
    to another user than this one or root, that group or others may access, that sits
    in a directory (at any level) someone else owns or may write, larger than 1 MiB, or
    malformed.

    ``trust_owner`` also accepts the file's own owner, for root managing the keyring of
    a server that runs as another user (``sealbox keys`` run with sudo).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyringError(f"keyring {path} {_open_failure(exc)}") from None
    try:
        owner = _check_file(fd, path, trust_owner)
        _check_directories(path, owner)
        data = _read_all(fd, path)
    finally:
        os.close(fd)
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # the error holds the whole content: raise outside the handler
    if text is None:
        raise KeyringError(f"keyring {path} is not UTF-8 text")
    return Keyring.from_json(text, f"keyring {path}")


def _open_failure(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link; point SEALBOX_KEYRING at the file itself"
    if exc.errno == errno.EACCES:
        return f"cannot be read by this user (uid {os.geteuid()}): it must belong to the user that runs sealbox"
    return f"cannot be opened: {exc.strerror}"


def _trusted(uid: int, owner: int | None) -> bool:
    return uid in (0, os.geteuid(), owner)


def _check_file(fd: int, path: Path, trust_owner: bool) -> int | None:
    """Check the opened file; return the extra owner to trust (or ``None``)."""
    info = os.fstat(fd)
    owner = info.st_uid if trust_owner else None
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"keyring {path} is not a regular file")
    if not _trusted(info.st_uid, owner):
        raise KeyringError(
            f"keyring {path} belongs to another user (uid {info.st_uid}), who could replace its keys; "
            f"it must belong to the user that runs sealbox (uid {os.geteuid()}) or root: "
            f"run 'chown {os.geteuid()} {path}'"
        )
    if info.st_mode & 0o077:
        raise KeyringError(
            f"keyring {path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); run 'chmod 600 {path}'"
        )
    if info.st_size > MAX_KEYRING_BYTES:
        raise KeyringError(f"keyring {path} is larger than 1 MiB: not a keyring")
    return owner


def _check_directories(path: Path, owner: int | None) -> None:
    directory = Path(os.path.realpath(path.parent))
    for d in (directory, *directory.parents):
        try:
            info = os.stat(d)
        except OSError as exc:
            raise KeyringError(f"keyring {path}: its directory {d} cannot be checked ({exc.strerror})") from None
        if not _trusted(info.st_uid, owner):
            raise KeyringError(
                f"keyring {path} sits in {d}, which belongs to another user (uid {info.st_uid}) who could "
                f"replace it; move the keyring to a directory of the user that runs sealbox or of root"
            )
        # A sticky directory (/tmp) lets others add entries but not replace ours.
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise KeyringError(
                f"keyring {path} sits in {d}, which other users may write (mode {stat.S_IMODE(info.st_mode):04o}) "
                f"and so replace the keyring; run 'chmod go-w {d}'"
            )


def _read_all(fd: int, path: Path) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_KEYRING_BYTES:
            raise KeyringError(f"keyring {path} is larger than 1 MiB: not a keyring")
    return b"".join(chunks)


def write_keyring_file(path: Path, keyring: Keyring) -> None:
    """Create ``path`` (which must not exist) holding ``keyring``, mode 0600, synced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_new(path, keyring.to_json().encode(), None)
    _fsync_dir(path.parent)


def replace_keyring_file(path: Path, keyring: Keyring) -> None:
    """Atomically replace the keyring at ``path`` (a reader sees the old or the new one).

    The new file keeps the old one's owner and group: root running ``sealbox keys`` on
    the keyring of a server that runs as another user leaves a file that server can read.
    """
    try:
        old = os.lstat(path)
    except FileNotFoundError:
        owner = None
    else:
        owner = (old.st_uid, old.st_gid)
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}")
    try:
        _write_new(tmp, keyring.to_json().encode(), owner)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_new(path: Path, data: bytes, owner: tuple[int, int] | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        # Only root may give a file away; anyone else passed the owner check as the owner.
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FieldCipher:
    """Encrypts small metadata fields of one file with K_meta (AES-256-GCM).

    Each value is bound to the file id and the column name, so a ciphertext moved to
    another row or column fails to decrypt.
    """

    def __init__(self, dek: bytes, file_id: bytes) -> None:
        k_meta = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealbox/v1/meta").derive(dek)
        self._aead = AESGCM(k_meta)
        self._file_id = file_id

    def encrypt(self, column: str, value: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), self._file_id + column.encode())

    def decrypt(self, column: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], self._file_id + column.encode())
        except (InvalidTag, ValueError):
            raise IntegrityError(f"encrypted {column} failed authentication") from None
        return plain.decode()


class NameCipher:
    """What an account's name key does (``models.NameKey``): encrypts folder names and the
    listing copy of file names (AES-256-GCM, each bound to its row's id and column), and
    tags a name in its folder (HMAC-SHA256 over the folder's id and the name), so that
    names can be kept unique within a folder without being stored in the clear.

    The tag reveals only whether two entries of one account share a name in one folder,
    which the uniqueness rule forbids anyway.
    """

    TOP = bytes(16)  # the folder id tags use for the top of an account

    def __init__(self, key: bytes) -> None:
        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)

        self._aead = AESGCM(derive(b"sealbox/v1/names/encrypt"))
        self._tag_key = derive(b"sealbox/v1/names/tag")

    def encrypt(self, row_id: bytes, column: str, value: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), row_id + column.encode())

    def decrypt(self, row_id: bytes, column: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], row_id + column.encode())
        except (InvalidTag, ValueError):
            raise IntegrityError(f"encrypted {column} failed authentication") from None
        return plain.decode()

    def tag(self, folder_id: bytes | None, name: str) -> bytes:
        """The tag of ``name`` (NFC, as stored) in the folder ``folder_id`` (None: the top)."""
        return hmac.new(self._tag_key, (folder_id or self.TOP) + name.encode(), hashlib.sha256).digest()


def new_dek() -> bytes:
    return os.urandom(32)
