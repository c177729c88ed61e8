"""The backup and restore drill: dump the database, restore it into a fresh one, start a portal on it.

Two tenants upload documents through the vault; the key directory is copied (a key backup
taken before what follows); tenant B is offboarded, which destroys its keys. Then the
database is dumped with ``pg_dump -Fc`` and restored with ``pg_restore`` into a new database,
and a second portal runs on it with the *older* key backup, the worst case: it still holds
B's key. ``portal keys verify-restore`` must destroy that key again before anything reads it,
every audit chain must verify row by row and against the signed checkpoints, and A's
documents must decrypt to the SHA-256 of what was uploaded. A second restore, of a dump taken
before the offboarding (a point-in-time recovery to before it), shows the record in object
storage alone keeps B's documents shut, though its rows, its objects and its key are all back.

docs/operations.md ("Backup and restore") gives the same steps for a production restore.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from portal.documents import services as documents
from portal.documents.models import StoredObject
from portal.documents.services import read_object
from portal.extensions import db
from portal.offboarding import procedure
from portal.trust import anchors
from tenants import audit
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.keyring import KeyUnavailable, LocalKeyring, app_keyring, new_dek
from tenants.models import Tenant, User
from tenants.policy import Role
from tenants.sealed import KeyRef
from tests.documents import samples
from tests.factories import TenantRef, make_person, make_tenant, unique
from tests.services import embedded_pg_bin, postgres_superuser_url

# --- the keyring's register, on its own -----------------------------------------------------------


def test_a_key_directory_restored_from_before_a_destruction_keeps_the_key_shut(tmp_path: Path) -> None:
    live = LocalKeyring(tmp_path / "keys")
    tenant, other, obj, dek = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), new_dek()
    ref, wrapped = live.wrap(tenant, obj, dek)
    other_ref, other_wrap = live.wrap(other, obj, other_dek := new_dek())
    backup = tmp_path / "backup"
    shutil.copytree(live.key_dir, backup)  # last night's copy of the key directory

    live.destroy_tenant(tenant)
    register = live.key_dir / "shredded" / f"{tenant}.json"
    assert register.is_file() and f"tenant:{tenant}" in register.read_text()
    first = live.shredded()[tenant]

    # The hazard the register is for: the backup alone still opens the destroyed key.
    assert LocalKeyring(backup).unwrap(tenant, obj, ref, wrapped) == dek

    # With the register's entry (newer than the backup) the key stays shut, though its files are back.
    shutil.copy(register, backup / "shredded" / register.name)
    restored = LocalKeyring(backup)
    assert (backup / "tenants" / str(tenant) / "v1.key").is_file()
    with pytest.raises(KeyUnavailable, match=rf"destroyed on {first[:10]}: its documents can no longer"):
        restored.unwrap(tenant, obj, ref, wrapped)
    for attempt in (restored.current, restored.rotate_tenant, restored.field_key):
        with pytest.raises(KeyUnavailable, match="destroyed"):
            attempt(tenant)  # no version loads, none is created in its place
    assert restored.unwrap(other, obj, other_ref, other_wrap) == other_dek  # the others are untouched

    # Destroying it again shreds the files the restore brought back and keeps the first date.
    assert restored.destroy_tenant(tenant, destroyed_at="2020-01-01T00:00:00+00:00") == [KeyRef(f"tenant:{tenant}", 1)]
    assert list((backup / "tenants" / str(tenant)).glob("v*.key")) == []
    assert restored.shredded() == {tenant: first}


def test_destroyed_again_without_a_register_entry_it_takes_the_date_it_is_given(tmp_path: Path) -> None:
    keyring = LocalKeyring(tmp_path / "keys")
    tenant = uuid.uuid4()
    keyring.current(tenant)
    assert keyring.shredded() == {}
    assert keyring.destroy_tenant(tenant, destroyed_at="2026-03-04T05:06:07+00:00") == [KeyRef(f"tenant:{tenant}", 1)]
    assert keyring.shredded() == {tenant: "2026-03-04T05:06:07+00:00"}
    with pytest.raises(KeyUnavailable, match="destroyed on 2026-03-04"):
        keyring.current(tenant)


# --- the drill ------------------------------------------------------------------------------------


@functools.cache
def _pg_tool(name: str) -> str:
    """``name`` (pg_dump, pg_restore) of the server's major version, else the nearest newer one: an older
    pg_dump cannot dump the server, and a newer one writes settings an older server refuses on restore."""
    import psycopg

    with psycopg.connect(postgres_superuser_url()) as conn:
        server = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
    candidates = [*Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), shutil.which(name),
                  embedded_pg_bin() / name]
    majors = {}
    for path in candidates:
        if path and Path(path).is_file():
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10).stdout
            if found := re.search(r"\) (\d+)", out):
                majors.setdefault(int(found.group(1)), str(path))
    usable = sorted(m for m in majors if m >= server)
    assert usable, f"no {name} of PostgreSQL {server} or newer here"
    return majors[usable[0]]


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(command[:2])}: {done.stderr[-2000:]}"


def _superuser(database: str) -> str:
    return postgres_superuser_url().rsplit("/", 1)[0] + "/" + database


def _dump(db_urls, path: Path) -> Path:  # noqa: ANN001
    source = make_url(db_urls.owner).database
    _run(_pg_tool("pg_dump"), "-Fc", "-f", str(path), "-d", _superuser(source))
    return path


@contextmanager
def _restored(app: Flask, dump: Path, name: str, key_dir: Path, storage_dir: Path) -> Iterator[Flask]:
    """A fresh database restored from ``dump`` (roles exist), and a portal on it; dropped afterwards."""
    import psycopg

    from portal import create_app
    from portal.dbsetup import bootstrap

    urls = bootstrap(postgres_superuser_url(), name, recreate=True)
    try:
        _run(_pg_tool("pg_restore"), "--exit-on-error", "--jobs=2", "-d", _superuser(name), str(dump))
        restored = create_app({
            "TESTING": True, "DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner,
            "INSTANCE_PATH": str(storage_dir.parent / "instance"), "KEY_DIR": str(key_dir),
            "STORAGE_DIR": str(storage_dir),
            **{k: app.config[k] for k in ("SECRET_KEY", "FIELD_KEY", "REDIS_URL", "SMTP_URL", "BASE_URL")}})
        try:
            yield restored
        finally:
            with restored.app_context():
                db.engine.dispose()
    finally:
        with psycopg.connect(postgres_superuser_url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _contents(tenant_id: uuid.UUID) -> list[StoredObject]:
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        rows = db.session.scalars(select(StoredObject).where(StoredObject.purpose == "content")).all()
        for row in rows:
            db.session.expunge(row)
        db.session.rollback()
    return rows


def _sha(obj: StoredObject) -> str:
    stream = read_object(obj)
    try:
        return hashlib.sha256(b"".join(stream)).hexdigest()
    finally:
        stream.close()


def _events(tenant_id: uuid.UUID) -> list[AuditEvent]:
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        for row in rows:
            db.session.expunge(row)
        db.session.rollback()
    return rows


def _heads(tenants: list[TenantRef]) -> dict[str, tuple[int, bytes]]:
    wanted = {str(t.id) for t in tenants}
    return {h.chain: (h.seq, h.hash) for h in audit.heads() if h.chain in wanted}


def _chain_problems(tenants: list[TenantRef]) -> list[str]:
    """What the row-by-row check and the signed checkpoints in object storage say about these tenants' chains."""
    problems = audit.verify_all()
    anchors.check_against_checkpoints(problems)
    return [str(p) for p in problems if p.chain in {t.slug for t in tenants}]


