"""A tenant that leaves leaves nothing readable: not through the portal, not in a dump of the
database, not in the object store, not in the outbox.

The test plants a marker in everything the tenant and the provider's people can write for it,
through the same services the pages use, offboards it from the command line as a provider
admin, and then looks for the marker everywhere an attacker with a copy of the database or the
bucket could.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.documents import requests as document_requests
from portal.documents import services as documents
from portal.documents.models import StoredObject
from portal.extensions import db
from portal.mail import MailMessage
from portal.offboarding.procedure import RETAINED, tenant_tables
from portal.work import kpi, recurring, time
from portal.work import services as work
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.keyring import app_keyring
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tenants.zones import tenant_zone, today_in
from tests.documents import samples
from tests.factories import TenantRef, login, make_person, make_tenant, unique

MARK = "zqxmarker"  # nothing else in the portal spells this


def _as(person, tenant_id, role):  # noqa: ANN001, ANN202
    return bound(Scope(user_id=person.id, tenant_ids=frozenset({tenant_id}), role=role))


def _user(person) -> User:  # noqa: ANN001
    return db.session.get(User, person.id)


@pytest.fixture
def planted(app, run_jobs, smtp):
    """A tenant whose every table holds a marker, written through the services by its people."""
    with app.app_context():
        tenant = TenantRef.of(make_tenant(f"{MARK} Trading Co"))
        other = TenantRef.of(make_tenant())
        people = {role: make_person(role, db.session.get(Tenant, tenant.id))
                  for role in (Role.CLIENT_ADMIN, Role.CLIENT_APPROVER, Role.CLIENT_MEMBER)}
        people[Role.PROVIDER_ADMIN] = make_person(Role.PROVIDER_ADMIN)
        people[Role.STAFF] = make_person(Role.STAFF)
        people[Role.MANAGER] = make_person(Role.MANAGER)
        admin = _user(people[Role.PROVIDER_ADMIN])
        t = db.session.get(Tenant, tenant.id)
        for role in (Role.STAFF, Role.MANAGER):
            assign(admin, t, _user(people[role]))
        # The approver also belongs to another workspace: they keep their account.
        with bound(Scope(tenant_ids=frozenset({other.id}))):
            from tenants.models import Membership

            db.session.add(Membership(tenant_id=other.id, user_id=people[Role.CLIENT_APPROVER].id,
                                      role=Role.CLIENT_APPROVER.value))
            db.session.commit()
        staff, manager = _user(people[Role.STAFF]), _user(people[Role.MANAGER])
        client_admin, member = _user(people[Role.CLIENT_ADMIN]), _user(people[Role.CLIENT_MEMBER])

        with _as(member, t.id, Role.CLIENT_MEMBER):
            target = documents.upload_target(member, category="invoice", period="2026-11", tags=f"{MARK}tag")
            doc = documents.upload(member, t, [samples.pdf(9100)], filename=f"{MARK}-invoice.pdf", target=target)
            assert doc.ok, doc.message
            photo = documents.upload(member, t, [samples.png(9101)], filename=f"{MARK}-photo.png",
                                     target=documents.upload_target(member, category="receipt"))
            assert photo.ok
        with _as(staff, t.id, Role.STAFF):
            req = document_requests.create_request(staff, t, title=f"{MARK} request", note=f"{MARK} note",
                                                   items=[document_requests.ItemInput(f"{MARK} item", "invoice")])
            item_id = req.items[0].id
        with _as(member, t.id, Role.CLIENT_MEMBER):
            answer = documents.upload(member, t, [samples.pdf(9102)], filename=f"{MARK}-answer.pdf",
                                      target=documents.upload_target(member, item_id=str(item_id)))
            assert answer.ok
            version = documents.upload(member, t, [samples.pdf(9103)], filename=f"{MARK}-v2.pdf",
                                       target=documents.upload_target(member, document_id=str(doc.document.id)))
            assert version.status == "version"
            work.request_work(member, t, title=f"{MARK} please register", description=f"{MARK} details",
                              document_ids=[str(doc.document.id)])
        with _as(manager, t.id, Role.MANAGER):
            task = work.create_task(manager, t, title=f"{MARK} close November", service_line_key="bookkeeping",
                                    description=f"{MARK} description", assignee_id=str(staff.id),
                                    reviewer_id=str(manager.id), due=date.today() + timedelta(days=5))
            task_id = str(task.id)
            recurring.add_template(manager, t, title=f"{MARK} monthly", service_line_key="payroll",
                                   rule={"kind": "day_of_month", "day": 5})
            kpi.set_target(manager, t, line_key="bookkeeping", turnaround_days=3, on_time_percent=90)
        with _as(staff, t.id, Role.STAFF):
            work.comment(staff, task_id, f"{MARK} visible comment")
            work.comment(staff, task_id, f"{MARK} internal note", internal=True)
            time.add_entry(staff, task_id, day=today_in(tenant_zone(t.id)).isoformat(), minutes=30, billable=True,
                           note=f"{MARK} time note")
            time.start_timer(staff, task_id)
            work.move(staff, t, task_id, "ask_client", reason=f"{MARK} question?")
        with _as(manager, t.id, Role.MANAGER):  # the books, with a posted entry (never deleted but by offboarding)
            from portal.ledger import services as ledger

            ledger.start_books(manager, t, "vn_tt133")
            draft = ledger.save_draft(manager, t, today_in(tenant_zone(t.id)), [ledger.LineInput("1111", 5_000_000, 0),
                                                                 ledger.LineInput("4111", 0, 5_000_000)],
                                      memo=f"{MARK} capital")
            ledger.post(manager, t, str(draft.id))
        with _as(client_admin, t.id, Role.CLIENT_ADMIN):
            work.move(client_admin, t, task_id, "answer", reason=f"{MARK} answer")
            from portal.api.tokens import create_token
            from portal.clients import services as clients

            token = create_token(client_admin, t, f"{MARK} token", "write")
            clients.invite_member(client_admin, t, f"{MARK}-invitee@example.test", f"{MARK} Invitee",
                                  "client_member", ip=None)
            from portal.offboarding import export

            export.request_export(client_admin, t)
        db.session.commit()
    run_jobs()  # thumbnails, e-mails, the export
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        objects = list(db.session.execute(select(StoredObject.storage_key, StoredObject.purpose)))
        assert {p for _k, p in objects} >= {"content", "thumbnail", "export"}
        db.session.rollback()
    return {"tenant": tenant, "other": other, "people": people, "token": token, "task_id": task_id,
            "objects": [k for k, _p in objects]}


def _dump(app, db_urls) -> str:
    """Everything the database holds, as ``pg_dump`` writes it (data of every table, any role)."""
    from tests.services import embedded_pg_bin, postgres_superuser_url

    pg_dump = embedded_pg_bin() / "pg_dump"  # the package's own: it dumps any older server

    superuser = postgres_superuser_url().rsplit("/", 1)[0] + "/" + db_urls.owner.rsplit("/", 1)[1]
    out = subprocess.run([str(pg_dump), "--data-only", "--no-owner", "-d", superuser], capture_output=True,
                         check=True, timeout=120)
    return out.stdout.decode("utf-8", "replace")


def _marked(blob: str) -> bool:
    # pg_dump writes bytea as hex: a marker kept in clear bytes would show as its hex.
    return MARK in blob.lower() or MARK.encode().hex() in blob.lower()


def test_an_offboarded_tenant_leaves_nothing_readable_anywhere(app, db_urls, planted, smtp, run_jobs, tmp_path):
    tenant, people = planted["tenant"], planted["people"]
    dump_before = _dump(app, db_urls)
    assert _marked(dump_before)  # the test can fail: the markers are there in clear before

    cert = tmp_path / "certificate.txt"
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["tenants", "offboard", tenant.slug, "--by", people[Role.STAFF].email, "--yes"])
    assert refused.exit_code != 0 and "provider admin" in refused.output
    result = runner.invoke(args=["tenants", "offboard", tenant.slug, "--by", people[Role.PROVIDER_ADMIN].email,
                                 "--certificate", str(cert)], input=f"{tenant.slug}\n")
    assert result.exit_code == 0, result.output
    run_jobs()  # the certificate e-mails

    # Not in the database, live or as pg_dump sees it (every table, every role).
    dump = _dump(app, db_urls)
    leaks = [line for line in dump.splitlines() if _marked(line)]
    assert leaks == [], leaks[:5]

    # Not in the object store: the tenant's objects are gone, and nothing stored holds the marker.
    storage = Path(app.config["STORAGE_DIR"])
    assert not [k for k in planted["objects"] if (storage / k).exists()]
    for path in storage.rglob("*"):
        if path.is_file():
            assert MARK.encode() not in path.read_bytes(), path

    # Not in the outbox: queued e-mails of the tenant's people are gone, sent ones keep no address or subject.
    with app.app_context():
        rows = db.session.execute(select(MailMessage.to_addr, MailMessage.subject)).all()
        assert not [r for r in rows if MARK in f"{r.to_addr} {r.subject}"]

        # Every tenant-owned table is empty for it, but the audit log and its checkpoints.
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            left = {t.name: n for t in tenant_tables() if t.name not in RETAINED
                    if (n := db.session.scalar(select(func.count()).select_from(t)
                                               .where(t.c.tenant_id == tenant.id)))}
            assert left == {}
            # The audit chain still verifies over what it kept, and none of it can be opened.
            events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
            assert events and all(e.sealed is not None or not e.data for e in events)
            from tenants.audit import verify_rows
            from tenants.keyring import KeyUnavailable

            assert verify_rows(tenant.slug, events) == []
            with pytest.raises(KeyUnavailable):
                events[-1].details  # noqa: B018
            db.session.rollback()
        row = db.session.get(Tenant, tenant.id)
        assert row.status == "offboarded" and MARK not in row.name
        # People with no other workspace: disabled and erased; the approver keeps their account.
        erased = [db.session.get(User, people[r].id) for r in (Role.CLIENT_ADMIN, Role.CLIENT_MEMBER)]
        assert all(not u.is_active and u.password_hash is None and u.email.endswith("@erased.invalid")
                   for u in erased)
        kept = db.session.get(User, people[Role.CLIENT_APPROVER].id)
        assert kept.is_active and kept.email == people[Role.CLIENT_APPROVER].email

    # Not through the portal: the tenant's URLs answer 404 to everyone, its people cannot sign in.
    for role in (Role.PROVIDER_ADMIN, Role.STAFF, Role.CLIENT_APPROVER):
        client = app.test_client()
        login(client, people[role])
        for url in (f"/t/{tenant.slug}/", f"/t/{tenant.slug}/tasks/{planted['task_id']}", f"/t/{tenant.slug}/documents",
                    f"/t/{tenant.slug}/users", f"/t/{tenant.slug}/access-log"):
            assert client.get(url).status_code == 404, (role, url)
        for url in ("/", "/tenants", "/provider/", "/provider/work", "/provider/tenants", "/provider/queues",
                    "/notifications"):
            body = client.get(url, follow_redirects=True).get_data(as_text=True)
            assert MARK not in body and tenant.slug not in body, (role, url)
    gone = app.test_client()
    r = gone.post("/auth/login", data={"email": people[Role.CLIENT_ADMIN].email, "password": "x"})
    assert r.status_code in (200, 400, 422) and b"/t/" not in r.data
    api = app.test_client().get(f"/api/v1/tenants/{tenant.slug}/documents",
                                headers={"Authorization": f"Bearer {planted['token']}"})
    assert api.status_code == 401

    # The certificate says what was done, names who did it, and anyone can check it.
    certificate = cert.read_text()
    statement = json.loads(certificate.split("-----BEGIN SIGNED STATEMENT-----")[1]
                           .split("-----END SIGNED STATEMENT-----")[0])["statement"]
    admin = people[Role.PROVIDER_ADMIN]
    assert statement["by"].startswith(f"{_name(app, admin)} <{admin.email}>")
    assert "from the command line" in statement["by"]
    assert statement["documents_deleted"] == 3 and statement["stored_objects_deleted"] == len(planted["objects"])
    assert statement["keys_destroyed"] == [f"tenant:{tenant.id} v1"]
    assert statement["people_erased"] == 3 and statement["people_kept_in_other_workspaces"] == 1  # and the invitee
    # The two months its uploads opened, the work the client asked for and the manager's task.
    assert statement["rows_deleted"]["tasks"] == 4 and statement["rows_deleted"]["task_comments"] >= 4
    assert "document names and tags are not" in statement["backups"]  # nothing overstated
    mails = [m for m in smtp.to(people[Role.CLIENT_ADMIN].email) if m["Subject"] == "Deletion certificate"]
    assert len(mails) == 1 and statement["certificate_id"] in mails[0].get_content()
    verified = runner.invoke(args=["certificates", "verify", str(cert)])
    assert verified.exit_code == 0 and "valid" in verified.output
    forged = tmp_path / "forged.txt"
    forged.write_text(certificate.replace('"people_erased": 3', '"people_erased": 2'), encoding="utf-8")
    refused = runner.invoke(args=["certificates", "verify", str(forged)])
    assert refused.exit_code == 1 and "altered or forged" in refused.output

    # Running it again certifies nothing new and changes nothing.
    again = runner.invoke(args=["tenants", "offboard", tenant.slug, "--by", people[Role.PROVIDER_ADMIN].email,
                                "--yes"])
    assert again.exit_code != 0 and "already offboarded" in again.output


def _name(app, person) -> str:  # noqa: ANN001
    with app.app_context():
        return db.session.get(User, person.id).name


@pytest.mark.parametrize("crash_after", ["closed", "keys", "objects", "rows", "people"])
def test_an_offboarding_that_crashes_part_way_resumes_and_certifies_the_truth(app, run_jobs, smtp, monkeypatch,
                                                                             crash_after):
    from portal.offboarding import procedure

    with app.app_context():
        tenant = TenantRef.of(make_tenant())
        member = make_person(Role.CLIENT_ADMIN, db.session.get(Tenant, tenant.id))
        admin = make_person(Role.PROVIDER_ADMIN)
        with _as(_user(member), tenant.id, Role.CLIENT_ADMIN):
            assert documents.upload(_user(member), db.session.get(Tenant, tenant.id), [samples.pdf(9300)],
                                    filename="a.pdf", target=documents.upload_target(None)).ok
        versions = [ref for ref, _s in app_keyring().versions(tenant.id)]
    steps = list(procedure.STEPS)
    crashing = steps[steps.index(crash_after) + 1]
    real = procedure._STEP[crashing]

    def crash(record, t):  # noqa: ANN001, ANN202
        raise RuntimeError("the machine went away")

    monkeypatch.setitem(procedure._STEP, crashing, crash)
    with app.app_context():
        with pytest.raises(RuntimeError):
            procedure.offboard(db.session.get(Tenant, tenant.id), _user(admin), via="from a test")
        db.session.rollback()
        t = db.session.get(Tenant, tenant.id)
        assert t.status == "offboarding"  # closed to everyone while it is unfinished
    client = app.test_client()
    login(client, admin)
    assert client.get(f"/t/{tenant.slug}/documents").status_code == 404
    monkeypatch.setitem(procedure._STEP, crashing, real)
    with app.app_context():
        result = procedure.offboard(db.session.get(Tenant, tenant.id), _user(admin), via="from a test")
        assert result.certificate is not None
        statement = json.loads(result.certificate.split("-----BEGIN SIGNED STATEMENT-----")[1]
                               .split("-----END SIGNED STATEMENT-----")[0])["statement"]
        # The keys destroyed are those that existed when it started, even when the run that destroyed them crashed.
        assert statement["keys_destroyed"] == [f"{r.key_id} v{r.version}" for r in versions]
        assert statement["documents_deleted"] == 1 and statement["stored_objects_deleted"] >= 1
        assert db.session.get(Tenant, tenant.id).status == "offboarded"


def test_a_provider_admin_offboards_from_the_console_and_the_certificate_reaches_them(app, run_jobs, smtp):
    from tests.factories import csrf_token

    with app.app_context():
        tenant = TenantRef.of(make_tenant(unique("Console Co")))
        client_admin = make_person(Role.CLIENT_ADMIN, db.session.get(Tenant, tenant.id))
        admin = make_person(Role.PROVIDER_ADMIN)
    browser = app.test_client()
    login(browser, admin)
    page = f"/provider/tenants/{tenant.slug}"
    token = csrf_token(browser, page)
    wrong = browser.post(f"{page}/offboard", data={"csrf_token": token, "confirm": "not-the-slug"})
    assert wrong.status_code == 422 and "Type the short name" in wrong.get_data(as_text=True)
    done = browser.post(f"{page}/offboard", data={"csrf_token": token, "confirm": tenant.slug})
    assert done.status_code == 302
    run_jobs()
    run_jobs()  # the offboarding job queues the certificate e-mails
    with app.app_context():
        assert db.session.get(Tenant, tenant.id).status == "offboarded"
    for person in (client_admin, admin):
        [mail] = [m for m in smtp.to(person.email) if m["Subject"] == "Deletion certificate"]
        assert "from the provider console" in mail.get_content()
    assert browser.get(page).status_code == 404


def test_the_public_page_checks_a_certificate(app, tmp_path):
    from portal.trust import certificates
    from tenants import signing
    from tests.factories import csrf_token

    with app.app_context():
        envelope = signing.sign(app_keyring(), {"type": "deletion-certificate", "tenant_slug": "acme",
                                                "certificate_id": str(uuid.uuid4())})
        text_ = certificates.render(envelope, "Deletion certificate", ["Company: Acme"])
    anyone = app.test_client()
    token = csrf_token(anyone, "/certificates/verify")
    good = anyone.post("/certificates/verify", data={"csrf_token": token, "text": text_})
    assert good.status_code == 200 and 'data-testid="valid"' in good.get_data(as_text=True)
    import io

    upload = anyone.post("/certificates/verify", data={"csrf_token": token,
                                                       "certificate": (io.BytesIO(text_.encode()), "cert.txt")},
                         content_type="multipart/form-data")
    assert 'data-testid="valid"' in upload.get_data(as_text=True)
    bad = anyone.post("/certificates/verify", data={"csrf_token": token, "text": text_.replace("acme", "acne")})
    assert bad.status_code == 200 and 'data-testid="invalid"' in bad.get_data(as_text=True)
    assert "altered or forged" in bad.get_data(as_text=True)
    empty = anyone.post("/certificates/verify", data={"csrf_token": token, "text": " "})
    assert empty.status_code == 422 and "Choose the certificate file" in empty.get_data(as_text=True)
    keys = anyone.get("/keys").get_data(as_text=True)
    assert "portal-signing-v1" in keys and "BEGIN PUBLIC KEY" in keys
