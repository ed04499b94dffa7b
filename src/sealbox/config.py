"""Settings, read from ``SEALBOX_*`` environment variables (and ``sealbox serve`` flags).

Nothing here runs at import time: build ``Settings()`` where it is needed and pass it on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: Any) -> int:
    """Parse ``1048576``, ``512M``, ``10GiB`` into bytes (units are powers of 1024)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("expected a size such as 1073741824, 512M or 10G")
    unit = (match.group(2) or "")[:1].lower()
    return int(match.group(1)) * _UNITS[unit]


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "sealbox"


def default_keyring() -> Path:
    # Under the configuration directory, not the data directory: a copy of the data
    # (or a backup of it) must not carry the keys that open it.
    return _xdg("XDG_CONFIG_HOME", ".config") / "sealbox" / "keyring.json"


class S3Settings(BaseModel):
    """Where blobs go when ``SEALBOX_STORAGE=s3`` (variables ``SEALBOX_S3__<NAME>``)."""

    bucket: str = Field(default="", description="Bucket name (it must exist).")
    endpoint: str | None = Field(default=None, description="Endpoint URL, for services other than AWS S3.")
    region: str = Field(default="us-east-1", description="Region.")
    access_key_id: str | None = Field(default=None, description="Access key id.")
    secret_access_key: SecretStr | None = Field(default=None, description="Secret access key.")
    path_style: bool = Field(default=True, description="Path-style requests (endpoint/bucket/key).")
    allow_http: bool = Field(default=False, description="Allow a plain-HTTP endpoint (a local test service).")
    prefix: str = Field(default="", description="Key prefix inside the bucket.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALBOX_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Data directory: the SQLite database and the blobs/ directory. "
        "Default: $XDG_DATA_HOME/sealbox (~/.local/share/sealbox).",
    )
    keyring: Path = Field(
        default_factory=default_keyring,
        description="Keyring file of master keys (mode 0600, never inside blobs/). "
        "Default: $XDG_CONFIG_HOME/sealbox/keyring.json (~/.config/sealbox/keyring.json).",
    )
    master_keys: SecretStr | None = Field(
        default=None,
        description="Master keys as 'id:key,id:key' (primary first); replaces the keyring file when set.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy database URL. Default: sqlite+aiosqlite:///DATA_DIR/sealbox.db.",
    )
    storage: Literal["local", "s3"] = Field(
        default="local", description="Where blobs go: 'local' (DATA_DIR/blobs) or 's3' (see SEALBOX_S3__*)."
    )
    s3: S3Settings = Field(default_factory=S3Settings, description="S3 settings, as SEALBOX_S3__<NAME>.")
    max_upload_size: int = Field(
        default=16 << 30,
        description="Largest accepted file, in bytes or with a unit (512M, 10G). Default: 16G.",
    )
    token_ttl_days: int = Field(default=30, ge=1, le=3650, description="Lifetime of a sign-in token, in days.")
    login_max_failures: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "Failed sign-ins and wrong current passwords per user name within the window before 429 (5x per address)."
        ),
    )
    login_window_seconds: int = Field(
        default=900, ge=1, le=86400, description="The window for counting failed sign-ins, in seconds."
    )
    link_default_days: float = Field(
        default=7,
        gt=0,
        le=36500,
        description="Lifetime of a share or upload-request link when none is asked for, in days.",
    )
    link_max_days: float = Field(
        default=90, gt=0, le=36500, description="Longest lifetime a link may be given, in days."
    )
    link_password_required: bool = Field(default=False, description="Refuse to create links without a password.")
    link_max_downloads: int | None = Field(
        default=None,
        ge=1,
        description="Cap on a share link's download limit; links asked for without a limit get the cap. Default: none.",
    )
    link_max_failures: int = Field(
        default=10, ge=1, le=1000, description="Wrong passwords per link within the window before 429 (5x per address)."
    )
    link_window_seconds: int = Field(
        default=900, ge=1, le=86400, description="The window for counting wrong link passwords, in seconds."
    )
    upload_expiry_hours: float = Field(
        default=24, gt=0, le=8760, description="How long an unfinished resumable upload lives after its last write."
    )
    upload_max_pending: int = Field(
        default=100,
        ge=1,
        le=100000,
        description="Unfinished resumable uploads an account may have at once (409 past it).",
    )
    user_quota: int | None = Field(
        default=None, description="Bytes each account may store, with a unit allowed (50G). Default: no quota."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated proxy addresses whose X-Forwarded-For is believed. Default: none.",
    )
    key_report_seconds: float = Field(
        default=15,
        ge=0.5,
        le=3600,
        description="How often each server process records the master key ids it holds in the database "
        "(also within a second of a change); one silent for 4x this no longer counts as running.",
    )
    cookie_secure: Literal["auto", "always"] = Field(
        default="auto",
        description=(
            "When browser cookies carry Secure: 'auto' when the request arrived over HTTPS "
            "(directly, or by X-Forwarded-Proto from a trusted proxy); 'always' on every "
            "response. Set 'always' behind a TLS proxy that is not in SEALBOX_TRUSTED_PROXIES."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address 'sealbox serve' listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port 'sealbox serve' listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="Server worker processes.")

    @field_validator("max_upload_size", "user_quota", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        size = parse_size(value)
        if size < 1:
            raise ValueError("must be at least 1 byte")
        return size

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'sealbox.db'}"
