"""Sealed objects: a chunked, streaming AEAD format (AES-256-GCM), format version 1.

``cryptography`` has no streaming AEAD, and ``Cipher(AES, GCM).decryptor().update()``
releases plaintext before the tag is checked. So the object is cut into chunks, each
sealed with the one-shot ``AESGCM`` and opened only whole: no byte of a chunk leaves
this module before that chunk authenticated. The nonce carries a counter and a
last-chunk flag (the design of age and Tink's streaming AEAD), and every chunk's
associated data is the SHA-256 of the header, which names the tenant and the object:
reordered, dropped, duplicated, truncated, extended or transplanted chunks fail.

Layout (all integers unsigned big-endian)::

    offset   size  field
    0        4     magic b"BOPV"
    4        1     format version = 1
    5        4     chunk size C: plaintext bytes per chunk (1 .. 16 MiB; 1 MiB, or 64 KiB before 2026-11-23)
    9        16    tenant id (UUID, 16 raw bytes)
    25       16    object id (UUID, 16 raw bytes)
    41       2     key id length K (1 .. 255)
    43       K     key id, UTF-8 (e.g. "tenant:<uuid>")
    43+K     4     key version (>= 1)
    47+K     2     wrapped data key length W (1 .. 1024)
    49+K     W     wrapped data key (as first written; see below)
    49+K+W   7     nonce prefix (random per object)
    56+K+W         chunks

    chunk i = AES-256-GCM(key=DEK, nonce=prefix(7) || i(4) || final(1),
                          aad=SHA-256(header bytes), plaintext chunk i) -> ciphertext || tag(16)

Every chunk but the last holds exactly C plaintext bytes (C + 16 stored); the last one
holds 1 .. C bytes, or 0 when the whole object is empty (an empty object is one empty
final chunk). There are at most 2**32 chunks. The data key (DEK) used to open an object
comes from the caller (``dek_for``): the catalogue's current wrap, not necessarily the
header's copy, which records how the object was first written. docs/vault-format.md
has the full rationale.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"BOPV"
FORMAT_VERSION = 1
# 1 MiB: per-chunk work (a call, a nonce, a tag) is paid 16x less often than at 64 KiB, which
# lifted downloads from about half to over 90 % of the raw cipher's rate; a reader holds one chunk.
# Objects written with another size keep it: the header says which.
CHUNK_SIZE = 1024 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # bounds what a forged header can make a reader allocate
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 7
MAX_KEY_ID = 255
MAX_WRAPPED_DEK = 1024
_MAX_COUNTER = 2**32 - 1  # the counter is 4 bytes in the nonce; a module constant so tests can lower it

_FIXED = struct.Struct(">4sBI16s16sH")  # magic, version, chunk size, tenant, object, key id length
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class IntegrityError(Exception):
    """A sealed object is malformed, altered, truncated, extended or not the one expected."""


class SupportsRead(Protocol):
    """Anything with ``read(n)`` (a file, a boto3 ``StreamingBody``); may return fewer bytes."""

    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class KeyRef:
    """Which tenant key (and which version of it) wraps a data key."""

    key_id: str
    version: int


@dataclass(frozen=True)
class Header:
    """A parsed header; ``raw`` is its exact bytes, hashed into every chunk's associated data."""

    version: int
    chunk_size: int
    tenant_id: UUID
    object_id: UUID
    key_ref: KeyRef
    wrapped_dek: bytes
    nonce_prefix: bytes
    raw: bytes


def encode_header(*, tenant_id: UUID, object_id: UUID, key_ref: KeyRef, wrapped_dek: bytes,
                  nonce_prefix: bytes, chunk_size: int = CHUNK_SIZE) -> Header:
    """Build a header; refuses values the reader would refuse, so nothing unreadable is written."""
    key_id = key_ref.key_id.encode("utf-8")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes")
    if not 1 <= len(key_id) <= MAX_KEY_ID:
        raise ValueError(f"key id must be 1 to {MAX_KEY_ID} bytes of UTF-8")
    if not 1 <= key_ref.version <= 0xFFFFFFFF:
        raise ValueError("key version must be between 1 and 2**32 - 1")
    if not 1 <= len(wrapped_dek) <= MAX_WRAPPED_DEK:
        raise ValueError(f"wrapped data key must be 1 to {MAX_WRAPPED_DEK} bytes")
    if len(nonce_prefix) != NONCE_PREFIX_SIZE:
        raise ValueError(f"nonce prefix must be {NONCE_PREFIX_SIZE} bytes")
    raw = b"".join((
        _FIXED.pack(MAGIC, FORMAT_VERSION, chunk_size, tenant_id.bytes, object_id.bytes, len(key_id)),
        key_id, _U32.pack(key_ref.version), _U16.pack(len(wrapped_dek)), wrapped_dek, nonce_prefix,
    ))
    return Header(FORMAT_VERSION, chunk_size, tenant_id, object_id, key_ref, bytes(wrapped_dek),
                  bytes(nonce_prefix), raw)


