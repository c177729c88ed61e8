"""The vault's storage engine, without the database: keyring + sealed format + object storage.

``store`` seals a stream under a fresh data key and writes it to storage; ``open_object``
reads it back, chunk by chunk, each chunk authenticated before it is released. The
catalogue (``portal.documents.models.StoredObject``) keeps what ``store`` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

from portal.documents.storage import Storage
from tenants.keyring import Keyring, new_dek
from tenants.sealed import CHUNK_SIZE, KeyRef, PlaintextStream, open_sealed, seal, sealed_size

_HASH_BATCH = 1024 * 1024  # plaintext handed to the hashing thread at a time
_HASH_QUEUE = 4  # batches in flight: bounds the memory the hashing thread can hold on to


@dataclass(frozen=True)
class StoredObject:
    """What the catalogue must keep to find and open an object again."""

    storage_key: str
    object_id: UUID
    size: int
    sealed_size: int
    sha256: str
    key_ref: KeyRef
    wrapped_dek: bytes


class _Hasher:
    """SHA-256 of the plaintext on a helper thread once the input passes one batch.

    hashlib releases the GIL on large buffers, so on two cores hashing runs beside the
    encryption and the storage write instead of adding to them (SHA-256 is slower
    than AES-GCM here). Small objects are hashed inline, without a thread.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._queue: queue.Queue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            # One update per batch: each update() releases and retakes the GIL, and the
            # sealing thread wants it back; joining 1 MiB costs less than 16 handovers.
            self._hash.update(b"".join(batch))

    def update(self, data: bytes) -> None:
        # Hashed later: keep an immutable copy if the caller may reuse its buffer.
        self._batch.append(data if isinstance(data, bytes) else bytes(data))
        self._batched += len(data)
        if self._batched >= _HASH_BATCH:
            if self._thread is None:
                self._queue = queue.Queue(maxsize=_HASH_QUEUE)
                self._thread = threading.Thread(target=self._run, name="vault-sha256", daemon=True)
                self._thread.start()
            assert self._queue is not None
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def _stop(self) -> None:
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self._stop()
        for piece in self._batch:
            self._hash.update(piece)
        self._batch = []
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the thread after a failure (the digest is not needed)."""
        self._batch = []
        self._stop()


def store(storage: Storage, keyring: Keyring, tenant_id: UUID, chunks: Iterable[bytes], *,
          on_chunk: Callable[[bytes], None] | None = None) -> StoredObject:
    """Seal ``chunks`` under a fresh data key and write them to ``storage`` under a fresh key.

    ``on_chunk`` sees each plaintext piece before it is sealed (type sniffing, size
    limits); if it (or the input) raises, the write is aborted and nothing is left in
    storage. Size and SHA-256 of the plaintext are computed on the way through.
    """
    object_id = uuid4()
    storage_key = storage.new_key()
    dek = new_dek()
    key_ref, wrapped = keyring.wrap(tenant_id, object_id, dek)
    hasher = _Hasher()
    size = 0

    def plaintext() -> Iterator[bytes]:
        nonlocal size
        for piece in chunks:
            if on_chunk is not None:
                on_chunk(piece)
            hasher.update(piece)
            size += len(piece)
            yield piece

    header_len = 0

    def sealed() -> Iterator[bytes]:
        nonlocal header_len
        stream = seal(plaintext(), dek=dek, tenant_id=tenant_id, object_id=object_id, key_ref=key_ref,
                      wrapped_dek=wrapped)
        header = next(stream)
        header_len = len(header)
        yield header
        yield from stream

    try:
        written = storage.put(storage_key, sealed())
        digest = hasher.hexdigest()
        expected = sealed_size(size, header_len, CHUNK_SIZE)
        if written != expected:
            raise OSError(f"storage wrote {written} bytes of a {expected}-byte sealed object")
    except BaseException:
        hasher.close()
        # put() is atomic already; deleting again costs one call and covers a store that is not.
        with contextlib.suppress(Exception):
            storage.delete(storage_key)
        raise
    return StoredObject(storage_key, object_id, size, written, digest, key_ref, wrapped)


def open_object(storage: Storage, keyring: Keyring, tenant_id: UUID, obj_id: UUID, storage_key: str,
                key_ref: KeyRef, wrapped_dek: bytes) -> PlaintextStream:
    """The plaintext of a stored object, chunk by chunk, each authenticated before it is released.

    The data key comes from the catalogue's ``(key_ref, wrapped_dek)``, not from the
    header: key rotation re-wraps data keys in the database without rewriting objects,
    so the header's copy only records how the object was first written. The header
    must name ``tenant_id`` and ``obj_id``. Storage is opened and chunk 0 checked
    before this returns (``ObjectMissing``, ``IntegrityError``, ``KeyUnavailable``
    are raised here, before a response starts); ``close()`` releases the stream.
    """

    def chunks() -> Iterator[bytes]:
        with storage.open(storage_key) as reader:
            yield from open_sealed(reader, tenant_id=tenant_id, object_id=obj_id,
                                   dek_for=lambda _header: keyring.unwrap(tenant_id, obj_id, key_ref, wrapped_dek))

    return PlaintextStream(chunks())
