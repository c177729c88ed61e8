"""Object storage: a local folder and S3 (a moto server over HTTP), the same contract for both."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.documents.storage import (
    LocalStorage,
    ObjectMissing,
    S3Storage,
    check_key,
    storage_from_config,
)

PART = S3Storage.MIN_PART  # the smallest part S3 accepts keeps the multipart cases quick
KEY_SHAPE = re.compile(r"\A[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\Z")


def payload(size: int) -> bytes:
    """Incompressible, reproducible bytes (what ciphertext looks like)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def cut(data: bytes, size: int = 1024 * 1024 + 3) -> Iterator[bytes]:
    """Odd-sized chunks, so part boundaries never line up with chunk boundaries."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def read_all(storage, key: str) -> bytes:
    out = bytearray()
    with storage.open(key) as stream:
        while piece := stream.read(65536):
            out += piece
    return bytes(out)


class Boom(Exception):
    pass


def failing(data: bytes, after: int) -> Iterator[bytes]:
    """Yields ``after`` bytes of ``data`` and then fails, like a client that hangs up mid-upload."""
    yield from cut(data[:after])
    raise Boom("the client went away")


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture
def s3(moto) -> S3Storage:
    storage = S3Storage(moto.client("s3"), f"test-{uuid.uuid4().hex[:16]}", part_size=PART)
    storage.ensure_bucket()
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("size", [0, 1, 4096, PART - 1, PART, PART + 1, 3 * PART])
def test_round_trip(storage, size: int) -> None:
    data = payload(size)
    key = storage.new_key()
    assert storage.put(key, cut(data)) == size
    assert storage.exists(key)
    assert read_all(storage, key) == data


def test_round_trip_with_one_huge_chunk(storage) -> None:
    data = payload(2 * PART + 5)
    key = storage.new_key()
    assert storage.put(key, [data]) == len(data)
    assert read_all(storage, key) == data


@pytest.mark.parametrize(("size", "parts"), [(PART - 1, 0), (PART, 0), (PART + 1, 2), (3 * PART, 3)])
def test_s3_uses_one_request_below_a_part_and_multipart_above(s3: S3Storage, size: int, parts: int) -> None:
    key = s3.new_key()
    s3.put(key, cut(payload(size)))
    etag = s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"].strip('"')
    # A multipart object's ETag ends in "-<number of parts>".
    assert (etag.rsplit("-", 1)[1] if "-" in etag else "0") == str(parts)


@pytest.mark.parametrize("after", [0, 100, PART + 10, 2 * PART + 10])
def test_failed_upload_leaves_nothing_locally(local: LocalStorage, after: int) -> None:
    key = local.new_key()
    with pytest.raises(Boom):
        local.put(key, failing(payload(3 * PART), after))
    assert not local.exists(key)
    assert [p for p in local.root.rglob("*") if not p.is_dir()] == []


@pytest.mark.parametrize("after", [0, 100, PART + 10, 2 * PART + 10])
def test_failed_upload_leaves_nothing_in_s3(s3: S3Storage, after: int) -> None:
    key = s3.new_key()
    with pytest.raises(Boom):
        s3.put(key, failing(payload(3 * PART), after))
    assert not s3.exists(key)
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount", 0) == 0
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_keys_are_random_and_reveal_nothing(storage) -> None:
    keys = {storage.new_key() for _ in range(2000)}
    assert len(keys) == 2000
    for key in keys:
        assert KEY_SHAPE.match(key)
        first, second, name = key.split("/")
        assert name.startswith(first + second)
    # Shards spread: 2000 keys land in many first-level folders.
    assert len({key[:2] for key in keys}) > 200


@pytest.mark.parametrize("key", [
    "../../etc/passwd",
    "/etc/passwd",
    "3f/a9/../../../etc/passwd",
    "3f/a9/3fa9" + "0" * 27 + "/",
    "3f/a9/3fa9" + "0" * 27,          # one digit short
    "3f/a9/3fa9" + "0" * 29,          # one digit long
    "3F/A9/3FA9" + "0" * 28,          # upper case is not what new_key makes
    "00/00/3fa9" + "0" * 28,          # shard does not match the name
    "3f/a9/3fa9" + "0" * 27 + "\n",
    "3f\\a9\\3fa9" + "0" * 28,
    "",
])
def test_keys_not_of_our_shape_are_refused(storage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.put(key, [b"x"])
    with pytest.raises(ValueError):
        storage.open(key)
    with pytest.raises(ValueError):
        storage.delete(key)
    with pytest.raises(ValueError):
        storage.exists(key)
    with pytest.raises(ValueError):
        check_key(key)


def test_missing_object(storage) -> None:
    key = storage.new_key()
    assert not storage.exists(key)
    with pytest.raises(ObjectMissing):
        storage.open(key)


def test_delete_is_idempotent(storage) -> None:
    key = storage.new_key()
    storage.put(key, [b"sealed"])
    storage.delete(key)
    storage.delete(key)
    storage.delete(storage.new_key())
    assert not storage.exists(key)
    with pytest.raises(ObjectMissing):
        storage.open(key)


def test_overwrite_replaces_whole_object(storage) -> None:
    key = storage.new_key()
    storage.put(key, [b"first version, longer"])
    storage.put(key, [b"second"])
    assert read_all(storage, key) == b"second"


def test_local_files_and_folders_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        local = LocalStorage(tmp_path / "objects")
        key = local.new_key()
        local.put(key, [b"sealed"])
    finally:
        os.umask(old)
    path = local.root.joinpath(*key.split("/"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(local.root.stat().st_mode) == 0o700


def test_a_local_record_is_written_private_and_never_over_an_earlier_one(local: LocalStorage) -> None:
    """Signed records (audit checkpoints, shredding statements) are evidence: a second write of a name fails."""
    local.put_record("checkpoints", "2026/12/07/first.json", b'{"signed": 1}')
    with pytest.raises(FileExistsError):
        local.put_record("checkpoints", "2026/12/07/first.json", b'{"forged": 1}')
    assert list(local.records("checkpoints")) == [("2026/12/07/first.json", b'{"signed": 1}')]
    folder = local.root / "records" / "checkpoints" / "2026" / "12" / "07"
    assert [p.name for p in folder.iterdir()] == ["first.json"]  # no temporary file left by the refused write
    assert stat.S_IMODE((folder / "first.json").stat().st_mode) == 0o600


def test_local_open_does_not_follow_symlinks(local: LocalStorage, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not ciphertext")
    key = local.new_key()
    path = local.root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    with pytest.raises(OSError):
        local.open(key)


def test_from_config_local_defaults_to_the_instance_folder(tmp_path: Path) -> None:
    storage = storage_from_config({"INSTANCE_PATH": str(tmp_path)})
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "objects"
    explicit = storage_from_config({"STORAGE_BACKEND": "local", "STORAGE_DIR": str(tmp_path / "elsewhere")})
    assert isinstance(explicit, LocalStorage) and explicit.root == tmp_path / "elsewhere"


def test_from_config_s3(moto) -> None:
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    storage = storage_from_config({**moto.env(), "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket})
    assert isinstance(storage, S3Storage)
    storage.ensure_bucket()
    storage.ensure_bucket()  # a second call finds it
    key = storage.new_key()
    storage.put(key, [b"sealed bytes"])
    assert read_all(storage, key) == b"sealed bytes"
    assert moto.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] == 12


def test_from_config_refuses_incomplete_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="S3_BUCKET"):
        storage_from_config({"STORAGE_BACKEND": "s3"})
    with pytest.raises(ValueError, match="STORAGE_BACKEND"):
        storage_from_config({"STORAGE_BACKEND": "ftp", "INSTANCE_PATH": str(tmp_path)})


def test_part_size_below_the_s3_minimum_is_refused(moto) -> None:
    with pytest.raises(ValueError):
        S3Storage(moto.client("s3"), "any", part_size=1024)