def _read_up_to(reader: SupportsRead, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of input (``read`` may return short counts)."""
    data = reader.read(n)
    if len(data) >= n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = reader.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_exact(reader: SupportsRead, n: int, what: str) -> bytes:
    data = _read_up_to(reader, n)
    if len(data) != n:
        raise IntegrityError(f"the header is truncated: it ends inside the {what}")
    return data


def read_header(reader: SupportsRead) -> Header:
    """Read and strictly parse a header, leaving ``reader`` at the first chunk.

    Only the structure is checked here; the header's bytes are authenticated by every
    chunk (their hash is the associated data), so an altered header fails at chunk 0.
    """
    fixed = _read_up_to(reader, _FIXED.size)
    if not fixed:
        raise IntegrityError("the stored object is empty: it has no header")
    if fixed[:4] != MAGIC:
        if MAGIC.startswith(fixed):
            raise IntegrityError("the header is truncated: it ends inside the magic bytes")
        raise IntegrityError("not a sealed object: the magic bytes are wrong")
    if len(fixed) < _FIXED.size:
        raise IntegrityError("the header is truncated: it ends inside the fixed fields")
    _magic, version, chunk_size, tenant, obj, key_id_len = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise IntegrityError(f"unsupported sealed format version {version} (this reader knows {FORMAT_VERSION})")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"the header is malformed: chunk size {chunk_size} is out of bounds")
    if not 1 <= key_id_len <= MAX_KEY_ID:
        raise IntegrityError(f"the header is malformed: key id length {key_id_len} is out of bounds")
    key_id_raw = _read_exact(reader, key_id_len, "key id")
    try:
        key_id = key_id_raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError("the header is malformed: the key id is not UTF-8") from None
    key_version_raw = _read_exact(reader, _U32.size, "key version")
    (key_version,) = _U32.unpack(key_version_raw)
    if key_version < 1:
        raise IntegrityError("the header is malformed: key version 0")
    wrapped_len_raw = _read_exact(reader, _U16.size, "wrapped data key length")
    (wrapped_len,) = _U16.unpack(wrapped_len_raw)
    if not 1 <= wrapped_len <= MAX_WRAPPED_DEK:
        raise IntegrityError(f"the header is malformed: wrapped data key length {wrapped_len} is out of bounds")
    wrapped = _read_exact(reader, wrapped_len, "wrapped data key")
    prefix = _read_exact(reader, NONCE_PREFIX_SIZE, "nonce prefix")
    raw = b"".join((fixed, key_id_raw, key_version_raw, wrapped_len_raw, wrapped, prefix))
    return Header(version, chunk_size, UUID(bytes=tenant), UUID(bytes=obj), KeyRef(key_id, key_version),
                  wrapped, prefix, raw)


def _nonce(prefix: bytes, counter: int, final: bool) -> bytes:
    return prefix + _U32.pack(counter) + (b"\x01" if final else b"\x00")


def seal(chunks: Iterable[bytes], *, dek: bytes, tenant_id: UUID, object_id: UUID, key_ref: KeyRef,
         wrapped_dek: bytes, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the header bytes, then each sealed chunk, re-chunking input of any piece sizes.

    Holds at most one chunk of plaintext: a chunk is sealed as non-final only once a
    byte beyond it has arrived, so the last one can carry the final flag. Input pieces
    are not retained after the next one is asked for (reused buffers are safe).
    """
    if len(dek) != 32:
        raise ValueError("the data key must be 32 bytes (AES-256)")
    header = encode_header(tenant_id=tenant_id, object_id=object_id, key_ref=key_ref, wrapped_dek=wrapped_dek,
                           nonce_prefix=os.urandom(NONCE_PREFIX_SIZE), chunk_size=chunk_size)
    return _seal(chunks, AESGCM(dek), header)


def _seal(chunks: Iterable[bytes], aead: AESGCM, header: Header) -> Iterator[bytes]:
    yield header.raw
    aad = hashlib.sha256(header.raw).digest()
    prefix, size = header.nonce_prefix, header.chunk_size
    counter = 0

    def sealed(data: bytes | bytearray | memoryview, final: bool) -> bytes:
        nonlocal counter
        if counter > _MAX_COUNTER:
            raise ValueError("the object is too large for the sealed format: the chunk counter would overflow")
        out = aead.encrypt(_nonce(prefix, counter, final), data, aad)
        counter += 1
        return out

    buf = bytearray()  # the (at most one chunk) tail whose successor is not known yet
    for piece in chunks:
        view = memoryview(piece).cast("B")
        if not view:
            continue
        offset = 0
        if buf:
            offset = min(size - len(buf), len(view))
            buf += view[:offset]
            if offset == len(view):
                continue  # nothing known beyond buf yet
            yield sealed(buf, False)  # buf is full and more data follows
            buf = bytearray()
        while len(view) - offset > size:  # whole chunks straight from the input, no copy
            yield sealed(view[offset:offset + size], False)
            offset += size
        buf += view[offset:]
    yield sealed(buf, True)


def sealed_size(plaintext_size: int, header_len: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Stored size of a plaintext of ``plaintext_size`` bytes with a header of ``header_len`` bytes."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return header_len + plaintext_size + chunks * TAG_SIZE


class PlaintextStream(Iterator[bytes]):
    """Authenticated plaintext chunks, with ``close()`` (Werkzeug calls it) to release the source.

    The first chunk is opened when the stream is created, so a wrong tenant, a missing
    key or an altered header raises before a caller commits to a response.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        try:
            self._first: bytes | None = next(chunks)
        except StopIteration:  # pragma: no cover - a sealed object always has a final chunk
            self._first = None
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> PlaintextStream:
        return self

    def __next__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and release the underlying reader."""
        self._first = None
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> PlaintextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sealed(reader: SupportsRead, *, tenant_id: UUID, object_id: UUID,
                dek_for: Callable[[Header], bytes]) -> PlaintextStream:
    """Yield the plaintext chunk by chunk, each only after it authenticated.

    The header must name ``tenant_id`` and ``object_id`` (checked before ``dek_for`` is
    asked for a key). Raises ``IntegrityError`` at the first altered, missing,
    duplicated or reordered chunk, on truncation and on data after the final chunk.
    Chunk 0 is opened eagerly (see ``PlaintextStream``).
    """
    return PlaintextStream(_open(reader, tenant_id, object_id, dek_for))


def _open(reader: SupportsRead, tenant_id: UUID, object_id: UUID,
          dek_for: Callable[[Header], bytes]) -> Iterator[bytes]:
    header = read_header(reader)
    if header.tenant_id != tenant_id:
        raise IntegrityError("the object belongs to another tenant")
    if header.object_id != object_id:
        raise IntegrityError("the header belongs to another object")
    aead = AESGCM(dek_for(header))
    aad = hashlib.sha256(header.raw).digest()
    prefix = header.nonce_prefix
    full = header.chunk_size + TAG_SIZE
    counter = 0
    current = _read_up_to(reader, full)
    while True:
        if counter > _MAX_COUNTER:
            raise IntegrityError("the stored object has more chunks than the format allows (counter overflow)")
        if len(current) < TAG_SIZE:
            if counter == 0 and not current:
                raise IntegrityError("the stored object is truncated: it has a header but no chunks")
            if not current:
                raise IntegrityError("the stored object is truncated: its final chunk is missing")
            raise IntegrityError(f"the stored object is truncated: chunk {counter} is cut short")
        # A full-size chunk is final only if nothing follows it: read one chunk ahead.
        following = _read_up_to(reader, full) if len(current) == full else b""
        final = not following
        try:
            plaintext = aead.decrypt(_nonce(prefix, counter, final), current, aad)
        except InvalidTag:
            raise _diagnose(aead, prefix, aad, counter, current, final) from None
        yield plaintext
        if final:
            return
        counter += 1
        current = following


def _diagnose(aead: AESGCM, prefix: bytes, aad: bytes, counter: int, chunk: bytes, final: bool) -> IntegrityError:
    """Say why chunk ``counter`` failed: the same chunk with the other final flag tells truncation or extension."""
    try:
        aead.decrypt(_nonce(prefix, counter, not final), chunk, aad)
    except InvalidTag:
        if counter == 0:
            return IntegrityError("chunk 0 failed authentication: the stored object or its header was altered "
                                  "or damaged, or the data key is not this object's")
        return IntegrityError(f"chunk {counter} failed authentication: the stored object was altered or damaged")
    if final:
        return IntegrityError("the stored object is truncated: its final chunk is missing")
    return IntegrityError("data follows the final chunk")