def _storage_with(app: Flask, target: Path, objects: dict[str, bytes]) -> Path:
    """An object store as a restore finds it: ``objects`` (a versioned bucket keeps deleted ones) and every
    record, which nothing restores or rolls back (Object Lock)."""
    shutil.copytree(Path(app.config["STORAGE_DIR"]) / "records", target / "records")
    for key, data in objects.items():
        (target / key).parent.mkdir(parents=True, exist_ok=True)
        (target / key).write_bytes(data)
    return target


def _verify_restore(restored: Flask, *slugs: str):  # noqa: ANN202 - a click Result
    args = ["keys", "verify-restore", *(arg for slug in slugs for arg in ("--tenant", slug))]
    return restored.test_cli_runner().invoke(args=args)


def test_backup_and_restore_drill(app, db_urls, tmp_path):  # noqa: ANN001, PLR0915 - one drill, step by step
    live_storage = Path(app.config["STORAGE_DIR"])
    uploaded: dict[uuid.UUID, set[str]] = {}  # tenant -> SHA-256 of each file as uploaded, worked out here
    with app.app_context():
        a, b = (TenantRef.of(make_tenant(unique(name))) for name in ("Drill A", "Drill B"))
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        for tenant, seeds in ((a, (9601, 9602, 9603)), (b, (9611, 9612))):
            person = make_person(Role.CLIENT_ADMIN, db.session.get(Tenant, tenant.id))
            user, row = db.session.get(User, person.id), db.session.get(Tenant, tenant.id)
            with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
                for seed in seeds:
                    body = samples.pdf(seed)
                    result = documents.upload(user, row, [body], filename=f"drill-{seed}.pdf",
                                              target=documents.upload_target(user, category="invoice"))
                    assert result.status == "stored", result.message
                    uploaded.setdefault(tenant.id, set()).add(hashlib.sha256(body).hexdigest())
        a_objects = {o.storage_key: (live_storage / o.storage_key).read_bytes() for o in _contents(a.id)}
        b_objects = {o.storage_key: (live_storage / o.storage_key).read_bytes() for o in _contents(b.id)}
        assert len(a_objects) == 3 and len(b_objects) == 2
        app_keyring().signing_versions()  # the provider's signing key exists from the first checkpoint on
        key_backup = tmp_path / "key-backup"
        shutil.copytree(app.config["KEY_DIR"], key_backup)  # the key directory's backup, before the shredding
        dump_before = _dump(db_urls, tmp_path / "before.dump")  # a database backup from before it too

        # A tenant created after the key backup: that backup cannot open its documents.
        c = TenantRef.of(make_tenant(unique("Drill C")))
        person = make_person(Role.CLIENT_ADMIN, db.session.get(Tenant, c.id))
        user, row = db.session.get(User, person.id), db.session.get(Tenant, c.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({c.id}), role=Role.CLIENT_ADMIN)):
            assert documents.upload(user, row, [samples.pdf(9621)], filename="late.pdf",
                                    target=documents.upload_target(user, category="invoice")).ok
        c_objects = {o.storage_key: (live_storage / o.storage_key).read_bytes() for o in _contents(c.id)}

        assert procedure.offboard(db.session.get(Tenant, b.id), admin, via="from a test").certificate
        assert not any((live_storage / key).exists() for key in b_objects)
        heads = _heads([a, b, c])
        assert set(heads) == {str(a.id), str(b.id), str(c.id)}
    dump_after = _dump(db_urls, tmp_path / "after.dump")

    # 1. The newest database backup, with the key backup from before the shredding.
    source = make_url(db_urls.owner).database
    storage = _storage_with(app, tmp_path / "one" / "objects", a_objects | c_objects)
    shutil.copytree(key_backup, tmp_path / "one" / "keys")
    with _restored(app, dump_after, f"{source}_restore1", tmp_path / "one" / "keys", storage) as restored:
        with restored.app_context():
            sealed = [e for e in _events(b.id) if e.sealed is not None]
            assert sealed and sealed[-1].details is not None  # the hazard: the old key backup opens B's log

        result = _verify_restore(restored, a.slug)
        assert result.exit_code == 0, result.output
        [line] = [x for x in result.stderr.splitlines() if x.startswith(f"RESTORED SHREDDED KEY {b.slug} ")]
        assert f"(tenant:{b.id}, destroyed on " in line and line.endswith("destroyed again")
        assert "database" in line and "record " in line
        assert "1 objects opened, 0 unreadable" in result.stdout  # one per tenant and key version

        with restored.app_context():
            # B's key is gone from the restored key directory, and its log's details are shut for good.
            assert list((tmp_path / "one" / "keys" / "tenants" / str(b.id)).glob("v*.key")) == []
            with pytest.raises(KeyUnavailable, match="destroyed on"):
                _events(b.id)[sealed[-1].seq - 1].details  # noqa: B018
            # The audit chains are whole: row by row, against the signed checkpoints, and to the same heads.
            assert _chain_problems([a, b, c]) == []
            assert _heads([a, b, c]) == heads
            signed = anchors.stored_checkpoints([])
            assert str(a.id) in signed and str(b.id) in signed  # the check above compared real checkpoints
            # Every one of A's documents decrypts to what was uploaded.
            assert {_sha(o) for o in _contents(a.id)} == uploaded[a.id]
            assert _contents(b.id) == []  # offboarded before this backup
            [event] = db.session.scalars(select(audit.PlatformAuditEvent)
                                         .where(audit.PlatformAuditEvent.action == "keys.destroyed_again",
                                                audit.PlatformAuditEvent.object_id == str(b.id))).all()
            assert event.actor_side == "system"
            db.session.rollback()

        # What an operator runs on a drill's copy: the same check, and nothing signed into the bucket.
        records = sorted(p for p in (storage / "records").rglob("*") if p.is_file())
        checked = restored.test_cli_runner().invoke(args=["audit", "verify", "--no-checkpoint"])
        assert not [x for x in checked.stderr.splitlines() if any(f" {t.slug} #" in x for t in (a, b, c))]
        assert sorted(p for p in (storage / "records").rglob("*") if p.is_file()) == records

        # Running it again finds nothing to do; C's documents are past this key backup and it says so.
        again = _verify_restore(restored, a.slug)
        assert again.exit_code == 0 and "RESTORED SHREDDED KEY" not in again.stderr, again.output
        late = _verify_restore(restored, c.slug)
        assert late.exit_code == 1
        assert re.search(rf"^UNREADABLE {c.slug} tenant:{c.id} v1 object .*KeyUnavailable", late.stderr, re.M)

    # 2. A database backup from before the offboarding too: B is active in it, with its rows and (versioned
    # bucket) its objects; only the signed record in object storage remembers the shredding.
    storage = _storage_with(app, tmp_path / "two" / "objects", a_objects | b_objects)
    shutil.copytree(key_backup, tmp_path / "two" / "keys")
    with _restored(app, dump_before, f"{source}_restore2", tmp_path / "two" / "keys", storage) as restored:
        with restored.app_context():
            assert db.session.get(Tenant, b.id).status == "active"
            b_rows = _contents(b.id)
            assert {_sha(o) for o in b_rows} == uploaded[b.id]  # the hazard: everything of B could come back

        result = _verify_restore(restored, a.slug)
        assert result.exit_code == 0, result.output + result.stderr
        [line] = [x for x in result.stderr.splitlines() if x.startswith(f"RESTORED SHREDDED KEY {b.slug} ")]
        assert "record " in line and "database" not in line  # only the record in the bucket knew

        with restored.app_context():
            for obj in b_rows:
                with pytest.raises(KeyUnavailable, match="destroyed on"):
                    read_object(obj)
            assert {_sha(o) for o in _contents(a.id)} == uploaded[a.id]
            # Row by row both chains verify; the checkpoints signed after this backup show what it lost of B's.
            problems = _chain_problems([a, b])
            assert problems and all(p.startswith(f"{b.slug} #") and "rows were cut" in p for p in problems)
