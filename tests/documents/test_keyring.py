"""The keyring: wraps open only where they were made, rotation keeps documents readable,
destruction really destroys, and key files are private. Local and KMS (moto) variants."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from tenants.keyring import KeyUnavailable, KmsKeyring, LocalKeyring, keyring_from_config, new_dek
from tenants.sealed import IntegrityError, KeyRef


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keys")


@pytest.fixture(scope="module")
def kms_key(moto) -> str:  # noqa: ANN001 - the session's MotoServer
    return moto.client("kms").create_key(Description="portal tenant keys (test)")["KeyMetadata"]["KeyId"]


@pytest.fixture(params=["local", "kms"])
def any_keyring(request: pytest.FixtureRequest, tmp_path: Path) -> LocalKeyring | KmsKeyring:
    if request.param == "local":
        return LocalKeyring(tmp_path / "keys")
    moto = request.getfixturevalue("moto")
    return KmsKeyring(tmp_path / "keys", moto.client("kms"), request.getfixturevalue("kms_key"))


def tenant_files(keyring: LocalKeyring | KmsKeyring, tenant: UUID) -> list[str]:
    return sorted(p.name for p in (keyring.key_dir / "tenants" / str(tenant)).glob("v*.key"))


# --- wrapping ----------------------------------------------------------------------------------------------

def test_a_wrapped_data_key_unwraps_for_its_object(any_keyring: LocalKeyring | KmsKeyring) -> None:
    tenant, obj, dek = uuid4(), uuid4(), new_dek()
    ref, wrapped = any_keyring.wrap(tenant, obj, dek)
    assert ref == KeyRef(f"tenant:{tenant}", 1) and any_keyring.key_id(tenant) == ref.key_id
    assert wrapped != dek and dek not in wrapped
    assert any_keyring.unwrap(tenant, obj, ref, wrapped) == dek
    assert len(new_dek()) == 32 and new_dek() != new_dek()


def test_a_wrapped_data_key_moved_to_another_object_does_not_open(any_keyring: LocalKeyring | KmsKeyring) -> None:
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = any_keyring.wrap(tenant, obj, new_dek())
    with pytest.raises(IntegrityError, match="does not belong to this object"):
        any_keyring.unwrap(tenant, uuid4(), ref, wrapped)


def test_a_wrapped_data_key_moved_to_another_tenant_does_not_open(any_keyring: LocalKeyring | KmsKeyring) -> None:
    tenant, other, obj = uuid4(), uuid4(), uuid4()
    ref, wrapped = any_keyring.wrap(tenant, obj, new_dek())
    other_ref = any_keyring.current(other)
    with pytest.raises(IntegrityError, match="another tenant's key"):
        any_keyring.unwrap(other, obj, ref, wrapped)
    with pytest.raises(IntegrityError, match="does not belong to this object and tenant"):
        any_keyring.unwrap(other, obj, other_ref, wrapped)


def test_an_altered_wrap_does_not_open(keyring: LocalKeyring) -> None:
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = keyring.wrap(tenant, obj, new_dek())
    with pytest.raises(IntegrityError):
        keyring.unwrap(tenant, obj, ref, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))


def test_a_key_version_that_never_existed_is_unavailable(keyring: LocalKeyring) -> None:
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = keyring.wrap(tenant, obj, new_dek())
    with pytest.raises(KeyUnavailable, match="key version 7 of this tenant does not exist"):
        keyring.unwrap(tenant, obj, KeyRef(ref.key_id, 7), wrapped)


def test_a_tenant_key_file_copied_into_another_tenant_does_not_open(keyring: LocalKeyring) -> None:
    a, b = uuid4(), uuid4()
    keyring.current(a)
    keyring.current(b)
    a_file = keyring.key_dir / "tenants" / str(a) / "v1.key"
    record = json.loads(a_file.read_text())
    record["tenant_id"] = str(b)  # the attacker edits the visible field; the wrap's binding stays
    (keyring.key_dir / "tenants" / str(b) / "v1.key").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="altered or moved"):
        keyring.wrap(b, uuid4(), new_dek())


# --- rotation ----------------------------------------------------------------------------------------------

def test_rotation_and_rewrap_keep_old_objects_readable_until_the_old_version_is_retired(
        any_keyring: LocalKeyring | KmsKeyring) -> None:
    tenant, obj, dek = uuid4(), uuid4(), new_dek()
    old_ref, old_wrap = any_keyring.wrap(tenant, obj, dek)

    new_ref = any_keyring.rotate_tenant(tenant)
    assert new_ref.version == 2 and any_keyring.current(tenant) == new_ref
    assert any_keyring.unwrap(tenant, obj, old_ref, old_wrap) == dek  # still usable before retirement
    assert any_keyring.wrap(tenant, uuid4(), new_dek())[0] == new_ref

    ref, wrap = any_keyring.rewrap(tenant, obj, old_ref, old_wrap)
    assert ref == new_ref and wrap != old_wrap
    assert [state for _, state in any_keyring.versions(tenant)] == ["active", "current"]

    any_keyring.retire(tenant, 1)
    assert tenant_files(any_keyring, tenant) == ["v2.key"]
    assert any_keyring.unwrap(tenant, obj, ref, wrap) == dek
    with pytest.raises(KeyUnavailable, match="key version 1 was retired on"):
        any_keyring.unwrap(tenant, obj, old_ref, old_wrap)
    assert any_keyring.versions(tenant) == [(old_ref, "retired"), (new_ref, "current")]


def test_the_current_version_cannot_be_retired(keyring: LocalKeyring) -> None:
    tenant = uuid4()
    keyring.current(tenant)
    with pytest.raises(ValueError, match="rotate before retiring"):
        keyring.retire(tenant, 1)


def test_master_rotation_rewraps_every_tenant_key_and_shreds_the_old_master(keyring: LocalKeyring) -> None:
    wraps = []
    for _ in range(3):
        tenant, obj, dek = uuid4(), uuid4(), new_dek()
        wraps.append((tenant, obj, dek, *keyring.wrap(tenant, obj, dek)))
    keyring.rotate_tenant(wraps[0][0])  # a tenant with two versions: both re-wrapped
    before = {p: p.read_bytes() for p in keyring.key_dir.glob("tenants/*/v*.key")}
    assert [p.name for p in keyring.key_dir.glob("master*")] == ["master-v1.key"]

    assert keyring.rotate_master() == 4

    assert [p.name for p in keyring.key_dir.glob("master*")] == ["master-v2.key"]
    assert all(p.read_bytes() != old for p, old in before.items())
    fresh = LocalKeyring(keyring.key_dir)  # nothing cached: everything comes from disk
    for tenant, obj, dek, ref, wrapped in wraps:
        assert fresh.unwrap(tenant, obj, ref, wrapped) == dek
    assert keyring.rotate_master() == 4  # again, from v2 to v3
    assert [p.name for p in keyring.key_dir.glob("master*")] == ["master-v3.key"]


def test_the_master_key_file_is_needed_to_open_tenant_keys(keyring: LocalKeyring) -> None:
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = keyring.wrap(tenant, obj, new_dek())
    (keyring.key_dir / "master-v1.key").unlink()
    with pytest.raises(KeyUnavailable, match="master key version 1 is missing"):
        keyring.unwrap(tenant, obj, ref, wrapped)


# --- destruction -------------------------------------------------------------------------------------------

def test_destroying_a_tenant_shreds_its_keys_and_its_documents_stay_closed(
        any_keyring: LocalKeyring | KmsKeyring) -> None:
    tenant, other, obj = uuid4(), uuid4(), uuid4()
    ref, wrapped = any_keyring.wrap(tenant, obj, new_dek())
    any_keyring.unwrap(tenant, obj, ref, wrapped)  # warms the KMS cache: destruction must beat it
    any_keyring.rotate_tenant(tenant)
    other_ref, other_wrap = any_keyring.wrap(other, obj, dek := new_dek())

    destroyed = any_keyring.destroy_tenant(tenant)

    assert destroyed == [KeyRef(f"tenant:{tenant}", 1), KeyRef(f"tenant:{tenant}", 2)]
    assert tenant_files(any_keyring, tenant) == []
    with pytest.raises(KeyUnavailable, match=r"destroyed on \d{4}-\d\d-\d\d: its documents can no longer"):
        any_keyring.unwrap(tenant, obj, ref, wrapped)
    with pytest.raises(KeyUnavailable, match="destroyed"):
        any_keyring.current(tenant)  # no fresh key can quietly replace the destroyed ones
    with pytest.raises(KeyUnavailable, match="destroyed"):
        any_keyring.rotate_tenant(tenant)
    assert {state for _, state in any_keyring.versions(tenant)} == {"destroyed"}
    assert any_keyring.unwrap(other, obj, other_ref, other_wrap) == dek  # other tenants untouched


def test_destruction_seen_by_another_process_keyring_at_once(keyring: LocalKeyring) -> None:
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = keyring.wrap(tenant, obj, new_dek())
    LocalKeyring(keyring.key_dir).destroy_tenant(tenant)
    with pytest.raises(KeyUnavailable):
        keyring.unwrap(tenant, obj, ref, wrapped)


# --- files on disk -----------------------------------------------------------------------------------------

def test_key_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        keyring = LocalKeyring(tmp_path / "keys")
        tenant = uuid4()
        keyring.wrap(tenant, uuid4(), new_dek())
        keyring.rotate_tenant(tenant)
        keyring.rotate_master()
    finally:
        os.umask(previous)
    everything = [keyring.key_dir, *keyring.key_dir.rglob("*")]
    assert {mode(p) for p in everything if p.is_dir()} == {0o700}
    assert {mode(p) for p in everything if p.is_file()} == {0o600}
    names = {p.name for p in everything}
    assert {"master-v2.key", "meta.json", "v1.key", "v2.key"} <= names
    assert not any(n.startswith(".tmp-") for n in names)


def test_an_existing_key_directory_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir(mode=0o755)
    os.chmod(tmp_path / "keys", 0o755)  # noqa: S103 - the loose mode under test
    LocalKeyring(tmp_path / "keys")
    assert mode(tmp_path / "keys") == 0o700


def test_a_master_key_is_32_random_bytes_made_on_first_use(tmp_path: Path) -> None:
    keyring = LocalKeyring(tmp_path / "keys")
    assert not list(keyring.key_dir.glob("master*"))
    keyring.current(uuid4())
    master = (keyring.key_dir / "master-v1.key").read_bytes()
    assert len(master) == 32
    LocalKeyring(tmp_path / "other").current(uuid4())
    assert (tmp_path / "other" / "master-v1.key").read_bytes() != master


# --- concurrency -------------------------------------------------------------------------------------------

def test_threads_racing_on_a_new_tenant_share_one_version_1(keyring: LocalKeyring) -> None:
    tenant, barrier = uuid4(), threading.Barrier(12)
    results: list[tuple[UUID, KeyRef, bytes, bytes]] = []

    def upload() -> None:
        own = LocalKeyring(keyring.key_dir)  # as separate workers would
        barrier.wait()
        obj, dek = uuid4(), new_dek()
        results.append((obj, *own.wrap(tenant, obj, dek), dek))

    threads = [threading.Thread(target=upload) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {ref for _, ref, _, _ in results} == {KeyRef(f"tenant:{tenant}", 1)}
    assert tenant_files(keyring, tenant) == ["v1.key"]
    for obj, ref, wrapped, dek in results:
        assert keyring.unwrap(tenant, obj, ref, wrapped) == dek


def _race(key_dir: str, tenant: str, barrier: multiprocessing.synchronize.Barrier,
          out: multiprocessing.Queue) -> None:
    keyring = LocalKeyring(Path(key_dir))
    barrier.wait()
    obj, dek = uuid4(), new_dek()
    ref, wrapped = keyring.wrap(UUID(tenant), obj, dek)
    out.put((str(obj), ref.version, wrapped, dek))


def test_processes_racing_on_a_new_tenant_and_master_share_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    tenant, barrier, out = uuid4(), ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "keys"), str(tenant), barrier, out)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    keyring = LocalKeyring(tmp_path / "keys")
    assert {version for _, version, _, _ in results} == {1}
    assert [p.name for p in keyring.key_dir.glob("master*")] == ["master-v1.key"]
    for obj, version, wrapped, dek in results:
        assert keyring.unwrap(tenant, UUID(obj), KeyRef(f"tenant:{tenant}", version), wrapped) == dek


# --- KMS ---------------------------------------------------------------------------------------------------

@pytest.fixture
def kms_keyring(moto, kms_key: str, tmp_path: Path) -> KmsKeyring:  # noqa: ANN001
    return KmsKeyring(tmp_path / "keys", moto.client("kms"), kms_key)


def test_kms_tenant_keys_are_stored_only_as_kms_ciphertext(kms_keyring: KmsKeyring, kms_key: str) -> None:
    tenant = uuid4()
    kms_keyring.current(tenant)
    record = json.loads((kms_keyring.key_dir / "tenants" / str(tenant) / "v1.key").read_text())
    assert record["wrapped_by"] == "kms" and record["kms_key_id"] == kms_key
    assert not list(kms_keyring.key_dir.glob("master*"))  # no local master with KMS


def test_kms_refuses_a_tenant_key_under_another_tenants_encryption_context(moto, kms_keyring: KmsKeyring) -> None:  # noqa: ANN001
    a, b = uuid4(), uuid4()
    kms_keyring.current(a)
    kms_keyring.current(b)
    record = json.loads((kms_keyring.key_dir / "tenants" / str(a) / "v1.key").read_text())
    record["tenant_id"] = str(b)
    (kms_keyring.key_dir / "tenants" / str(b) / "v1.key").write_text(json.dumps(record))
    fresh = KmsKeyring(kms_keyring.key_dir, moto.client("kms"), kms_keyring.kms_key_id)  # empty cache
    with pytest.raises(IntegrityError, match="encryption context"):
        fresh.wrap(b, uuid4(), new_dek())


def test_kms_is_asked_once_per_tenant_key_within_the_cache_period(moto, kms_keyring: KmsKeyring) -> None:  # noqa: ANN001
    calls: list[str] = []
    kms_keyring.kms.meta.events.register("before-call.kms.Decrypt", lambda **_kw: calls.append("decrypt"))
    tenant = uuid4()
    for _ in range(5):
        obj, dek = uuid4(), new_dek()
        ref, wrapped = kms_keyring.wrap(tenant, obj, dek)
        assert kms_keyring.unwrap(tenant, obj, ref, wrapped) == dek
    assert calls == ["decrypt"]


def test_kms_master_rotation_reencrypts_under_the_new_kms_key(moto, kms_keyring: KmsKeyring) -> None:  # noqa: ANN001
    new_key = moto.client("kms").create_key()["KeyMetadata"]["KeyId"]
    items = []
    for _ in range(2):
        tenant, obj, dek = uuid4(), uuid4(), new_dek()
        items.append((tenant, obj, dek, *kms_keyring.wrap(tenant, obj, dek)))
    assert kms_keyring.rotate_master(new_key) == 2
    assert kms_keyring.kms_key_id == new_key
    fresh = KmsKeyring(kms_keyring.key_dir, moto.client("kms"), new_key)
    for tenant, obj, dek, ref, wrapped in items:
        record = json.loads((fresh.key_dir / "tenants" / str(tenant) / "v1.key").read_text())
        assert record["kms_key_id"] == new_key
        assert fresh.unwrap(tenant, obj, ref, wrapped) == dek


def test_a_kms_refusal_makes_the_tenant_key_unavailable(moto, kms_keyring: KmsKeyring) -> None:  # noqa: ANN001
    # moto does not model disabled keys; a key the caller may not use for this blob is refused the same way.
    other = moto.client("kms").create_key()["KeyMetadata"]["KeyId"]
    tenant, obj = uuid4(), uuid4()
    ref, wrapped = kms_keyring.wrap(tenant, obj, new_dek())
    path = kms_keyring.key_dir / "tenants" / str(tenant) / "v1.key"
    path.write_text(json.dumps({**json.loads(path.read_text()), "kms_key_id": other}))
    fresh = KmsKeyring(kms_keyring.key_dir, moto.client("kms"), kms_keyring.kms_key_id)
    with pytest.raises(KeyUnavailable, match="KMS refused decrypt: AccessDenied"):
        fresh.unwrap(tenant, obj, ref, wrapped)


# --- configuration -----------------------------------------------------------------------------------------

def test_configuration_picks_a_local_keyring_in_the_instance_by_default(tmp_path: Path) -> None:
    keyring = keyring_from_config({"INSTANCE_PATH": str(tmp_path)})
    assert isinstance(keyring, LocalKeyring) and keyring.key_dir == tmp_path / "keys"
    assert keyring_from_config({"INSTANCE_PATH": "/nonexistent", "KEY_DIR": str(tmp_path / "k")}).key_dir == (
        tmp_path / "k")


def test_configuration_with_a_kms_key_id_uses_kms(moto, kms_key: str, tmp_path: Path) -> None:  # noqa: ANN001
    keyring = keyring_from_config({"INSTANCE_PATH": str(tmp_path), "KMS_KEY_ID": kms_key, **moto.env()})
    assert isinstance(keyring, KmsKeyring)
    tenant, obj, dek = uuid4(), uuid4(), new_dek()
    assert keyring.unwrap(tenant, obj, *keyring.wrap(tenant, obj, dek)) == dek
