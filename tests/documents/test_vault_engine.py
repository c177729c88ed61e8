"""The vault engine (keyring + sealed format + storage), through LocalStorage and S3 (moto), no database."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from portal.documents import vault
from portal.documents.storage import LocalStorage, ObjectMissing, S3Storage, Storage
from tenants.keyring import KeyUnavailable, LocalKeyring
from tenants.sealed import CHUNK_SIZE, IntegrityError, KeyRef, read_header, sealed_size

MIB = 1024 * 1024


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keys")


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture
def s3(moto) -> S3Storage:  # noqa: ANN001 - the session's MotoServer
    storage = S3Storage(moto.client("s3"), f"vault-test-{uuid4().hex[:12]}")
    storage.ensure_bucket()
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(request.param)


def stream(size: int, piece: int = 100_000, seed: bytes = b"") -> Iterator[bytes]:
    """``size`` pseudo-random bytes in pieces, generated as they are asked for (nothing large is held)."""
    block = hashlib.sha256(seed or str(size).encode()).digest() * (piece // 32 + 1)
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        yield block[(sent // 32) % 7:][:n]
        sent += n


def digest(chunks: Iterator[bytes]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for chunk in chunks:
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def reopen(storage: Storage, keyring: LocalKeyring, tenant: UUID, stored: vault.StoredObject) -> vault.PlaintextStream:
    return vault.open_object(storage, keyring, tenant, stored.object_id, stored.storage_key, stored.key_ref,
                             stored.wrapped_dek)


def stored_bytes(storage: Storage, key: str) -> bytes:
    with storage.open(key) as reader:
        return reader.read()


def replace_object(storage: Storage, key: str, data: bytes) -> None:
    storage.delete(key)
    storage.put(key, [data])


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --- round trips -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 123])
def test_a_document_of_any_size_comes_back_identical(storage: Storage, keyring: LocalKeyring, size: int) -> None:
    tenant = uuid4()
    expected = digest(stream(size))
    stored = vault.store(storage, keyring, tenant, stream(size))
    assert (stored.size, stored.sha256) == expected
    assert stored.key_ref == keyring.current(tenant)
    assert storage.exists(stored.storage_key)
    with storage.open(stored.storage_key) as reader:
        header = read_header(reader)
        rest = len(reader.read())
    assert (header.tenant_id, header.object_id, header.key_ref) == (tenant, stored.object_id, stored.key_ref)
    assert header.wrapped_dek == stored.wrapped_dek  # the header records how the object was first written
    assert stored.sealed_size == len(header.raw) + rest == sealed_size(size, len(header.raw))
    assert digest(reopen(storage, keyring, tenant, stored)) == expected


def test_a_50_mib_document_streams_through_both_stores(storage: Storage, keyring: LocalKeyring) -> None:
    tenant, size = uuid4(), 50 * MIB
    expected = digest(stream(size, piece=MIB))
    stored = vault.store(storage, keyring, tenant, stream(size, piece=MIB))
    assert (stored.size, stored.sha256) == expected
    chunks = reopen(storage, keyring, tenant, stored)
    sizes = []
    h = hashlib.sha256()
    for chunk in chunks:
        sizes.append(len(chunk))
        h.update(chunk)
    assert h.hexdigest() == expected[1] and max(sizes) == CHUNK_SIZE  # released a chunk at a time


def test_the_storage_key_and_stored_bytes_reveal_nothing(local: LocalStorage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    secret = b"Payroll March: Nguyen Van A, 25,000,000 VND. " * 50
    stored = vault.store(local, keyring, tenant, [secret])
    raw = stored_bytes(local, stored.storage_key)
    assert b"Payroll" not in raw and str(tenant) not in stored.storage_key
    again = vault.store(local, keyring, tenant, [secret])
    assert again.sha256 == stored.sha256 and again.storage_key != stored.storage_key
    assert stored_bytes(local, again.storage_key)[200:] != raw[200:]  # a fresh data key every time


# --- refusals while storing --------------------------------------------------------------------------------

class TooLarge(Exception):
    pass


def refuse_after(limit: int):  # noqa: ANN201 - an on_chunk callback
    seen = 0

    def on_chunk(chunk: bytes) -> None:
        nonlocal seen
        seen += len(chunk)
        if seen > limit:
            raise TooLarge(f"over {limit} bytes")

    return on_chunk


def test_a_refused_upload_leaves_nothing_in_local_storage(local: LocalStorage, keyring: LocalKeyring) -> None:
    with pytest.raises(TooLarge):
        vault.store(local, keyring, uuid4(), stream(3 * MIB), on_chunk=refuse_after(2 * MIB))
    assert files_under(local.root) == []  # neither the object nor a temporary file


def test_a_refused_upload_leaves_nothing_in_s3(s3: S3Storage, keyring: LocalKeyring) -> None:
    with pytest.raises(TooLarge):  # past the first 8 MiB part: a multipart upload was under way
        vault.store(s3, keyring, uuid4(), stream(20 * MIB, piece=MIB), on_chunk=refuse_after(12 * MIB))
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount") == 0
    assert not s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")


def test_a_failing_input_stream_leaves_nothing(local: LocalStorage, keyring: LocalKeyring) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * CHUNK_SIZE * 3
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        vault.store(local, keyring, uuid4(), broken())
    assert files_under(local.root) == []


def test_on_chunk_sees_the_plaintext_as_it_passes(local: LocalStorage, keyring: LocalKeyring) -> None:
    seen: list[bytes] = []
    stored = vault.store(local, keyring, uuid4(), [b"%PDF-1.7 ", b"rest"], on_chunk=seen.append)
    assert seen == [b"%PDF-1.7 ", b"rest"] and stored.size == 13


# --- refusals while opening --------------------------------------------------------------------------------

def opened(storage: Storage, keyring: LocalKeyring, tenant: UUID,
           stored: vault.StoredObject) -> tuple[list[bytes], Exception | None]:
    got: list[bytes] = []
    try:
        for chunk in reopen(storage, keyring, tenant, stored):
            got.append(chunk)
    except (IntegrityError, KeyUnavailable) as exc:
        return got, exc
    return got, None


def test_a_damaged_stored_object_releases_only_the_chunks_before_the_damage(
        storage: Storage, keyring: LocalKeyring) -> None:
    tenant, plaintext = uuid4(), os.urandom(4 * CHUNK_SIZE + 10)
    stored = vault.store(storage, keyring, tenant, [plaintext])
    raw = bytearray(stored_bytes(storage, stored.storage_key))
    header_len = len(raw) - len(plaintext) - 5 * 16
    raw[header_len + 2 * (CHUNK_SIZE + 16) + 100] ^= 0x80  # inside chunk 2
    replace_object(storage, stored.storage_key, bytes(raw))
    got, error = opened(storage, keyring, tenant, stored)
    assert isinstance(error, IntegrityError) and "chunk 2 failed authentication" in str(error)
    assert got == [plaintext[:CHUNK_SIZE], plaintext[CHUNK_SIZE:2 * CHUNK_SIZE]]


def test_an_object_copied_under_another_tenant_is_refused(storage: Storage, keyring: LocalKeyring) -> None:
    tenant_a, tenant_b = uuid4(), uuid4()
    a = vault.store(storage, keyring, tenant_a, [b"tenant A's bank statement"])
    b = vault.store(storage, keyring, tenant_b, [b"tenant B's own file"])
    # Someone with access to the bucket copies A's object over B's; B's catalogue row is unchanged.
    replace_object(storage, b.storage_key, stored_bytes(storage, a.storage_key))
    with pytest.raises(IntegrityError, match="the object belongs to another tenant"):
        reopen(storage, keyring, tenant_b, b)
    # Rewriting the header's ids to B's does not help: the chunks are bound to the original header.
    raw = bytearray(stored_bytes(storage, a.storage_key))
    raw[9:25], raw[25:41] = tenant_b.bytes, b.object_id.bytes
    replace_object(storage, b.storage_key, bytes(raw))
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        reopen(storage, keyring, tenant_b, b)


def test_another_objects_header_on_this_body_is_refused(storage: Storage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    x = vault.store(storage, keyring, tenant, [os.urandom(3 * CHUNK_SIZE)])
    y = vault.store(storage, keyring, tenant, [os.urandom(3 * CHUNK_SIZE)])
    x_raw, y_raw = stored_bytes(storage, x.storage_key), stored_bytes(storage, y.storage_key)
    header_len = len(x_raw) - 3 * (CHUNK_SIZE + 16)
    replace_object(storage, x.storage_key, y_raw[:header_len] + x_raw[header_len:])
    with pytest.raises(IntegrityError, match="the header belongs to another object"):
        reopen(storage, keyring, tenant, x)
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        reopen(storage, keyring, tenant, dataclasses.replace(y, storage_key=x.storage_key))


def test_a_truncated_or_extended_object_is_refused(local: LocalStorage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    stored = vault.store(local, keyring, tenant, [os.urandom(2 * CHUNK_SIZE)])
    raw = stored_bytes(local, stored.storage_key)
    replace_object(local, stored.storage_key, raw[:-(CHUNK_SIZE + 16)])
    with pytest.raises(IntegrityError, match="truncated: its final chunk is missing"):
        list(reopen(local, keyring, tenant, stored))
    replace_object(local, stored.storage_key, raw + b"\0" * 40)
    with pytest.raises(IntegrityError, match="data follows the final chunk"):
        list(reopen(local, keyring, tenant, stored))


def test_a_missing_object_says_so(storage: Storage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    stored = vault.store(storage, keyring, tenant, [b"soon gone"])
    storage.delete(stored.storage_key)
    with pytest.raises(ObjectMissing):
        reopen(storage, keyring, tenant, stored)


# --- keys ----------------------------------------------------------------------------------------------------

def test_the_data_key_comes_from_the_catalogue_so_rotation_needs_no_rewrite(
        local: LocalStorage, keyring: LocalKeyring) -> None:
    tenant, plaintext = uuid4(), os.urandom(CHUNK_SIZE + 5)
    stored = vault.store(local, keyring, tenant, [plaintext])
    before = stored_bytes(local, stored.storage_key)
    keyring.rotate_tenant(tenant)
    key_ref, wrapped = keyring.rewrap(tenant, stored.object_id, stored.key_ref, stored.wrapped_dek)
    keyring.retire(tenant, 1)  # the header's copy of the wrap (version 1) is now useless
    assert key_ref == KeyRef(f"tenant:{tenant}", 2)
    out = vault.open_object(local, keyring, tenant, stored.object_id, stored.storage_key, key_ref, wrapped)
    assert b"".join(out) == plaintext
    assert stored_bytes(local, stored.storage_key) == before  # the object itself was not rewritten
    with pytest.raises(KeyUnavailable, match="retired"):
        reopen(local, keyring, tenant, stored)


def test_after_the_tenant_key_is_destroyed_its_documents_cannot_be_opened(
        storage: Storage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    stored = vault.store(storage, keyring, tenant, [b"to be shredded"])
    keyring.destroy_tenant(tenant)
    with pytest.raises(KeyUnavailable, match="destroyed on"):
        reopen(storage, keyring, tenant, stored)
    with pytest.raises(KeyUnavailable):
        vault.store(storage, keyring, tenant, [b"no new documents either"])


def test_a_catalogue_wrap_of_another_object_does_not_open_this_one(local: LocalStorage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    x = vault.store(local, keyring, tenant, [b"x"])
    y = vault.store(local, keyring, tenant, [b"y"])
    with pytest.raises(IntegrityError, match="does not belong to this object"):
        vault.open_object(local, keyring, tenant, x.object_id, x.storage_key, y.key_ref, y.wrapped_dek)


def test_closing_a_download_early_releases_the_stored_file(local: LocalStorage, keyring: LocalKeyring) -> None:
    tenant = uuid4()
    stored = vault.store(local, keyring, tenant, stream(10 * CHUNK_SIZE))
    before = len(os.listdir("/proc/self/fd"))
    out = reopen(local, keyring, tenant, stored)
    next(out)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    out.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_objects_written_with_the_earlier_64_kib_chunks_still_open(
        local: LocalStorage, keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk size went from 64 KiB to 1 MiB; the header of each object says which it has."""
    import functools

    from tenants import sealed

    old = 64 * 1024
    monkeypatch.setattr(vault, "seal", functools.partial(sealed.seal, chunk_size=old))  # an earlier writer
    monkeypatch.setattr(vault, "CHUNK_SIZE", old)
    tenant, plaintext = uuid4(), os.urandom(3 * old + 7)
    stored = vault.store(local, keyring, tenant, [plaintext])
    monkeypatch.undo()
    raw = stored_bytes(local, stored.storage_key)
    header = read_header(io.BytesIO(raw))
    assert header.chunk_size == old != CHUNK_SIZE
    assert len(raw) == stored.sealed_size == len(header.raw) + len(plaintext) + 4 * 16  # four chunks, four tags
    assert b"".join(reopen(local, keyring, tenant, stored)) == plaintext
