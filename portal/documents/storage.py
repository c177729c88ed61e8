"""Object storage for sealed documents: a local folder or an S3 bucket.

Only ciphertext is ever handed to this module, so it needs no access control of
its own; what it must guarantee is that keys reveal nothing (random, sharded),
that a key can never escape the store (no path traversal), that writes are
streamed (never a whole object in memory) and atomic (a failed upload leaves no
object, no temporary file and no open multipart upload behind).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

from tenants.keyring import aws_client_options, publish
from tenants.sealed import SupportsRead

# "3f/a9/3fa9…" : 128 random bits in hex, sharded by the first two bytes so no folder gets huge.
_KEY = re.compile(r"\A([0-9a-f]{2})/([0-9a-f]{2})/(\1\2[0-9a-f]{28})\Z")
_COPY_CHUNK = 1024 * 1024


class ObjectMissing(Exception):
    """No object is stored under the key."""


@dataclass(frozen=True)
class Listed:
    """An object as the store lists it: its key, when it was last written, its size; ``temporary``: a write's
    temporary file a crash left behind (its key is then its path under the store)."""

    key: str
    modified: datetime
    size: int
    temporary: bool = False


class Storage(Protocol):
    """What the vault needs from an object store."""

    def new_key(self) -> str:
        """A fresh random key; it says nothing about the tenant, the document or its name."""
        ...

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` under ``key`` atomically and return the number of bytes written."""
        ...

    def open(self, key: str) -> ContextManager[SupportsRead]:
        """A stream of the object; raises ``ObjectMissing``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def put_record(self, prefix: str, name: str, data: bytes) -> None:
        """Store a small named record (not a sealed object) once; an existing name is never overwritten."""
        ...

    def records(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Every record under ``prefix``, as (name, bytes), in name order."""
        ...

    def listing(self) -> Iterator[Listed]:
        """Every sealed object in the store (records are not listed), and the temporary files of writes."""
        ...

    def remove(self, item: Listed) -> None:
        """Remove what ``listing`` listed."""
        ...


def new_key() -> str:
    """A random 128-bit key in hex, sharded like ``3f/a9/3fa9…``."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


def check_key(key: str) -> str:
    """Return ``key`` if it has the shape ``new_key()`` produces, else raise ``ValueError``."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError("not a storage key")
    return key


# Records (signed audit checkpoints) are named by the portal, not random: "<prefix>/<name>", each part
# plain characters and no "..", so a name can never leave its folder.
_PART = r"[0-9A-Za-z][0-9A-Za-z._-]{0,99}"
_RECORD = re.compile(rf"\A[a-z0-9][a-z0-9-]{{0,39}}/{_PART}(?:/{_PART}){{0,4}}\Z")
RECORDS_ROOT = "records"


def check_record(prefix: str, name: str) -> str:
    """``prefix/name`` if it is a well-formed record name, else ``ValueError``."""
    path = f"{prefix}/{name}"
    if not _RECORD.match(path) or ".." in path:
        raise ValueError("not a record name")
    return path


