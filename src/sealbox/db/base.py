"""The declarative base and portable column types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


M = TypeVar("M", bound=Base)


class Columns(Generic[M]):
    """A model's mapped columns, to select as plain values (Core, no session) and to build
    a detached instance from: what the hot paths use instead of ORM queries."""

    def __init__(self, model: type[M]) -> None:
        attrs = model.__mapper__.column_attrs
        self.model = model
        self.keys = tuple(attr.key for attr in attrs)
        self.columns: tuple[ColumnElement[Any], ...] = tuple(attr.columns[0] for attr in attrs)

    def __len__(self) -> int:
        return len(self.keys)

    def build(self, values: Sequence[Any]) -> M:
        """An instance holding ``values`` (in the order of ``columns``), attached to no session."""
        return self.model(**dict(zip(self.keys, values, strict=True)))

    def values(self, instance: M) -> dict[str, Any]:
        """The values ``instance`` was given, by column name, for a Core ``INSERT`` (the
        columns it leaves out take their defaults)."""
        given = instance.__dict__
        return {column.name: given[key] for key, column in zip(self.keys, self.columns, strict=True) if key in given}
