"""Streaming ZIP archives, written while the members' contents are read.

The archive is made as it is sent: nothing is buffered beyond a small batch of headers, and
nothing touches the filesystem. Members are *stored* (method 0, no recompression), their
CRC-32 is computed while their bytes pass through and written afterwards in a data
descriptor (general-purpose flag bit 3), and names are UTF-8 (flag bit 11). Directories are
entries of their own, so empty folders survive extraction.

Every layout decision depends only on what is known before the first byte (each member's
path, size and modification time, and the offsets they imply), never on the content, which
is what lets ``archive_size`` give the exact length for ``Content-Length``:

- a member of 4 GiB - 1 bytes or more carries a ZIP64 extra field in its local header and a
  ZIP64 data descriptor (8-byte sizes); smaller members use the classic 32-bit forms;
- the central directory entry carries a ZIP64 extra field holding exactly the values that do
  not fit 32 bits (size, then offset of the local header), in the order the format fixes;
- the ZIP64 end-of-central-directory record and locator are written when the member count,
  the directory size or its offset does not fit the classic end record.

Modification times are written twice: as a DOS date and time (UTC, clamped to the years
1980–2107 that the field can hold) and, when the time fits a signed 32-bit Unix time, as an
extended timestamp field (0x5455), which unzip, bsdtar and 7-Zip prefer.

Memory grows with the number of members (the central directory needs each one's name, size,
CRC and offset: about 100 bytes plus its name), never with their content.

Errors: ``ArchiveError`` for a member that cannot be archived (an unsafe path, a duplicate,
a naive time) or whose content yields more or fewer bytes than its declared size. Messages
name members by their position, never by path: paths are users' file names.
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ArchiveError", "Member", "archive_size", "zip_stream"]

Chunk = bytes | bytearray | memoryview


class ArchiveError(Exception):
    """A member cannot be archived, or its content does not match its declared size."""


@dataclass(frozen=True)
class Member:
    """One entry of an archive.

    ``path`` is relative and ``/``-separated; a directory's path ends with ``/``, its ``size``
    is 0 and its ``open`` is None. ``open`` is called only when the member is reached, and
    the iterator it returns must yield exactly ``size`` bytes in all.
    """

    path: str
    size: int
    modified: datetime
    open: Callable[[], AsyncIterator[Chunk]] | None


_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_DESCRIPTOR_32 = struct.Struct("<IIII")  # 16 bytes
_DESCRIPTOR_64 = struct.Struct("<IIQQ")  # 24 bytes
_END_64 = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_LOCATOR_64 = struct.Struct("<IIQI")  # 20 bytes
_END = struct.Struct("<IHHHHIIH")  # 22 bytes
_TIMESTAMP = struct.Struct("<HHBI")  # extended timestamp extra field, modification time only

_LOCAL_SIG = 0x04034B50
_CENTRAL_SIG = 0x02014B50
_DESCRIPTOR_SIG = 0x08074B50
_END_64_SIG = 0x06064B50
_LOCATOR_64_SIG = 0x07064B50
_END_SIG = 0x06054B50

_FLAG_DESCRIPTOR = 0x0008
_FLAG_UTF8 = 0x0800
_STORED = 0
_VERSION_DEFAULT = 20  # 2.0: directories, stored members with data descriptors
_VERSION_ZIP64 = 45  # 4.5: ZIP64 extensions
_MADE_BY = (3 << 8) | _VERSION_ZIP64  # Unix, so the external attributes are file modes
_FILE_ATTRIBUTES = 0o100644 << 16
_DIRECTORY_ATTRIBUTES = (0o040755 << 16) | 0x10  # plus the MS-DOS directory bit

_MAX_16 = 0xFFFF
_MAX_32 = 0xFFFFFFFF
# The range of a DOS date and time, as Unix times (UTC).
_DOS_MIN = int(datetime(1980, 1, 1, tzinfo=UTC).timestamp())
_DOS_MAX = int(datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC).timestamp())

_UNSAFE_PARTS = frozenset(("", ".", ".."))

# Headers and small pieces are gathered into batches of this size; larger pieces of content
# pass through as they are, so the writer adds no copy to the bulk of the bytes.
_BATCH = 64 * 1024


@dataclass(slots=True)
class _Entry:
    """What the headers of one member need, checked and encoded."""

    name: bytes
    size: int
    is_dir: bool
    dos_time: int
    dos_date: int
    unix_time: int | None

    @property
    def zip64_local(self) -> bool:
        # Decided by the declared size alone, so the local header, the data descriptor and
        # archive_size all agree before the content is read.
        return self.size >= _MAX_32

    def local_header(self, offset: int) -> bytes:
        extra = self._timestamp()
        if self.zip64_local:
            # Sizes are deferred to the data descriptor: the extra field holds zeros.
            extra += struct.pack("<HHQQ", 0x0001, 16, 0, 0)
            sizes = _MAX_32
        else:
            sizes = 0
        flags = _FLAG_UTF8 if self.is_dir else _FLAG_UTF8 | _FLAG_DESCRIPTOR
        return (
            _LOCAL.pack(
                _LOCAL_SIG,
                self._version(offset),
                flags,
                _STORED,
                self.dos_time,
                self.dos_date,
                0,
                sizes,
                sizes,
                len(self.name),
                len(extra),
            )
            + self.name
            + extra
        )

    def descriptor(self, crc: int) -> bytes:
        if self.is_dir:
            return b""
        if self.zip64_local:
            return _DESCRIPTOR_64.pack(_DESCRIPTOR_SIG, crc, self.size, self.size)
        return _DESCRIPTOR_32.pack(_DESCRIPTOR_SIG, crc, self.size, self.size)

    def central_header(self, offset: int, crc: int) -> bytes:
        extra = self._timestamp()
        wide = b""
        size32 = self.size
        if self.size >= _MAX_32:
            wide += struct.pack("<QQ", self.size, self.size)
            size32 = _MAX_32
        offset32 = offset
        if offset >= _MAX_32:
            wide += struct.pack("<Q", offset)
            offset32 = _MAX_32
        if wide:
            extra += struct.pack("<HH", 0x0001, len(wide)) + wide
        flags = _FLAG_UTF8 if self.is_dir else _FLAG_UTF8 | _FLAG_DESCRIPTOR
        attributes = _DIRECTORY_ATTRIBUTES if self.is_dir else _FILE_ATTRIBUTES
        return (
            _CENTRAL.pack(
                _CENTRAL_SIG,
                _MADE_BY,
                self._version(offset),
                flags,
                _STORED,
                self.dos_time,
                self.dos_date,
                crc,
                size32,
                size32,
                len(self.name),
                len(extra),
                0,  # comment length
                0,  # disk number
                0,  # internal attributes
                attributes,
                offset32,
            )
            + self.name
            + extra
        )

    def _version(self, offset: int) -> int:
        return _VERSION_ZIP64 if self.size >= _MAX_32 or offset >= _MAX_32 else _VERSION_DEFAULT

    def _timestamp(self) -> bytes:
        if self.unix_time is None:
            return b""
        return _TIMESTAMP.pack(0x5455, 5, 1, self.unix_time)


def _entry(member: Member, index: int) -> _Entry:
    """Check one member and encode what its headers need; raise ``ArchiveError`` if unfit."""
    where = f"archive member {index}"
    path = member.path
    is_dir = path.endswith("/")
    parts = (path[:-1] if is_dir else path).split("/")
    # Defence in depth against paths that escape the extraction directory ("zip slip"),
    # including through Windows separators. (A ":" is left alone: file names may hold one,
    # and extractors on Windows replace it.)
    if not path or not _UNSAFE_PARTS.isdisjoint(parts) or "\\" in path or "\0" in path:
        raise ArchiveError(f"{where}: the path is not a safe relative path")
    if is_dir and (member.size != 0 or member.open is not None):
        raise ArchiveError(f"{where}: a directory has no content")
    if not is_dir and (member.open is None or member.size < 0):
        raise ArchiveError(f"{where}: a file needs a size of 0 or more and content")
    name = path.encode("utf-8")
    if len(name) > _MAX_16:
        raise ArchiveError(f"{where}: the path is longer than 65,535 bytes")
    modified = member.modified
    if modified.tzinfo is None or modified.utcoffset() is None:
        raise ArchiveError(f"{where}: the modification time has no time zone")
    unix = math.floor(modified.timestamp())
    dos = time.gmtime(min(max(unix, _DOS_MIN), _DOS_MAX))
    return _Entry(
        name=name,
        size=member.size,
        is_dir=is_dir,
        dos_time=(dos.tm_hour << 11) | (dos.tm_min << 5) | (dos.tm_sec // 2),
        dos_date=((dos.tm_year - 1980) << 9) | (dos.tm_mon << 5) | dos.tm_mday,
        unix_time=unix if 0 <= unix < 2**31 else None,
    )


def _entries(members: Iterable[Member]) -> Iterable[tuple[Member, _Entry]]:
    seen: set[bytes] = set()
    for index, member in enumerate(members):
        entry = _entry(member, index)
        if entry.name in seen:
            raise ArchiveError(f"archive member {index}: the path appears twice")
        seen.add(entry.name)
        yield member, entry


def _end_records(count: int, directory_offset: int, directory_size: int) -> bytes:
    end_offset = directory_offset + directory_size
    records = b""
    if count >= _MAX_16 or directory_offset >= _MAX_32 or directory_size >= _MAX_32:
        records += _END_64.pack(
            _END_64_SIG,
            _END_64.size - 12,  # the record's size, not counting its first 12 bytes
            _MADE_BY,
            _VERSION_ZIP64,
            0,
            0,
            count,
            count,
            directory_size,
            directory_offset,
        )
        records += _LOCATOR_64.pack(_LOCATOR_64_SIG, 0, end_offset, 1)
    records += _END.pack(
        _END_SIG,
        0,
        0,
        min(count, _MAX_16),
        min(count, _MAX_16),
        min(directory_size, _MAX_32),
        min(directory_offset, _MAX_32),
        0,
    )
    return records


def archive_size(members: Sequence[Member]) -> int:
    """The exact byte length of ``zip_stream(members)``, for ``Content-Length``.

    Raises ``ArchiveError`` for the members ``zip_stream`` would refuse, so a caller can
    check before it starts a response.
    """
    offset = 0
    directory_size = 0
    count = 0
    for _, entry in _entries(members):
        directory_size += len(entry.central_header(offset, 0))
        offset += len(entry.local_header(offset)) + entry.size + len(entry.descriptor(0))
        count += 1
    return offset + directory_size + len(_end_records(count, offset, directory_size))


async def zip_stream(members: Iterable[Member]) -> AsyncGenerator[bytes, None]:
    """The archive of ``members``, in order, as it is made.

    Raises ``ArchiveError`` when a member is unfit or its content yields more or fewer bytes
    than its ``size`` (checked before any surplus byte is yielded); the archive is then
    incomplete and the caller must abort the response. An exception raised by a member's
    content passes through unchanged. Closing this generator early (``aclose``) closes the
    content iterator in progress; no later member is opened.
    """
    written: list[tuple[_Entry, int, int]] = []  # entry, offset of its local header, CRC
    offset = 0
    batch = bytearray()
    for index, (member, entry) in enumerate(_entries(members)):
        header = entry.local_header(offset)
        batch += header
        crc = 0
        if member.open is not None:
            received = 0
            source = member.open()
            try:
                async for piece in source:
                    data = piece if type(piece) is bytes else bytes(piece)
                    received += len(data)
                    if received > entry.size:
                        raise ArchiveError(f"archive member {index}: the content is longer than its size")
                    crc = zlib.crc32(data, crc)
                    if len(data) >= _BATCH // 4:
                        if batch:
                            yield bytes(batch)
                            batch.clear()
                        yield data
                    else:
                        batch += data
                        if len(batch) >= _BATCH:
                            yield bytes(batch)
                            batch.clear()
            finally:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
            if received != entry.size:
                raise ArchiveError(f"archive member {index}: the content is shorter than its size")
        descriptor = entry.descriptor(crc)
        batch += descriptor
        written.append((entry, offset, crc))
        offset += len(header) + entry.size + len(descriptor)
        if len(batch) >= _BATCH:
            yield bytes(batch)
            batch.clear()

    directory_offset = offset
    for entry, local_offset, crc in written:
        header = entry.central_header(local_offset, crc)
        offset += len(header)
        batch += header
        if len(batch) >= _BATCH:
            yield bytes(batch)
            batch.clear()
    batch += _end_records(len(written), directory_offset, offset - directory_offset)
    yield bytes(batch)
