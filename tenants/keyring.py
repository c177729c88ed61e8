"""The keyring: the only code that touches keys.

Envelope encryption, three levels:

* a fresh 32-byte data key (DEK) per stored object, wrapped with AES-256-GCM by
* the tenant's key of its current version, whose material is wrapped by
* the master key: a local file (``LocalKeyring``) or an AWS KMS key (``KmsKeyring``).

Tenant keys live outside the database, in a key directory (default
``<instance>/keys``; directories 0700, files 0600), so database backups never hold
them and shredding a tenant's key files makes its documents unreadable for good::

    <key dir>/master-v<N>.key                  32 random bytes (LocalKeyring only); newest wins
    <key dir>/tenants/<tenant uuid>/meta.json  current version, retired versions, destroyed date
    <key dir>/tenants/<tenant uuid>/v<N>.key   tenant key version N, wrapped (JSON)
    <key dir>/shredded/<tenant uuid>.json      the tenant's key was destroyed: when, which versions

Associated data binds each wrap to its place: a wrapped DEK to (tenant, object, key
version), a tenant key to (tenant, version, master version), or with KMS the
EncryptionContext ``{"portal:tenant", "portal:key-version"}``. A wrap copied elsewhere
does not open. Creation of a version happens under an ``fcntl`` lock on the tenant's
directory and key files are published with ``os.link`` (never overwritten), so
racing processes agree on one version 1.

Shredding overwrites a key file with random bytes, fsyncs it and unlinks it. On
journaling or copy-on-write file systems and SSDs the old blocks may survive; what
actually makes the material unrecoverable is that it is stored only wrapped by the
master key (or KMS), and that the key directory is kept out of data backups, or its
backups expire on a schedule the deletion certificate can state.

A restore must not bring a destroyed key back. ``shredded/`` is the register of destroyed
tenant keys: written before the key files are shredded, never removed, and checked on
every load of a tenant key, so a key whose tenant is listed there is refused even when a
key directory restored from an older backup still holds its files. A backup older than
the destruction lacks the entry too, so the restore procedure (``portal keys
verify-restore``, ``portal.trust.shredding``) puts it back from what is newer than any key
backup: the restored database's offboardings and the signed records in object storage.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenants.sealed import IntegrityError, KeyRef

KEY_ID_PREFIX = "tenant:"
# The provider's signing key (audit checkpoints, deletion certificates) is kept like a tenant key of
# the nil UUID, which no tenant has: each version is 32 random bytes (an Ed25519 seed), wrapped under
# the master key or KMS in the key directory, never in the database; rotate-master re-wraps it with
# the tenant keys. Its versions are never retired: old signatures must stay verifiable.
SIGNING_OWNER = UUID(int=0)
CACHE_SECONDS = 60.0
_NONCE = 12
_U32 = struct.Struct(">I")
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.key$")
_MASTER_FILE = re.compile(r"^master-v([1-9][0-9]*)\.key$")


class KeyUnavailable(Exception):
    """A key cannot be used: destroyed, retired, never created, or its master is out of reach."""


def new_dek() -> bytes:
    """A fresh random 32-byte data key (AES-256); one per stored object, never reused."""
    return AESGCM.generate_key(bit_length=256)


class Keyring(Protocol):
    """What the vault needs from a keyring; ``LocalKeyring`` and ``KmsKeyring`` implement it."""

    def key_id(self, tenant_id: UUID) -> str: ...
    def current(self, tenant_id: UUID) -> KeyRef: ...
    def wrap(self, tenant_id: UUID, object_id: UUID, dek: bytes) -> tuple[KeyRef, bytes]: ...
    def unwrap(self, tenant_id: UUID, object_id: UUID, key_ref: KeyRef, wrapped: bytes) -> bytes: ...
    def rotate_tenant(self, tenant_id: UUID) -> KeyRef: ...
    def rewrap(self, tenant_id: UUID, object_id: UUID, key_ref: KeyRef,
               wrapped: bytes) -> tuple[KeyRef, bytes]: ...
    def retire(self, tenant_id: UUID, version: int) -> None: ...
    def rotate_master(self, new_kms_key_id: str | None = None) -> int: ...
    def destroy_tenant(self, tenant_id: UUID, *, destroyed_at: str | None = None) -> list[KeyRef]: ...
    def shredded(self) -> dict[UUID, str]: ...
    def versions(self, tenant_id: UUID) -> list[tuple[KeyRef, str]]: ...
    def field_key(self, tenant_id: UUID) -> bytes: ...
    def signing_seed(self, version: int | None = None) -> tuple[int, bytes]: ...
    def signing_versions(self) -> list[int]: ...
    def rotate_signing(self) -> int: ...


# --- files ------------------------------------------------------------------------------------------------

def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask, and an existing dir may be looser
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_file(directory: Path, data: bytes) -> Path:
    tmp = directory / f".tmp-{os.urandom(8).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def publish(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) complete or not at all; ``FileExistsError`` if it exists (never overwritten).

    A reader never sees it half-written: it appears by ``os.link`` of a finished temporary file."""
    tmp = _temp_file(path.parent, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def _replace(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically: readers see the old or the new content, never a mix."""
    tmp = _temp_file(path.parent, data)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _shred(path: Path) -> bool:
    """Overwrite with random bytes, fsync, unlink; False if there was nothing to shred."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        os.write(fd, os.urandom(max(os.fstat(fd).st_size, 64)))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``directory/.lock``: across processes and threads (one fd each)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _uuid(value: UUID | str) -> UUID:
    # A UUID's canonical text is the directory name: re-parsing rules out path tricks.
    return value if isinstance(value, UUID) else UUID(str(value))


def _dek_aad(tenant_id: UUID, object_id: UUID, version: int) -> bytes:
    return b"portal-dek:v1|" + tenant_id.bytes + object_id.bytes + _U32.pack(version)


def _field_aad(tenant_id: UUID, version: int) -> bytes:
    return b"portal-field-key:v1|" + tenant_id.bytes + _U32.pack(version)


# --- the keyring --------------------------------------------------------------------------------------------

class _FileKeyring:
    """Layout, metadata, locking and DEK wrapping; subclasses wrap the tenant key material."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = _private_dir(Path(key_dir))
        self._tenants = _private_dir(self.key_dir / "tenants")
        self._shredded = _private_dir(self.key_dir / "shredded")
        # tenant → (the field key file's identity, the unwrapped key): a stat per use tells whether the
        # file changed (rotated) or went (destroyed by any process), so the cache never outlives either.
        self._field_keys: dict[UUID, tuple[tuple[int, int, int], bytes]] = {}

    # What subclasses provide.
    def _wrap_tenant_key(self, tenant_id: UUID, version: int, key: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def _unwrap_tenant_key(self, tenant_id: UUID, version: int, record: Mapping[str, Any]) -> bytes:
        raise NotImplementedError

    def _forget(self, tenant_id: UUID, version: int | None = None) -> None:
        """Drop cached material (KMS cache); nothing to do without a cache."""

    # Paths and metadata.
    def _dir(self, tenant_id: UUID) -> Path:
        return self._tenants / str(_uuid(tenant_id))

    def _meta(self, tenant_id: UUID) -> dict[str, Any] | None:
        return _read_json(self._dir(tenant_id) / "meta.json")

    def _save_meta(self, tenant_id: UUID, meta: Mapping[str, Any]) -> None:
        _replace(self._dir(tenant_id) / "meta.json", _json(meta))

    def _key_files(self, tenant_id: UUID) -> dict[int, Path]:
        directory = self._dir(tenant_id)
        if not directory.is_dir():
            return {}
        found = (_VERSION_FILE.match(p.name) for p in directory.iterdir())
        return {int(m.group(1)): directory / m.group(0) for m in found if m}

    def _create_version(self, tenant_id: UUID, meta: dict[str, Any] | None) -> KeyRef:
        """Add a new current version. Call with the tenant's lock held."""
        meta = meta or {"tenant_id": str(tenant_id), "current": 0, "versions": {}, "destroyed_at": None}
        # Never reuse a number that has a file (a crash may leave one the metadata does not list).
        version = max([int(v) for v in meta["versions"]] + list(self._key_files(tenant_id)) + [0]) + 1
        record = {"format": 1, "tenant_id": str(tenant_id), "version": version,
                  **self._wrap_tenant_key(tenant_id, version, AESGCM.generate_key(bit_length=256))}
        publish(self._dir(tenant_id) / f"v{version}.key", _json(record))
        meta["versions"][str(version)] = {"created_at": _now(), "retired_at": None}
        meta["current"] = version
        self._save_meta(tenant_id, meta)  # the version exists for callers only from here on
        return KeyRef(self.key_id(tenant_id), version)

    def _refuse_destroyed(self, tenant_id: UUID, meta: Mapping[str, Any] | None = None) -> None:
        """``KeyUnavailable`` if the tenant's key was destroyed: its metadata says so, or the register does.

        The register alone is what refuses a key that a restored backup of the key directory
        brought back (its files and metadata are from before the destruction).
        """
        when = (meta or {}).get("destroyed_at") or (self._shred_entry(tenant_id) or {}).get("destroyed_at")
        if when:
            raise KeyUnavailable(f"the key of this tenant was destroyed on {str(when)[:10]}: "
                                 "its documents can no longer be decrypted")

    def _shred_entry(self, tenant_id: UUID) -> dict[str, Any] | None:
        return _read_json(self._shredded / f"{_uuid(tenant_id)}.json")

    def _tenant_key(self, tenant_id: UUID, version: int) -> bytes:
        self._refuse_destroyed(tenant_id)  # the register first: a restored file of a destroyed key stays shut
        path = self._dir(tenant_id) / f"v{version}.key"
        record = _read_json(path)
        if record is None:
            meta = self._meta(tenant_id)
            self._refuse_destroyed(tenant_id, meta)
            entry = (meta or {}).get("versions", {}).get(str(version))
            if entry and entry.get("retired_at"):
                raise KeyUnavailable(f"key version {version} was retired on {entry['retired_at'][:10]}: "
                                     "objects still wrapped under it can no longer be decrypted")
            raise KeyUnavailable(f"key version {version} of this tenant does not exist")
        if record.get("tenant_id") != str(tenant_id) or record.get("version") != version:
            raise IntegrityError(f"the key file {path.name} of this tenant names another tenant or version")
        return self._unwrap_tenant_key(tenant_id, version, record)

    # The public API.
    def key_id(self, tenant_id: UUID) -> str:
        """The key id recorded with every wrap: ``tenant:<uuid>``."""
        return f"{KEY_ID_PREFIX}{_uuid(tenant_id)}"

    def current(self, tenant_id: UUID) -> KeyRef:
        """The tenant's current key version; creates version 1 on first use (race-safe)."""
        tenant_id = _uuid(tenant_id)
        meta = self._meta(tenant_id)
        self._refuse_destroyed(tenant_id, meta)
        if meta and meta.get("current"):
            return KeyRef(self.key_id(tenant_id), meta["current"])
        with _locked(_private_dir(self._dir(tenant_id))):
            meta = self._meta(tenant_id)  # another process may have won the race
            self._refuse_destroyed(tenant_id, meta)
            if meta and meta.get("current"):
                return KeyRef(self.key_id(tenant_id), meta["current"])
            return self._create_version(tenant_id, meta)

    def wrap(self, tenant_id: UUID, object_id: UUID, dek: bytes) -> tuple[KeyRef, bytes]:
        """Wrap ``dek`` under the tenant's current key, bound to (tenant, object, version)."""
        tenant_id, object_id = _uuid(tenant_id), _uuid(object_id)
        ref = self.current(tenant_id)
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._tenant_key(tenant_id, ref.version)).encrypt(
            nonce, dek, _dek_aad(tenant_id, object_id, ref.version))
        return ref, nonce + sealed

    def unwrap(self, tenant_id: UUID, object_id: UUID, key_ref: KeyRef, wrapped: bytes) -> bytes:
        """The DEK of ``object_id``; ``IntegrityError`` if the wrap belongs elsewhere or was altered."""
        tenant_id, object_id = _uuid(tenant_id), _uuid(object_id)
        if key_ref.key_id != self.key_id(tenant_id):
            raise IntegrityError("the key reference names another tenant's key")
        key = self._tenant_key(tenant_id, key_ref.version)
        try:
            return AESGCM(key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                       _dek_aad(tenant_id, object_id, key_ref.version))
        except InvalidTag:
            raise IntegrityError("the wrapped data key does not belong to this object and tenant, "
                                 "or was altered") from None

    def rotate_tenant(self, tenant_id: UUID) -> KeyRef:
        """A new current version; older versions keep opening their wraps until retired.

        The tenant's field key is re-wrapped under the new version at once (sealed fields
        themselves are never rewritten)."""
        tenant_id = _uuid(tenant_id)
        with _locked(_private_dir(self._dir(tenant_id))):
            meta = self._meta(tenant_id)
            self._refuse_destroyed(tenant_id, meta)
            ref = self._create_version(tenant_id, meta)
            self._rewrap_field_key(tenant_id, ref.version)
            return ref

    # The tenant's field key: small text columns of its rows (task titles, comments, audit details)
    # are sealed with it (``tenants.fields``). One random key per tenant, kept in the key directory
    # wrapped under the tenant key's current version: rotation re-wraps it, so sealed fields are never
    # rewritten, and destroying the tenant shreds it with the key versions.
    def _field_path(self, tenant_id: UUID) -> Path:
        return self._dir(tenant_id) / "fields.key"

    def _wrap_field_key(self, tenant_id: UUID, key: bytes, version: int) -> bytes:
        nonce = os.urandom(_NONCE)
        blob = nonce + AESGCM(self._tenant_key(tenant_id, version)).encrypt(nonce, key,
                                                                              _field_aad(tenant_id, version))
        return _json({"format": 1, "tenant_id": str(tenant_id), "version": version,
                      "blob": base64.b64encode(blob).decode()})

    def _unwrap_field_key(self, tenant_id: UUID, record: Mapping[str, Any]) -> bytes:
        version = int(record["version"])
        if record.get("tenant_id") != str(tenant_id):
            raise IntegrityError("the field key file of this tenant names another tenant")
        blob = base64.b64decode(record["blob"])
        try:
            return AESGCM(self._tenant_key(tenant_id, version)).decrypt(blob[:_NONCE], blob[_NONCE:],
                                                                        _field_aad(tenant_id, version))
        except InvalidTag:
            raise IntegrityError("the field key file of this tenant was altered or moved") from None

    def _rewrap_field_key(self, tenant_id: UUID, version: int) -> None:
        """Put the field key under ``version`` (call with the tenant's lock held)."""
        record = _read_json(self._field_path(tenant_id))
        if record is not None and int(record["version"]) != version:
            key = self._unwrap_field_key(tenant_id, record)
            _replace(self._field_path(tenant_id), self._wrap_field_key(tenant_id, key, version))

    def field_key(self, tenant_id: UUID) -> bytes:
        """The tenant's 32-byte field key, created on first use; ``KeyUnavailable`` once destroyed."""
        tenant_id = _uuid(tenant_id)
        path = self._field_path(tenant_id)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            identity = (st.st_ino, st.st_mtime_ns, st.st_size)
            hit = self._field_keys.get(tenant_id)
            if hit is not None and hit[0] == identity:
                return hit[1]
            record = _read_json(path)
            if record is not None:
                key = self._unwrap_field_key(tenant_id, record)
                self._field_keys[tenant_id] = (identity, key)
                return key
        self._field_keys.pop(tenant_id, None)
        ref = self.current(tenant_id)  # before the lock: it may take the same lock to create version 1
        with _locked(_private_dir(self._dir(tenant_id))):
            self._refuse_destroyed(tenant_id, self._meta(tenant_id))
            if _read_json(path) is None:
                with contextlib.suppress(FileExistsError):  # a racing process created it first
                    publish(path, self._wrap_field_key(tenant_id, AESGCM.generate_key(bit_length=256),
                                                       ref.version))
        return self.field_key(tenant_id)

    def rewrap(self, tenant_id: UUID, object_id: UUID, key_ref: KeyRef,
               wrapped: bytes) -> tuple[KeyRef, bytes]:
        """Unwrap under ``key_ref`` and wrap again under the current version (the object is untouched)."""
        return self.wrap(tenant_id, object_id, self.unwrap(tenant_id, object_id, key_ref, wrapped))

    def retire(self, tenant_id: UUID, version: int) -> None:
        """Shred one non-current version; wraps still under it stop opening. Rewrap them first."""
        tenant_id = _uuid(tenant_id)
        if tenant_id == SIGNING_OWNER:
            raise ValueError("signing key versions are never retired: what they signed must stay verifiable")
        with _locked(_private_dir(self._dir(tenant_id))):
            meta = self._meta(tenant_id)
            self._refuse_destroyed(tenant_id, meta)
            if not meta or str(version) not in meta["versions"]:
                raise KeyUnavailable(f"key version {version} of this tenant does not exist")
            if version == meta["current"]:
                raise ValueError(f"key version {version} is the current one: rotate before retiring it")
            self._rewrap_field_key(tenant_id, meta["current"])  # never leave it under a retired version
            _shred(self._dir(tenant_id) / f"v{version}.key")
            entry = meta["versions"][str(version)]
            entry["retired_at"] = entry.get("retired_at") or _now()
            self._save_meta(tenant_id, meta)
        self._forget(tenant_id, version)

    def destroy_tenant(self, tenant_id: UUID, *, destroyed_at: str | None = None) -> list[KeyRef]:
        """Shred every version of the tenant's key: its documents become undecryptable for good.

        Returns the versions whose material was destroyed now (none when it had been before).
        The register entry is written first, so from then on no version loads, even if shredding
        stops part-way or a restored backup puts the files back; no new version can be created
        for the tenant (``current`` raises ``KeyUnavailable``). ``destroyed_at`` (ISO 8601):
        when it was first destroyed, if that was earlier (a restore destroying it again).
        """
        tenant_id = _uuid(tenant_id)
        if tenant_id == SIGNING_OWNER:
            raise ValueError("the provider's signing key is not a tenant's key")
        destroyed: list[KeyRef] = []
        with _locked(_private_dir(self._dir(tenant_id))):
            meta = self._meta(tenant_id) or {"tenant_id": str(tenant_id), "current": 0, "versions": {}}
            when = ((self._shred_entry(tenant_id) or {}).get("destroyed_at") or meta.get("destroyed_at")
                    or destroyed_at or _now())
            numbers = sorted({int(v) for v in meta["versions"]} | set(self._key_files(tenant_id)))
            with contextlib.suppress(FileExistsError):  # never rewritten: the first entry stands
                publish(self._shredded / f"{tenant_id}.json", _json({
                    "format": 1, "tenant_id": str(tenant_id), "key_id": self.key_id(tenant_id),
                    "versions": numbers, "destroyed_at": when}))
            for version, path in sorted(self._key_files(tenant_id).items()):
                if _shred(path):
                    destroyed.append(KeyRef(self.key_id(tenant_id), version))
            _shred(self._field_path(tenant_id))
            self._field_keys.pop(tenant_id, None)
            meta["destroyed_at"] = meta.get("destroyed_at") or when
            self._save_meta(tenant_id, meta)
        self._forget(tenant_id)
        return destroyed

    def shredded(self) -> dict[UUID, str]:
        """The register: every tenant whose key was destroyed, with when (ISO 8601)."""
        out = {}
        for path in self._shredded.glob("*.json"):
            entry = _read_json(path) or {}
            with contextlib.suppress(ValueError):
                out[UUID(path.stem)] = str(entry.get("destroyed_at") or "")
        return out

    def versions(self, tenant_id: UUID) -> list[tuple[KeyRef, str]]:
        """Every version with its state: current, active, retired or destroyed."""
        tenant_id = _uuid(tenant_id)
        meta = self._meta(tenant_id)
        if not meta:
            return []
        out = []
        for number in sorted(int(v) for v in meta["versions"]):
            entry = meta["versions"][str(number)]
            if meta.get("destroyed_at"):
                state = "destroyed"
            elif entry.get("retired_at"):
                state = "retired"
            else:
                state = "current" if number == meta["current"] else "active"
            out.append((KeyRef(self.key_id(tenant_id), number), state))
        return out

    def signing_seed(self, version: int | None = None) -> tuple[int, bytes]:
        """The provider's signing key: (version, 32-byte Ed25519 seed); the current one unless ``version``."""
        number = version if version is not None else self.current(SIGNING_OWNER).version
        return number, self._tenant_key(SIGNING_OWNER, number)

    def signing_versions(self) -> list[int]:
        """Every version of the signing key (all stay usable for verifying what they signed)."""
        self.current(SIGNING_OWNER)  # the first use creates version 1
        return [ref.version for ref, _state in self.versions(SIGNING_OWNER)]

    def rotate_signing(self) -> int:
        """A new signing key version for what is signed from now on; returns its number."""
        return self.rotate_tenant(SIGNING_OWNER).version

    def _each_key_file(self) -> Iterator[tuple[UUID, int, Path]]:
        """Every tenant key file, each yielded with its tenant's lock held."""
        for directory in sorted(self._tenants.iterdir()):
            try:
                tenant_id = UUID(directory.name)
            except ValueError:
                continue
            with _locked(directory):
                for version, path in sorted(self._key_files(tenant_id).items()):
                    yield tenant_id, version, path


class LocalKeyring(_FileKeyring):
    """Tenant keys wrapped by a local master key file (``master-v<N>.key``, newest wins)."""

    def _master_versions(self) -> list[int]:
        found = (_MASTER_FILE.match(p.name) for p in self.key_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _master(self, version: int | None = None) -> tuple[int, bytes]:
        if version is None:
            versions = self._master_versions()
            if not versions:
                with contextlib.suppress(FileExistsError):  # a racing process created it first
                    publish(self.key_dir / "master-v1.key", AESGCM.generate_key(bit_length=256))
                versions = self._master_versions()
            version = versions[-1]
        try:
            key = (self.key_dir / f"master-v{version}.key").read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable(f"master key version {version} is missing from the key directory") from None
        if len(key) != 32:
            raise KeyUnavailable(f"master key version {version} is damaged")
        return version, key

    @staticmethod
    def _aad(tenant_id: UUID, version: int, master_version: int) -> bytes:
        return b"portal-tenant-key:v1|" + tenant_id.bytes + _U32.pack(version) + _U32.pack(master_version)

    def _wrap_tenant_key(self, tenant_id: UUID, version: int, key: bytes) -> dict[str, Any]:
        master_version, master = self._master()
        nonce = os.urandom(_NONCE)
        blob = nonce + AESGCM(master).encrypt(nonce, key, self._aad(tenant_id, version, master_version))
        return {"wrapped_by": "master", "master_version": master_version, "blob": base64.b64encode(blob).decode()}

    def _unwrap_tenant_key(self, tenant_id: UUID, version: int, record: Mapping[str, Any]) -> bytes:
        blob = base64.b64decode(record["blob"])
        master_version = int(record["master_version"])
        try:
            _, master = self._master(master_version)
        except KeyUnavailable:
            # rotate_master may have re-wrapped this file and shredded the old master meanwhile.
            fresh = _read_json(self._dir(tenant_id) / f"v{version}.key") or {}
            if fresh.get("master_version") in (None, master_version):
                raise
            return self._unwrap_tenant_key(tenant_id, version, fresh)
        try:
            return AESGCM(master).decrypt(blob[:_NONCE], blob[_NONCE:],
                                          self._aad(tenant_id, version, master_version))
        except InvalidTag:
            raise IntegrityError(f"the key file v{version}.key of this tenant was altered or moved") from None

    def rotate_master(self, new_kms_key_id: str | None = None) -> int:
        """Create a new master key, re-wrap every tenant key under it, shred the old masters."""
        if new_kms_key_id is not None:
            raise ValueError("a local keyring has no KMS key: configure KMS_KEY_ID to use KMS")
        count = 0
        with _locked(self.key_dir):
            old = self._master_versions()
            new_version = (old[-1] if old else 0) + 1
            publish(self.key_dir / f"master-v{new_version}.key", AESGCM.generate_key(bit_length=256))
            for tenant_id, version, path in self._each_key_file():
                record = _read_json(path)
                if record is None:
                    continue
                key = self._unwrap_tenant_key(tenant_id, version, record)
                record.update(self._wrap_tenant_key(tenant_id, version, key))
                _replace(path, _json(record))
                count += 1
            for version in old:  # only once nothing refers to them any more
                _shred(self.key_dir / f"master-v{version}.key")
        return count


class KmsKeyring(_FileKeyring):
    """Tenant keys wrapped by AWS KMS, bound to tenant and version by the EncryptionContext.

    Unwrapped tenant keys are cached in process memory for at most ``CACHE_SECONDS``:
    a KMS round trip per object would make every upload and download wait on KMS
    (and pay for it). The key file is still read on every use, so a tenant destroyed
    or a version retired by any process stops working here at once.
    """

    def __init__(self, key_dir: Path, kms_client: Any, kms_key_id: str) -> None:
        super().__init__(key_dir)
        self.kms = kms_client
        self.kms_key_id = kms_key_id
        self._cache: dict[tuple[UUID, int], tuple[float, bytes]] = {}
        self._cache_lock = threading.Lock()

    @staticmethod
    def _context(tenant_id: UUID, version: int) -> dict[str, str]:
        return {"portal:tenant": str(tenant_id), "portal:key-version": str(version)}

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.kms, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidCiphertextException":
                raise IntegrityError("KMS refused the tenant key: it was altered, or its encryption context "
                                     "(tenant, version) does not match") from None
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (500, 502, 503, 504) \
                    or code in ("ThrottlingException", "KMSInternalException", "DependencyTimeoutException"):
                # KMS is busy or failing, not refusing this key: an outage (503, tenants.outages), never
                # "the key was destroyed".
                raise
            raise KeyUnavailable(f"KMS refused {operation}: {code or exc}") from None

    def _wrap_tenant_key(self, tenant_id: UUID, version: int, key: bytes) -> dict[str, Any]:
        out = self._call("encrypt", KeyId=self.kms_key_id, Plaintext=key,
                         EncryptionContext=self._context(tenant_id, version))
        return {"wrapped_by": "kms", "kms_key_id": self.kms_key_id,
                "blob": base64.b64encode(out["CiphertextBlob"]).decode()}

    def _unwrap_tenant_key(self, tenant_id: UUID, version: int, record: Mapping[str, Any]) -> bytes:
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get((tenant_id, version))
        if hit and hit[0] > now:
            return hit[1]
        out = self._call("decrypt", CiphertextBlob=base64.b64decode(record["blob"]), KeyId=record["kms_key_id"],
                         EncryptionContext=self._context(tenant_id, version))
        key = out["Plaintext"]
        with self._cache_lock:
            self._cache[(tenant_id, version)] = (now + CACHE_SECONDS, key)
        return key

    def _forget(self, tenant_id: UUID, version: int | None = None) -> None:
        with self._cache_lock:
            for cached in [k for k in self._cache if k[0] == tenant_id and version in (None, k[1])]:
                del self._cache[cached]

    def rotate_master(self, new_kms_key_id: str | None = None) -> int:
        """Re-encrypt every tenant key under ``new_kms_key_id`` (default: the same KMS key) with KMS ReEncrypt."""
        target = new_kms_key_id or self.kms_key_id
        count = 0
        with _locked(self.key_dir):
            for tenant_id, version, path in self._each_key_file():
                record = _read_json(path)
                if record is None:
                    continue
                context = self._context(tenant_id, version)
                out = self._call("re_encrypt", CiphertextBlob=base64.b64decode(record["blob"]),
                                 SourceKeyId=record["kms_key_id"], SourceEncryptionContext=context,
                                 DestinationKeyId=target, DestinationEncryptionContext=context)
                record.update(kms_key_id=target, blob=base64.b64encode(out["CiphertextBlob"]).decode())
                _replace(path, _json(record))
                count += 1
            self.kms_key_id = target
        return count


def aws_client_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """boto3 client arguments from the settings (region, credentials); unset ones come from boto3's chain."""
    return {argument: config[setting] for setting, argument in (
        ("AWS_REGION", "region_name"), ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"), ("AWS_SESSION_TOKEN", "aws_session_token"))
        if config.get(setting)}


def app_keyring() -> Keyring:
    """The keyring configured for the current app, built once per process (the KMS cache lives in it)."""
    from flask import current_app

    ext = current_app.extensions.setdefault("vault", {})
    if "keyring" not in ext:
        ext["keyring"] = keyring_from_config(current_app.config)
    return ext["keyring"]


def keyring_from_config(config: Mapping[str, Any]) -> Keyring:
    """``KmsKeyring`` when ``KMS_KEY_ID`` is set, else ``LocalKeyring``; keys in ``KEY_DIR``.

    KMS endpoint: ``KMS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``; ``AWS_REGION`` and the
    ``AWS_*`` credentials when set, else boto3's default chain.

    ``KEY_DIR`` defaults to ``INSTANCE_PATH/keys``. Create one keyring per process and
    keep it: the KMS cache lives in the instance.
    """
    key_dir = Path(config.get("KEY_DIR") or Path(config["INSTANCE_PATH"]) / "keys")
    kms_key_id = config.get("KMS_KEY_ID")
    if not kms_key_id:
        return LocalKeyring(key_dir)
    import boto3

    # KMS_ENDPOINT_URL first: an S3-compatible store (MinIO) may own AWS_ENDPOINT_URL and has no KMS.
    endpoint = config.get("KMS_ENDPOINT_URL") or config.get("AWS_ENDPOINT_URL")
    client = boto3.client("kms", endpoint_url=endpoint, **aws_client_options(config))
    return KmsKeyring(key_dir, client, kms_key_id)
