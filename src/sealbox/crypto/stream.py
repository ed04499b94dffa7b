"""sealbox stream v1: chunked AES-256-GCM in the STREAM construction.

A blob is an 88-byte header followed by chunks::

    off len  field
      0   4  magic       b"SBOX"
      4   1  version     1
      5   1  alg         1 = AES-256-GCM + HKDF-SHA256
      6   1  chunk_log2  16, 18 or 20
      7   1  flags       0
      8  16  file_id     the file's UUID
     24  32  salt        fresh random bytes on every write
     56  32  header_tag  HMAC-SHA256(K_hdr, header[0:56])

``K_hdr || K_pay = HKDF-SHA256(ikm=DEK, salt=salt, info=b"sealbox/v1" || header[0:24])``.
Chunk ``i`` is ``AES-256-GCM(K_pay, nonce=i (11 bytes, big-endian) || final, aad=header_tag)``
where ``final`` is 1 on the last chunk only. Every chunk but the last holds exactly
``2**chunk_log2`` plaintext bytes; the last holds 1..C bytes, or 0 for an empty file.

Guarantees: plaintext is only ever returned after its chunk's tag has verified; any
truncation, extension, reordering, bit flip or swap between files raises ``IntegrityError``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbox.crypto.errors import FormatError, IntegrityError

MAGIC = b"SBOX"
VERSION = 1
ALG_AES256GCM_HKDF = 1
HEADER_LEN = 88
TAG_LEN = 16
SALT_LEN = 32
DEFAULT_CHUNK_LOG2 = 16
ALLOWED_CHUNK_LOG2 = frozenset({16, 18, 20})
# How much plaintext is sealed or opened per batch handed to the event loop: AES-GCM
# holds the GIL and is fast, so we run it inline and move I/O in large pieces.
BATCH_BYTES = 1 << 20

_PREFIX = struct.Struct(">4sBBBB16s")
_INFO = b"sealbox/v1"


def _nonce(index: int, final: bool) -> bytes:
    # 11-byte counter: 2**88 chunks, far beyond any file; overflow raises OverflowError.
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _derive(dek: bytes, salt: bytes, prefix: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=_INFO + prefix).derive(dek)
    return okm[:32], okm[32:]


def _check_dek(dek: bytes) -> None:
    if len(dek) != 32:
        raise ValueError("a data encryption key is 32 bytes")


def chunk_log2_for(size_hint: int | None) -> int:
    """The chunk size (as ``chunk_log2``) for a new blob of about ``size_hint`` bytes
    (``None``: unknown). Every writer of new blobs asks here.

    64 KiB for every size, for now: AES-GCM costs the same per byte with 64 KiB, 256 KiB
    or 1 MiB chunks (measured: 0.41-0.48 CPU-s per GiB each), and the per-chunk Python
    work of a 1 MiB batch was within the noise, while larger chunks make a small range
    read, and the final-chunk check at every open, decrypt up to 16 times more
    (docs/design.md, "Chunk size"). Every blob records its own chunk size, so a later
    change here leaves old blobs readable.
    """
    return DEFAULT_CHUNK_LOG2


def sealed_size(plain_size: int, chunk_log2: int = DEFAULT_CHUNK_LOG2) -> int:
    """Return the blob size for ``plain_size`` bytes of plaintext."""
    chunks = max(1, -(-plain_size // (1 << chunk_log2)))
    return HEADER_LEN + plain_size + chunks * TAG_LEN


def plain_size_of(blob_size: int, chunk_log2: int) -> int:
    """Return the plaintext size of a blob of ``blob_size`` bytes: the one ``p`` with
    ``sealed_size(p, chunk_log2) == blob_size``.

    Raises ``FormatError`` for sizes that no well-formed blob can have. ``sealed_size``
    is strictly increasing, so each blob size belongs to at most one plaintext size;
    checking the round trip (rather than the shape of the last chunk) is what refuses
    a blob extended by any number of bytes that does not happen to land on another
    well-formed size.
    """
    if chunk_log2 not in ALLOWED_CHUNK_LOG2:
        raise FormatError("unsupported chunk size")
    body = blob_size - HEADER_LEN
    if body < TAG_LEN:
        raise FormatError("blob is shorter than one chunk")
    sealed_chunk = (1 << chunk_log2) + TAG_LEN
    chunks = -(-body // sealed_chunk)
    plain = body - chunks * TAG_LEN
    if sealed_size(plain, chunk_log2) != blob_size:
        raise FormatError("blob size is not the sealed size of any plaintext")
    return plain


@dataclass(frozen=True)
class Header:
    """A parsed, authenticated header."""

    chunk_log2: int
    file_id: bytes
    tag: bytes
    raw: bytes

    @property
    def chunk_size(self) -> int:
        return 1 << self.chunk_log2


def new_header(dek: bytes, file_id: bytes, chunk_log2: int = DEFAULT_CHUNK_LOG2) -> tuple[Header, bytes]:
    """Build a fresh header (new random salt); return it with the payload key."""
    _check_dek(dek)
    if chunk_log2 not in ALLOWED_CHUNK_LOG2:
        raise ValueError(f"chunk_log2 must be one of {sorted(ALLOWED_CHUNK_LOG2)}")
    if len(file_id) != 16:
        raise ValueError("file_id is 16 bytes")
    prefix = _PREFIX.pack(MAGIC, VERSION, ALG_AES256GCM_HKDF, chunk_log2, 0, file_id)
    salt = os.urandom(SALT_LEN)
    k_hdr, k_pay = _derive(dek, salt, prefix)
    body = prefix + salt
    tag = hmac.new(k_hdr, body, hashlib.sha256).digest()
    return Header(chunk_log2, file_id, tag, body + tag), k_pay


def parse_header(raw: bytes, dek: bytes, file_id: bytes) -> tuple[Header, bytes]:
    """Check and authenticate a stored header; return it with the payload key.

    Every field is validated before anything is allocated from it. Raises
    ``FormatError`` for an unknown layout and ``IntegrityError`` if the header was not
    written for this ``file_id`` under this ``dek``.
    """
    _check_dek(dek)
    if len(raw) != HEADER_LEN:
        raise FormatError("blob header is truncated")
    magic, version, alg, chunk_log2, flags, stored_id = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise FormatError("not a sealbox blob")
    if version != VERSION:
        raise FormatError(f"unsupported blob version {version}")
    if alg != ALG_AES256GCM_HKDF:
        raise FormatError(f"unsupported blob algorithm {alg}")
    if chunk_log2 not in ALLOWED_CHUNK_LOG2:
        raise FormatError(f"unsupported chunk size 2**{chunk_log2}")
    if flags != 0:
        raise FormatError("unsupported blob flags")
    prefix = raw[: _PREFIX.size]
    salt = raw[_PREFIX.size : _PREFIX.size + SALT_LEN]
    tag = raw[HEADER_LEN - 32 :]
    k_hdr, k_pay = _derive(dek, salt, prefix)
    expected = hmac.new(k_hdr, raw[: HEADER_LEN - 32], hashlib.sha256).digest()
    # The file id is inside the authenticated prefix, and the DEK is bound to the file
    # id when it is unwrapped, so a blob copied from another file fails one of these.
    if not hmac.compare_digest(expected, tag) or not hmac.compare_digest(stored_id, file_id):
        raise IntegrityError("blob header failed authentication")
    return Header(chunk_log2, bytes(stored_id), bytes(tag), bytes(raw)), k_pay


class Sealer:
    """Encrypts one stream of plaintext into one blob (header included)."""

    def __init__(self, dek: bytes, file_id: bytes, chunk_log2: int = DEFAULT_CHUNK_LOG2) -> None:
        self.header, k_pay = new_header(dek, file_id, chunk_log2)
        self._aead = AESGCM(k_pay)
        self._index = 0
        self.plain_size = 0

    def _seal(self, view: memoryview, final: bool) -> bytearray:
        """Seal ``view`` as consecutive chunks; the last one is final if ``final``."""
        size = self.header.chunk_size
        count = max(1, -(-len(view) // size))
        out = bytearray(len(view) + count * TAG_LEN)
        dest = memoryview(out)
        aad = self.header.tag
        pos = 0
        for k in range(count):
            piece = view[k * size : (k + 1) * size]
            end = pos + len(piece) + TAG_LEN
            nonce = _nonce(self._index, final and k == count - 1)
            self._aead.encrypt_into(nonce, piece, aad, dest[pos:end])
            self._index += 1
            pos = end
        self.plain_size += len(view)
        return out

    async def seal(self, source: AsyncIterable[bytes]) -> AsyncIterator[bytes | bytearray]:
        """Yield the blob for ``source``: the header, then sealed batches of ~1 MiB.

        Each yielded buffer is fresh, so a consumer may keep it. Exceptions raised by
        ``source`` propagate unchanged, so the consumer can abort its write.
        """
        size = self.header.chunk_size
        yield self.header.raw
        pending = bytearray()
        async for piece in source:
            pending += piece
            # Keep at least one byte back: only the end of the source tells which chunk
            # is final, and the final chunk must never be empty unless the file is.
            if len(pending) > BATCH_BYTES:
                whole = (len(pending) - 1) // size * size
                yield self._seal(memoryview(pending)[:whole], final=False)
                del pending[:whole]
        yield self._seal(memoryview(pending), final=True)


class Opener:
    """Authenticates and decrypts one stored blob.

    Built from the header and the blob's stored size; ``verify_final`` must be given the
    last sealed chunk before any plaintext is released, because the final chunk is what
    authenticates the size of the file.
    """

    def __init__(self, header: Header, k_pay: bytes, blob_size: int) -> None:
        self.header = header
        self._aead = AESGCM(k_pay)
        self.plain_size = plain_size_of(blob_size, header.chunk_log2)
        self.chunk_size = header.chunk_size
        self.chunk_count = max(1, -(-self.plain_size // self.chunk_size))
        self.verified_final = False

    def chunk_offset(self, index: int) -> int:
        """Offset in the blob of sealed chunk ``index``."""
        return HEADER_LEN + index * (self.chunk_size + TAG_LEN)

    def chunk_span(self, first: int, last: int) -> tuple[int, int]:
        """Blob offset and length covering sealed chunks ``first..last`` inclusive."""
        start = self.chunk_offset(first)
        end = self.chunk_offset(last + 1)
        total = HEADER_LEN + self.plain_size + self.chunk_count * TAG_LEN
        return start, min(end, total) - start

    def _open(self, index: int, sealed: memoryview, dest: memoryview) -> None:
        final = index == self.chunk_count - 1
        try:
            self._aead.decrypt_into(_nonce(index, final), sealed, self.header.tag, dest)
        except InvalidTag:
            raise IntegrityError(f"chunk {index} failed authentication") from None

    def verify_final(self, sealed: bytes) -> None:
        """Authenticate the last chunk (and with it the plaintext size)."""
        expected = self.plain_size - (self.chunk_count - 1) * self.chunk_size + TAG_LEN
        if len(sealed) != expected:
            raise IntegrityError("final chunk has the wrong length")
        scratch = bytearray(expected - TAG_LEN)
        self._open(self.chunk_count - 1, memoryview(sealed), memoryview(scratch))
        self.verified_final = True

    async def open_range(
        self, sealed: AsyncIterable[bytes | bytearray], start: int, end: int
    ) -> AsyncIterator[bytearray | memoryview]:
        """Yield plaintext bytes ``start..end`` (inclusive) in verified batches.

        ``sealed`` must yield the blob bytes from ``chunk_span(start // C, end // C)``.
        Each batch is decrypted and authenticated in full before it is yielded.
        """
        if not self.verified_final:
            raise RuntimeError("verify_final must be called before any plaintext is released")
        if not 0 <= start <= end < self.plain_size:
            raise ValueError("range outside the file")
        size = self.chunk_size
        sealed_chunk = size + TAG_LEN
        index, last = start // size, end // size
        skip = start - index * size
        remaining = end - start + 1
        per_batch = self.batch_chunks
        pending = b""
        async for piece in sealed:
            # Pieces of exactly ``batch_bytes`` (as the stores deliver them when asked)
            # are decrypted where they lie; only a misaligned remainder is copied.
            data = memoryview(pending + piece if pending else piece)
            pos = 0
            while remaining:
                count = min(per_batch, last - index + 1)
                need = (count - 1) * sealed_chunk + self._sealed_len(index + count - 1)
                if len(data) - pos < need:
                    break
                out = self._open_batch(data[pos : pos + need], index, count)
                pos += need
                index += count
                view = memoryview(out)[skip : skip + remaining]
                skip = 0
                remaining -= len(view)
                yield view
            pending = bytes(data[pos:])
        if remaining or pending:
            raise IntegrityError("blob ended early or has trailing data")

    @property
    def batch_chunks(self) -> int:
        return max(1, BATCH_BYTES // self.chunk_size)

    @property
    def batch_bytes(self) -> int:
        """Sealed bytes per batch: the piece size that ``open_range`` uses without copying."""
        return self.batch_chunks * (self.chunk_size + TAG_LEN)

    def _sealed_len(self, index: int) -> int:
        if index < self.chunk_count - 1:
            return self.chunk_size + TAG_LEN
        return self.plain_size - index * self.chunk_size + TAG_LEN

    def _open_batch(self, sealed: memoryview, index: int, count: int) -> bytearray:
        out = bytearray(len(sealed) - count * TAG_LEN)
        dest = memoryview(out)
        src = dest_pos = 0
        for k in range(count):
            length = self._sealed_len(index + k)
            self._open(index + k, sealed[src : src + length], dest[dest_pos : dest_pos + length - TAG_LEN])
            src += length
            dest_pos += length - TAG_LEN
        return out
