"""The segment table of a file made of several sealbox streams.

A file stored in segments (each one a complete sealbox stream v1 under the file's data
key, with its own salt and so its own payload key) is described by its record: for each
segment in order, its ``header_tag`` and plaintext size. ``table_tag`` authenticates
that list as a whole::

    K_tab     = HKDF-SHA256(ikm=DEK, salt=none, info=b"sealbox/v1/segments", 32)
    table     = file_id (16) || n (8, BE) || tag_1 (32) || size_1 (8, BE) || ... || tag_n || size_n
    table_tag = HMAC-SHA256(K_tab, table)

Every field has a fixed width, so no two different tables encode to the same bytes.
Reordered, dropped, duplicated or swapped segments, an edited size, or a table copied
from another file (another ``file_id`` or another DEK) all change ``table_tag``. Each
segment's own header tag then pins its blob, and its final chunk its length.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbox.crypto.errors import IntegrityError

TABLE_INFO = b"sealbox/v1/segments"
TAG_LEN = 32
_COUNT = struct.Struct(">Q")
_ENTRY = struct.Struct(">32sQ")
_MAX = (1 << 64) - 1


def table_key(dek: bytes) -> bytes:
    """``K_tab``: the key that authenticates a file's segment table."""
    if len(dek) != 32:
        raise ValueError("a data encryption key is 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=TABLE_INFO).derive(dek)


def encode_table(file_id: bytes, segments: Sequence[tuple[bytes, int]]) -> bytes:
    """The bytes ``table_tag`` covers, for ``segments`` given as (header_tag, plaintext size)."""
    if len(file_id) != 16:
        raise ValueError("file_id is 16 bytes")
    parts = [file_id, _COUNT.pack(len(segments))]
    for tag, size in segments:
        if len(tag) != TAG_LEN:
            raise ValueError("a header tag is 32 bytes")
        if not 0 <= size <= _MAX:
            raise ValueError("a segment size is a 64-bit unsigned integer")
        parts.append(_ENTRY.pack(tag, size))
    return b"".join(parts)


def table_tag(dek: bytes, file_id: bytes, segments: Sequence[tuple[bytes, int]]) -> bytes:
    """``table_tag`` of ``segments`` (in order) for the file ``file_id`` under ``dek``."""
    return hmac.new(table_key(dek), encode_table(file_id, segments), hashlib.sha256).digest()


def verify_table(dek: bytes, file_id: bytes, segments: Sequence[tuple[bytes, int]], tag: bytes) -> None:
    """Raise ``IntegrityError`` unless ``tag`` is the table tag of ``segments``."""
    if not hmac.compare_digest(table_tag(dek, file_id, segments), tag):
        raise IntegrityError("segment table failed authentication")


PART_INFO = b"sealbox/v1/upload-part"
_PART = struct.Struct(">16sQQQ32s")


def part_key(dek: bytes) -> bytes:
    """``K_part``: the key that pins each part of an unfinished upload to its place."""
    if len(dek) != 32:
        raise ValueError("a data encryption key is 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PART_INFO).derive(dek)


def part_tag(dek: bytes, file_id: bytes, length: int, offset: int, size: int, header_tag: bytes) -> bytes:
    """The tag of an accepted part of an upload of ``length`` bytes: HMAC-SHA256(K_part,
    file_id (16) || length (8, BE) || offset (8, BE) || size (8, BE) || header_tag (32)).

    Made when the part is accepted and checked when the upload completes, before its
    parts' list becomes the file's segment table (which the server then authenticates
    as it is): a part moved to another place, copied into another part's place, or one
    discarded on a retry and put back, does not carry the tag of that place; and an
    upload whose declared length was changed in its record matches none of its tags.
    """
    if len(file_id) != 16 or len(header_tag) != TAG_LEN:
        raise ValueError("file_id is 16 bytes and a header tag 32")
    if not all(0 <= n <= _MAX for n in (length, offset, size)):
        raise ValueError("lengths, offsets and sizes are 64-bit unsigned integers")
    packed = _PART.pack(file_id, length, offset, size, header_tag)
    return hmac.new(part_key(dek), packed, hashlib.sha256).digest()


def verify_parts(dek: bytes, file_id: bytes, parts: Sequence[tuple[bytes, int, bytes]], length: int) -> None:
    """Raise ``IntegrityError`` unless ``parts`` (in order, each as (header_tag, size,
    tag)) are the parts accepted for the upload of ``length`` bytes bound to ``file_id``,
    each at the place it was accepted at, covering it exactly."""
    offset = 0
    for header_tag, size, tag in parts:
        if not hmac.compare_digest(part_tag(dek, file_id, length, offset, size, header_tag), tag):
            raise IntegrityError("an upload part is not the one accepted at its place")
        offset += size
    if offset != length:
        raise IntegrityError("the upload's parts do not cover its length")