def _pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut ``chunks`` into pieces of at most ``size`` bytes (a caller may hand over one huge chunk)."""
    for chunk in chunks:
        if len(chunk) <= size:
            if chunk:
                yield bytes(chunk)
            continue
        view = memoryview(chunk)
        for start in range(0, len(view), size):
            yield bytes(view[start:start + size])


class LocalStorage:
    """Objects as files under ``root``: files 0600, folders 0700, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    new_key = staticmethod(new_key)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write to a temporary file beside the target, fsync, then rename over it."""
        path = self._path(key)
        folder = path.parent
        # One level at a time: mkdir(parents=True) would create the upper level with the default mode.
        folder.parent.mkdir(mode=0o700, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")  # mkstemp creates it 0600
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # The rename itself must survive a crash, not only the file's bytes.
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return written

    def open(self, key: str) -> ContextManager[SupportsRead]:
        """The file opened for reading; raises ``ObjectMissing``."""
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectMissing(key) from None
        return os.fdopen(fd, "rb")

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        """Whether the file is there."""
        return self._path(key).is_file()

    def ready(self) -> bool:
        """Whether the folder is there and writable (readiness: /readyz)."""
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

    def put_record(self, prefix: str, name: str, data: bytes) -> None:
        """Write ``records/<prefix>/<name>`` (0600), complete or not at all, never over an existing one."""
        path = self.root.joinpath(RECORDS_ROOT, *check_record(prefix, name).split("/"))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        publish(path, data)  # FileExistsError rather than a silent overwrite

    def records(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Every record under ``records/<prefix>``, in name order."""
        check_record(prefix, "x")
        folder = self.root / RECORDS_ROOT / prefix
        if not folder.is_dir():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")):
            yield path.relative_to(folder).as_posix(), path.read_bytes()

    def listing(self) -> Iterator[Listed]:
        """Every object file under the two levels of shards, and the temporary files writes left there."""
        for first in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for folder in sorted(first.glob("[0-9a-f][0-9a-f]")):
                for path in sorted(folder.iterdir()):
                    key = path.relative_to(self.root).as_posix()
                    temporary = path.name.startswith(".tmp-")
                    if not (temporary or _KEY.match(key)):
                        continue
                    try:
                        stat = path.stat()
                    except FileNotFoundError:  # deleted since the folder was read
                        continue
                    if not S_ISREG(stat.st_mode):
                        continue
                    yield Listed(key, datetime.fromtimestamp(stat.st_mtime, UTC), stat.st_size, temporary)

    def remove(self, item: Listed) -> None:
        """Delete a listed object, or a listed temporary file (only one of ours, under a shard)."""
        if not item.temporary:
            self.delete(item.key)
            return
        first, second, name = item.key.split("/")
        if not (re.fullmatch(r"[0-9a-f]{2}", first) and re.fullmatch(r"[0-9a-f]{2}", second)
                and re.fullmatch(r"\.tmp-[A-Za-z0-9_]+", name)):
            raise ValueError("not a temporary file of this store")
        self.root.joinpath(first, second, name).unlink(missing_ok=True)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Storage:
    """Objects in an S3 bucket; large objects go up as a multipart upload, one part in memory at a time.

    Server-side encryption is not relied on: everything stored here is already sealed.
    """

    MIN_PART = 5 * 1024 * 1024  # S3 refuses smaller parts, except the last one

    def __init__(self, client: Any, bucket: str, part_size: int = 8 * 1024 * 1024) -> None:
        if part_size < self.MIN_PART:
            raise ValueError(f"part_size must be at least {self.MIN_PART} bytes (an S3 limit)")
        self.client, self.bucket, self.part_size = client, bucket, part_size

    new_key = staticmethod(new_key)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (development and tests; production buckets are provisioned)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        region = self.client.meta.region_name
        options: dict[str, Any] = {}
        if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            options["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.client.create_bucket(Bucket=self.bucket, **options)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """One put_object below one part, else a multipart upload that is aborted on any failure."""
        check_key(key)
        buffer = bytearray()
        pieces = _pieces(chunks, self.part_size)
        for piece in pieces:
            buffer += piece
            if len(buffer) > self.part_size:
                break
        else:  # the whole object fits in one part
            self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
            return len(buffer)

        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts: list[dict[str, Any]] = []
        written = 0
        try:
            def send(body: bytes) -> None:
                nonlocal written
                number = len(parts) + 1
                answer = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                 PartNumber=number, Body=body)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                written += len(body)

            while True:
                while len(buffer) >= self.part_size:
                    send(bytes(buffer[:self.part_size]))
                    del buffer[:self.part_size]
                piece = next(pieces, None)
                if piece is None:
                    break
                buffer += piece
            if buffer or not parts:
                send(bytes(buffer))
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            # Parts of an unfinished upload are kept (and billed) until aborted.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return written

    def open(self, key: str) -> ContextManager[SupportsRead]:
        """The object's body as a stream; raises ``ObjectMissing``."""
        from botocore.exceptions import ClientError

        check_key(key)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise ObjectMissing(key) from None
            raise
        return contextlib.closing(answer["Body"])

    def delete(self, key: str) -> None:
        """Remove the object (S3 answers the same whether or not it existed)."""
        check_key(key)
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        """Whether the object is there."""
        from botocore.exceptions import ClientError

        check_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def ready(self) -> bool:
        """Whether the bucket answers a HEAD with these credentials (readiness: /readyz); raises when it does not."""
        self.client.head_bucket(Bucket=self.bucket)
        return True

    def put_record(self, prefix: str, name: str, data: bytes) -> None:
        """Put ``records/<prefix>/<name>``; names carry a random part, so none is written twice.

        In production the bucket's Object Lock (compliance mode) on ``records/`` keeps them from
        being deleted or overwritten even by whoever holds the portal's credentials.
        """
        key = f"{RECORDS_ROOT}/{check_record(prefix, name)}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def records(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Every record under ``records/<prefix>/``, in name order (S3 lists keys in that order)."""
        check_record(prefix, "x")
        start = f"{RECORDS_ROOT}/{prefix}/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                with contextlib.closing(body):
                    yield item["Key"][len(start):], body.read()


    def listing(self) -> Iterator[Listed]:
        """Every object of the bucket whose key has the shape of ours (records and anything else are skipped).

        An unfinished multipart upload is no object: the bucket's lifecycle rule aborts those (infra/README.md).
        """
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if _KEY.match(item["Key"]):
                    yield Listed(item["Key"], item["LastModified"], int(item["Size"]))

    def remove(self, item: Listed) -> None:
        """Delete a listed object."""
        self.delete(item.key)

def storage_from_config(config: Mapping[str, Any], *, probe: bool = False) -> Storage:
    """The store the settings name: ``STORAGE_BACKEND`` "local" (default) or "s3".

    local: ``STORAGE_DIR`` (default ``<INSTANCE_PATH>/objects``).
    s3: ``S3_BUCKET`` (required), ``S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``); whatever is unset comes from
    boto3's default chain.

    ``probe``: for a health check, a client that gives up within seconds (one attempt, short timeouts)
    instead of retrying as the vault's does.
    """
    backend = str(config.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend == "local":
        folder = config.get("STORAGE_DIR")
        if not folder:
            instance = config.get("INSTANCE_PATH")
            if not instance:
                raise ValueError("STORAGE_DIR or INSTANCE_PATH must be set for STORAGE_BACKEND=local")
            folder = Path(instance) / "objects"
        return LocalStorage(Path(folder))
    if backend != "s3":
        raise ValueError(f"STORAGE_BACKEND must be 'local' or 's3', not {backend!r}")
    bucket = config.get("S3_BUCKET")
    if not bucket:
        raise ValueError("S3_BUCKET must be set when STORAGE_BACKEND=s3")

    import boto3
    from botocore.config import Config

    endpoint = config.get("S3_ENDPOINT_URL") or config.get("AWS_ENDPOINT_URL") or None
    # S3-compatible endpoints (MinIO, moto, on-premises) rarely resolve bucket sub-domains.
    s3_options = {"addressing_style": "path"} if endpoint else {}
    # An endpoint that hangs must fail within a request's time (gunicorn's timeout is 60 s), so the user gets
    # a 503 to retry rather than no answer: 2 attempts of at most 5 s to connect and 20 s per read.
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 2}, "connect_timeout": 5,
                               "read_timeout": 20}
    if probe:
        options = {"retries": {"mode": "standard", "max_attempts": 1}, "connect_timeout": 1, "read_timeout": 2}
    # A session of its own: creating a client from boto3's default session is not thread-safe.
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=Config(s3=s3_options, **options),
                                            **aws_client_options(config))
    return S3Storage(client, str(bucket))
