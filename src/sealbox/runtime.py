"""The composition root: builds keyring, database, store and services from settings,
and decides at start-up whether the server may run.

Start-up rules (DESIGN §1.3):

- A brand-new installation (no accounts or files in the database, no blobs) is
  initialised once: keyring
  (unless one is configured), schema, and an admin account whose password is returned to
  be shown once.
- Otherwise the keyring must be present, well-formed, private (mode 0600) and must hold
  every key id that stored files reference. If not, ``SetupError`` says what is wrong
  and how to fix it, and nothing is written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog

from sealbox.accounts.schemas import Principal
from sealbox.accounts.service import AccountService, LoginPolicy
from sealbox.audit.service import Actor, Audit, Event
from sealbox.config import Settings
from sealbox.crypto.errors import KeyringError
from sealbox.crypto.keys import KeyProvider, Keyring, KeyringFile, new_master_key, write_keyring_file
from sealbox.db.migrate import holds_data, is_initialised, upgrade
from sealbox.db.session import Database, redacted
from sealbox.errors import Conflict, KeyMissing, SetupError, Unavailable
from sealbox.files.folders import FolderService
from sealbox.files.legacy import fill_listed_names
from sealbox.files.service import BLOB_PREFIX, FileService
from sealbox.ids import UserId
from sealbox.keys.formats import upgrade_wrapped_keys
from sealbox.keys.presence import KeyPresence
from sealbox.sharing.collections import Collections
from sealbox.sharing.gate import Gate
from sealbox.sharing.service import LinkPolicy, SharingService
from sealbox.storage.base import BlobStore, StorageUnavailable
from sealbox.storage.local import LocalStore
from sealbox.uploads.service import UploadService

ADMIN_USERNAME = "admin"
log = structlog.get_logger()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: BlobStore
    keyring: KeyProvider
    audit: Audit
    accounts: AccountService
    files: FileService
    folders: FolderService
    gate: Gate
    sharing: SharingService
    uploads: UploadService
    presence: KeyPresence

    async def close(self) -> None:
        await self.gate.drain()
        await self.audit.drain()
        await self.db.dispose()

    async def delete_account(self, admin: Principal | None, user_id: UserId, actor: Actor) -> None:
        """Delete an account and every file it owns (rows with their keys, then blobs),
        and with them its links and grants.

        An administrator cannot delete their own account, so one always remains
        (``admin`` is None for the operator's command line).
        """
        if admin is not None and user_id == admin.user_id:
            raise Conflict("you cannot delete your own account")
        user = await self.accounts.user(user_id)  # NotFound before anything is removed
        await self.files.delete_all(user_id, actor)
        await self.accounts.delete_user(user_id)
        await self.audit.record(Event("user.delete", actor, None, None, str(user_id), {"username": user.username}))

    async def check_ready(self) -> None:
        """Raise ``Unavailable`` unless the keyring is current and both the database and
        the blob store answer, and ``KeyMissing`` while stored data named a master key this
        process lacks."""
        _ = self.keyring.ids  # looks at the keyring file, reading it again if it changed
        if self.keyring.problem is not None:
            raise Unavailable(
                f"the keyring changed and was refused, the previous keys stay in use: {self.keyring.problem}"
            )
        missing = self.files.missing_keys()
        if missing:
            raise KeyMissing(missing)
        await self.db.ping()
        try:
            await self.store.check()
        except StorageUnavailable as exc:
            raise Unavailable("file storage is unavailable") from exc


@dataclass(frozen=True)
class Initialised:
    """What a first start created; the password is shown once and never stored in clear."""

    admin_username: str
    admin_password: str
    keyring: str  # where the master keys are: a file path, or SEALBOX_MASTER_KEYS
    keyring_created: bool


def _keyring_configured(settings: Settings) -> bool:
    return settings.master_keys is not None or settings.keyring.exists()


def load_keyring(settings: Settings) -> KeyProvider:
    """Load the configured master keys or raise ``SetupError`` with the fix.

    Keys from a file follow changes to it (see ``KeyringFile``); keys from
    ``SEALBOX_MASTER_KEYS`` are fixed for the life of the process.
    """
    try:
        if settings.master_keys is not None:
            return Keyring.from_env(settings.master_keys.get_secret_value())
        _check_keyring_location(settings)
        return KeyringFile(settings.keyring, report=_report_keyring)
    except KeyringError as exc:
        raise SetupError(
            f"cannot start: {exc}. Restore the keyring from its backup, or point SEALBOX_KEYRING "
            "(or SEALBOX_MASTER_KEYS) at it. No key was generated."
        ) from None


def _report_keyring(problem: str | None) -> None:
    # Called once per change of the keyring file, so a refused file is one log line.
    if problem is None:
        log.info("keyring.reloaded")
    else:
        log.error("keyring.refused", reason=problem)


def _check_keyring_location(settings: Settings) -> None:
    keyring = settings.keyring.resolve()
    blobs = settings.blob_dir.resolve()
    if keyring.is_relative_to(blobs):
        raise SetupError(f"the keyring {keyring} must not be inside the blob directory {blobs}")


def build_store(settings: Settings) -> BlobStore:
    if settings.storage == "local":
        return LocalStore(settings.blob_dir)
    s3 = settings.s3
    if not s3.bucket:
        raise SetupError("SEALBOX_STORAGE=s3 needs a bucket: set SEALBOX_S3__BUCKET")
    # Imported here: obstore costs a local-disk server ~5 MiB it would never use.
    from sealbox.storage.s3 import S3Store

    return S3Store(
        s3.bucket,
        endpoint=s3.endpoint,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        path_style=s3.path_style,
        allow_http=s3.allow_http,
        prefix=s3.prefix,
    )


async def check_store(store: BlobStore) -> None:
    """Raise ``SetupError`` if the blob store cannot be used (a missing bucket, say)."""
    try:
        await store.check()
    except StorageUnavailable as exc:
        raise SetupError(f"cannot start: {exc}") from None


def link_policy(settings: Settings) -> LinkPolicy:
    return LinkPolicy(
        default_lifetime=timedelta(days=settings.link_default_days),
        max_lifetime=timedelta(days=settings.link_max_days),
        password_required=settings.link_password_required,
        max_downloads=settings.link_max_downloads,
        max_failures=settings.link_max_failures,
        window=timedelta(seconds=settings.link_window_seconds),
    )


def build(settings: Settings, keyring: KeyProvider, store: BlobStore | None = None) -> Runtime:
    db = Database(settings.db_url)
    store = store or build_store(settings)
    audit = Audit(db)
    files = FileService(db, store, keyring, audit, settings.max_upload_size, settings.user_quota)
    folders = FolderService(files)
    gate = Gate(db, files, audit, Collections(files, folders))
    presence = KeyPresence(db, keyring, files.missing_keys, settings.key_report_seconds)
    return Runtime(
        settings=settings,
        db=db,
        store=store,
        keyring=keyring,
        audit=audit,
        accounts=AccountService(
            db,
            audit,
            timedelta(days=settings.token_ttl_days),
            LoginPolicy(settings.login_max_failures, timedelta(seconds=settings.login_window_seconds)),
        ),
        files=files,
        folders=folders,
        gate=gate,
        sharing=SharingService(db, files, gate, audit, link_policy(settings), folders),
        uploads=UploadService(
            db, store, keyring, files, timedelta(hours=settings.upload_expiry_hours), settings.upload_max_pending
        ),
        presence=presence,
    )


async def prepare(settings: Settings) -> Initialised | None:
    """Initialise a brand-new installation, or check an existing one and migrate it.

    Returns what was created on a first start, ``None`` otherwise. Raises ``SetupError``.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.storage == "local":
        settings.blob_dir.mkdir(exist_ok=True, mode=0o700)
    store = build_store(settings)
    await check_store(store)
    probe = Database(settings.db_url)
    try:
        fresh = not await holds_data(probe) and not await store.holds_any(BLOB_PREFIX)
    except Unavailable as exc:
        raise SetupError(f"cannot start: {exc} ({redacted(settings.db_url)})") from None
    finally:
        await probe.dispose()
    created_keyring = False
    if not _keyring_configured(settings):
        if not fresh:
            raise SetupError(
                f"cannot start: the keyring {settings.keyring} is missing, but {settings.data_dir} "
                "already holds data. Restore the keyring from its backup (or set SEALBOX_KEYRING "
                "to its path); without it the stored files cannot be read. No key was generated."
            )
        _check_keyring_location(settings)
        write_keyring_file(settings.keyring, Keyring([new_master_key()]))
        created_keyring = True
    runtime = build(settings, load_keyring(settings), store)
    try:
        await upgrade(runtime.db)
        await check_keys_cover_files(runtime)
        await upgrade_wrapped_keys(runtime.db, runtime.keyring)
        await fill_listed_names(runtime.files)
        if not fresh:
            return None
        password = secrets.token_urlsafe(18)
        await runtime.accounts.create_user(ADMIN_USERNAME, password, is_admin=True)
        where = "SEALBOX_MASTER_KEYS" if settings.master_keys is not None else str(settings.keyring)
        return Initialised(ADMIN_USERNAME, password, where, created_keyring)
    finally:
        await runtime.close()


async def check_keys_cover_files(runtime: Runtime) -> None:
    missing = await runtime.files.referenced_key_ids() - runtime.keyring.ids
    if missing:
        raise SetupError(
            f"cannot start: stored files or accounts' name keys are wrapped by master key(s) "
            f"{', '.join(sorted(missing))}, "
            f"which the keyring does not hold. Restore the keyring that contains them. No key was generated."
        )


async def open_runtime(settings: Settings) -> Runtime:
    """Build the runtime of a prepared installation (used by each server worker)."""
    runtime = build(settings, load_keyring(settings))
    try:
        if not await is_initialised(runtime.db):
            raise SetupError("cannot start: the database is not initialised; run 'sealbox init' first")
        await check_keys_cover_files(runtime)
        await check_store(runtime.store)
    except BaseException:
        await runtime.close()
        raise
    return runtime


def keyring_warning(settings: Settings) -> str | None:
    """A warning when the keyring sits inside the data directory (backed up together)."""
    if settings.master_keys is not None:
        return None
    if settings.keyring.resolve().is_relative_to(settings.data_dir.resolve()):
        return (
            f"the keyring {settings.keyring} is inside the data directory {settings.data_dir}: "
            "a copy of the data would carry its keys. Keep it elsewhere (SEALBOX_KEYRING)."
        )
    return None
