"""E-mail in: a real SMTP receiver (aiosmtpd) on loopback with the app's handler, real messages sent with smtplib.

Registered senders' attachments go through the vault's upload and intake; anyone else's mail, and mail
whose sender checks failed, waits in the quarantine for the client admin; addresses are refused with 550
when they are not (or no longer) a tenant's; a message delivered twice is kept once; nothing crosses tenants.
"""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, func, select, text

from portal.documents.models import Document, StoredObject
from portal.extensions import db
from portal.intake.mail import addresses
from portal.intake.mail.message import auth_failure, parse
from portal.intake.mail.models import IntakeMail, IntakeMailAddress, IntakeMailDocument
from portal.intake.mail.smtp import controller
from portal.intake.models import IntakeRecord
from tenants.audit import AuditEvent
from tenants.context import for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.api.util import bearer, issue_token
from tests.documents import samples
from tests.factories import csrf_token, login, make_person, make_tenant
from tests.services import free_port

STRANGER = "someone@elsewhere.test"


@pytest.fixture(scope="module")
def receiver(app):
    """The app's SMTP receiver on a free loopback port, for this module."""
    server = controller(app, "127.0.0.1", free_port())
    server.start()
    yield server
    server.stop()


def _tenant(app):
    """A tenant with a client admin and a member, and its intake address (made as the admin would)."""
    with app.app_context():
        tenant = make_tenant()
        admin, member = make_person(Role.CLIENT_ADMIN, tenant), make_person(Role.CLIENT_MEMBER, tenant)
        with for_tenant(tenant.id):
            address = addresses.rotate(db.session.get(User, admin.id), db.session.get(Tenant, tenant.id))
        return SimpleNamespace(id=tenant.id, slug=tenant.slug, admin=admin, member=member, address=address)


def _message(sender: str, to: str, *, files: dict[str, bytes] = None, body: str = "Xin gửi hóa đơn tháng 3.",
             subject: str = "Hóa đơn tháng 3", headers: dict[str, str] | None = None,
             message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = message_id or make_msgid(domain="sender.test")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for name, payload in (files or {}).items():
        maintype, subtype = {"pdf": ("application", "pdf"), "csv": ("text", "csv")}.get(
            name.rsplit(".", 1)[-1], ("application", "octet-stream"))
        if maintype == "text":
            msg.add_attachment(payload.decode(), subtype=subtype, filename=name)
        else:
            msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=name)
    return msg


def _send(receiver, msg: EmailMessage, to: str | None = None) -> None:
    with smtplib.SMTP(receiver.hostname, receiver.port, timeout=60) as client:
        client.send_message(msg, to_addrs=[to or msg["To"]])


def _mails(app, tenant_id) -> list[IntakeMail]:
    with app.app_context(), for_tenant(tenant_id):
        mails = db.session.scalars(select(IntakeMail).order_by(IntakeMail.received_at)).all()
        for mail in mails:
            _ = (mail.sender, mail.subject, mail.body, mail.outcome)  # unsealed while the tenant is bound
            db.session.expunge(mail)
        return mails


def _documents(app, tenant_id) -> list[Document]:
    with app.app_context(), for_tenant(tenant_id):
        docs = db.session.scalars(select(Document).order_by(Document.title)).all()
        for doc in docs:
            db.session.expunge(doc)
        return docs


def _events(app, tenant_id, action: str) -> list[AuditEvent]:
    with app.app_context(), for_tenant(tenant_id):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all()
        for row in rows:
            _ = (row.who, row.details)
            db.session.expunge(row)
        return rows


def _post(client, url: str, page: str) -> object:
    return client.post(url, data={"csrf_token": csrf_token(client, page)})


# --- accepted --------------------------------------------------------------------------------------------

def test_a_registered_senders_pdf_and_csv_are_stored_as_theirs_read_by_intake_with_the_note(app, receiver,
                                                                                             run_jobs):
    t = _tenant(app)
    body = "Chào anh chị,\nXin gửi hóa đơn và bảng chấm công tháng 3.\nCảm ơn."
    _send(receiver, _message(t.member.email.upper(), t.address, body=body,  # the From address in any case
                             files={"hoa-don.pdf": samples.pdf(4101), "cham-cong.csv": samples.csv_bytes(7)}))
    docs = _documents(app, t.id)
    assert sorted(d.title for d in docs) == ["cham-cong.csv", "hoa-don.pdf"]
    assert {(d.uploaded_by_id, d.category) for d in docs} == {(t.member.id, "other")}  # intake classifies
    [mail] = _mails(app, t.id)
    assert (mail.state, mail.sender, mail.sender_user_id, mail.body) == ("stored", t.member.email, t.member.id, body)
    run_jobs()
    with app.app_context(), for_tenant(t.id):
        states = db.session.scalars(select(IntakeRecord.state).where(
            IntakeRecord.document_id.in_([d.id for d in docs]))).all()
        assert sorted(states) == ["done", "done"]  # the same intake as an upload
        assert db.session.scalar(select(func.count()).select_from(IntakeMailDocument)) == 2
    # The access log: the vault's uploads by the sender, and the message, attributed to the sender.
    assert {e.who for e in _events(app, t.id, "document.uploaded")} == {t.member.email}
    [received] = _events(app, t.id, "intake.mail_received")
    assert received.who == t.member.email
    assert sorted(received.details["documents"]) == ["cham-cong.csv", "hoa-don.pdf"]
    client = app.test_client()
    login(client, t.member)
    page = client.get(f"/t/{t.slug}/documents/{docs[1].id}").get_data(as_text=True)
    assert f"Received by e-mail from {t.member.email} on" in page
    assert "Xin gửi hóa đơn và bảng chấm công tháng 3." in page and 'data-testid="mail-note"' in page


def test_an_added_sender_address_is_registered_and_named_in_the_access_log(app, receiver):
    t = _tenant(app)
    client = app.test_client()
    login(client, t.admin)
    page = f"/t/{t.slug}/documents"
    r = client.post(f"/t/{t.slug}/mail-in/senders", data={"email": "Scanner@Client.test",
                                                           "csrf_token": csrf_token(client, page)})
    assert r.status_code == 303
    assert "Mail from scanner@client.test now goes straight into the documents." in client.get(page).get_data(
        as_text=True)
    _send(receiver, _message("Office Scanner <scanner@client.test>", t.address, files={"scan.pdf": samples.pdf(4102)}))
    [doc] = _documents(app, t.id)
    assert doc.uploaded_by_id is None  # not a user: stored by the system ...
    [received] = _events(app, t.id, "intake.mail_received")
    assert received.who == "scanner@client.test"  # ... and the access log names the address


def test_a_refused_attachment_is_named_in_the_note_and_the_others_are_kept(app, receiver):
    t = _tenant(app)
    _send(receiver, _message(t.admin.email, t.address, files={"setup.exe": samples.windows_exe(),
                                                               "hoa-don.pdf": samples.pdf(4103)}))
    [doc] = _documents(app, t.id)
    assert doc.title == "hoa-don.pdf"
    [mail] = _mails(app, t.id)
    assert mail.state == "stored"
    client = app.test_client()
    login(client, t.admin)
    page = client.get(f"/t/{t.slug}/documents/{doc.id}").get_data(as_text=True)
    assert "Attachments of this e-mail that were not kept:" in page
    # Why, in the tenant's language (Vietnamese here): the note is written once, when the mail arrives.
    assert "<strong>setup.exe</strong>: Tệp này là một chương trình Windows" in page


def test_the_same_message_delivered_twice_is_kept_once(app, receiver):
    t = _tenant(app)
    msg_id = make_msgid(domain="sender.test")
    for _attempt in range(2):
        _send(receiver, _message(t.member.email, t.address, files={"a.pdf": samples.pdf(4104)}, message_id=msg_id))
    assert len(_documents(app, t.id)) == 1 and len(_mails(app, t.id)) == 1
    assert len(_events(app, t.id, "intake.mail_received")) == 1


# --- refused addresses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["unknown", "other_domain", "not_an_address"])
def test_an_address_that_is_not_an_intake_address_is_refused_with_550(app, receiver, kind):
    t = _tenant(app)
    local = t.address.split("@")[0]
    to = {"unknown": f"{t.slug}.{'a' * 16}@{addresses_domain(app)}", "other_domain": f"{local}@example.test",
          "not_an_address": "postmaster"}[kind]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(receiver, _message(t.member.email, to, files={"a.pdf": samples.pdf(4105)}))
    [(code, reply)] = refused.value.recipients.values()
    assert code == 550 and b"not an intake address here" in reply
    assert _mails(app, t.id) == [] and _documents(app, t.id) == []


def addresses_domain(app) -> str:
    return app.config["INTAKE_MAIL_DOMAIN"]


def test_a_rotated_address_stops_working_at_once(app, receiver):
    t = _tenant(app)
    client = app.test_client()
    login(client, t.admin)
    page = f"/t/{t.slug}/documents"
    before = client.get(page).get_data(as_text=True)
    assert t.address in before and 'data-copy' in before and 'data-testid="mail-in-rotate"' in before
    assert _post(client, f"/t/{t.slug}/mail-in/address", page).status_code == 303
    after = client.get(page).get_data(as_text=True)
    assert t.address not in after and "The old address no longer works" in after
    with app.app_context(), for_tenant(t.id):
        new = addresses.address_of(addresses.current(db.session.get(Tenant, t.id)))
    assert new != t.address and new.startswith(f"{t.slug}.") and new in after
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send(receiver, _message(t.member.email, t.address, files={"a.pdf": samples.pdf(4106)}))
    _send(receiver, _message(t.member.email, new, files={"a.pdf": samples.pdf(4106)}))
    assert len(_documents(app, t.id)) == 1
    assert len(_events(app, t.id, "intake.mail_address_rotated")) == 1


# --- the quarantine ---------------------------------------------------------------------------------------

def test_a_strangers_mail_is_held_and_the_client_admin_releases_it(app, receiver):
    t = _tenant(app)
    _send(receiver, _message(f"Nobody <{STRANGER}>", t.address, subject="Invoice 77",
                             files={"invoice-77.pdf": samples.pdf(4107)}))
    assert _documents(app, t.id) == []
    [mail] = _mails(app, t.id)
    assert (mail.state, mail.reason, mail.sender) == ("held", "unknown_sender", STRANGER)
    with app.app_context(), for_tenant(t.id):
        raw = db.session.get(StoredObject, mail.raw_object_id)
        assert (raw.purpose, raw.kind) == ("mail", "eml")  # sealed in the vault's storage, not in the quota
    client = app.test_client()
    login(client, t.admin)
    docs_page = client.get(f"/t/{t.slug}/documents").get_data(as_text=True)
    assert "1 message waits in the quarantine for your decision" in docs_page
    page = client.get(f"/t/{t.slug}/mail-in/quarantine").get_data(as_text=True)
    assert STRANGER in page and "Invoice 77" in page and "invoice-77.pdf" in page
    assert "The sender is not one of this workspace's registered senders." in page
    r = _post(client, f"/t/{t.slug}/mail-in/quarantine/{mail.id}/release", f"/t/{t.slug}/mail-in/quarantine")
    assert r.status_code == 303
    done = client.get(f"/t/{t.slug}/mail-in/quarantine").get_data(as_text=True)
    assert f"Released: 1 file from {STRANGER} is now in the documents." in done and "Nothing is waiting." in done
    [doc] = _documents(app, t.id)
    assert (doc.title, doc.uploaded_by_id) == ("invoice-77.pdf", t.admin.id)  # by the admin, for the sender
    [mail] = _mails(app, t.id)
    assert (mail.state, mail.decided_by_id, mail.raw_object_id) == ("released", t.admin.id, None)
    [released] = _events(app, t.id, "intake.mail_released")
    assert released.who == t.admin.email and released.details["from"] == STRANGER
    page = client.get(f"/t/{t.slug}/documents/{doc.id}").get_data(as_text=True)
    assert f"Received by e-mail from {STRANGER}" in page and "It waited in the quarantine" in page


@pytest.mark.parametrize(("header", "value", "reason"), [
    ("Authentication-Results", "mx.portal.test; spf=fail (sender IP is 203.0.113.9) smtp.mailfrom={d}", "spf_fail"),
    ("Authentication-Results", "mx.portal.test; spf=pass smtp.mailfrom={d}; dkim=fail header.d={d}", "dkim_fail"),
    ("Authentication-Results", "mx.portal.test; dmarc=fail (p=reject) header.from={d}", "dmarc_fail"),
    ("Received-SPF", "softfail (mx.portal.test: domain of {d} does not designate 203.0.113.9)", "spf_fail"),
])
def test_a_registered_senders_mail_that_fails_a_sender_check_is_held(app, receiver, header, value, reason):
    t = _tenant(app)
    domain = t.member.email.split("@")[1]
    _send(receiver, _message(t.member.email, t.address, headers={header: value.format(d=domain)},
                             files={"a.pdf": samples.pdf(4108)}))
    assert _documents(app, t.id) == []
    [mail] = _mails(app, t.id)
    assert (mail.state, mail.reason) == ("held", reason)


def test_passing_or_inconclusive_sender_checks_hold_nothing(app, receiver):
    t = _tenant(app)
    _send(receiver, _message(t.member.email, t.address, files={"a.pdf": samples.pdf(4109)}, headers={
        "Authentication-Results": "mx.portal.test; spf=pass; dkim=pass (good signature); dmarc=pass",
        "Received-SPF": "neutral (no policy)"}))
    assert [m.state for m in _mails(app, t.id)] == ["stored"]


@pytest.mark.parametrize(("values", "expected"), [
    (["mx; spf=softfail smtp.mailfrom=a.test"], "spf_fail"),
    (["mx; spf=permerror; dkim=none; dmarc=temperror"], None),
    (["mx (a comment; with spf=fail inside); spf=pass"], None),  # a comment is not a result
    (["mx; dkim=fail; dmarc=fail", "other.mx; spf=fail"], "dmarc_fail"),  # the most severe is said
    (["mx; DKIM=FAIL header.d=a.test"], "dkim_fail"),
])
def test_authentication_results_are_read_strictly(values, expected):
    msg = EmailMessage()
    for value in values:
        msg["Authentication-Results"] = value
    assert auth_failure(msg) == expected


def test_the_client_admin_drops_a_held_message_and_it_is_gone(app, receiver):
    t = _tenant(app)
    _send(receiver, _message(STRANGER, t.address, subject="Spam", files={"x.pdf": samples.pdf(4110)}))
    [mail] = _mails(app, t.id)
    with app.app_context(), for_tenant(t.id):
        storage_key = db.session.get(StoredObject, mail.raw_object_id).storage_key
    client = app.test_client()
    login(client, t.admin)
    r = _post(client, f"/t/{t.slug}/mail-in/quarantine/{mail.id}/drop", f"/t/{t.slug}/mail-in/quarantine")
    assert r.status_code == 303
    assert "it is deleted and nothing of it was stored" in client.get(f"/t/{t.slug}/mail-in/quarantine").get_data(
        as_text=True)
    [mail] = _mails(app, t.id)
    assert (mail.state, mail.raw_object_id, mail.body, mail.decided_by_id) == ("dropped", None, None, t.admin.id)
    with app.app_context(), for_tenant(t.id):
        assert db.session.scalar(select(func.count()).select_from(StoredObject)
                                 .where(StoredObject.purpose == "mail")) == 0
        from portal.documents.services import vault_storage

        assert not vault_storage().exists(storage_key)  # the sealed copy itself is deleted
    assert _documents(app, t.id) == []
    [dropped] = _events(app, t.id, "intake.mail_dropped")
    assert dropped.who == t.admin.email and dropped.details["attachments"] == ["x.pdf"]
    # Decided: neither released nor dropped again.
    assert _post(client, f"/t/{t.slug}/mail-in/quarantine/{mail.id}/release",
                 f"/t/{t.slug}/mail-in/quarantine").status_code == 404


# --- who may ----------------------------------------------------------------------------------------------

def test_another_tenants_admin_can_neither_see_nor_decide_the_quarantine(app, receiver):
    t, other = _tenant(app), _tenant(app)
    _send(receiver, _message(STRANGER, t.address, subject="Secret-subject-A", files={"a.pdf": samples.pdf(4111)}))
    [mail] = _mails(app, t.id)
    client = app.test_client()
    login(client, other.admin)
    assert client.get(f"/t/{t.slug}/mail-in/quarantine").status_code == 404
    assert "Secret-subject-A" not in client.get(f"/t/{other.slug}/mail-in/quarantine").get_data(as_text=True)
    page = f"/t/{other.slug}/mail-in/quarantine"
    for action in ("release", "drop"):
        assert _post(client, f"/t/{other.slug}/mail-in/quarantine/{mail.id}/{action}", page).status_code == 404
    assert [m.state for m in _mails(app, t.id)] == ["held"]
    token = issue_token(app, other.admin, SimpleNamespace(id=other.id, slug=other.slug), "write")
    r = app.test_client().post(f"/api/v1/tenants/{other.slug}/mail-in/quarantine/{mail.id}/release",
                               headers=bearer(token))
    assert r.status_code == 404


def test_only_the_client_admin_decides_on_held_mail(app, receiver):
    t = _tenant(app)
    _send(receiver, _message(STRANGER, t.address, files={"a.pdf": samples.pdf(4112)}))
    [mail] = _mails(app, t.id)
    with app.app_context():
        staff = make_person(Role.STAFF)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, db.session.get(Tenant, t.id), db.session.get(User, staff.id))
        db.session.commit()
    for person in (staff, t.member):
        client = app.test_client()
        login(client, person)
        assert client.get(f"/t/{t.slug}/mail-in/quarantine").status_code == 403
        r = _post(client, f"/t/{t.slug}/mail-in/quarantine/{mail.id}/release", f"/t/{t.slug}/documents")
        assert r.status_code == 403
    assert [m.state for m in _mails(app, t.id)] == ["held"]
    page = client.get(f"/t/{t.slug}/documents").get_data(as_text=True)  # the member
    assert t.address in page and f"Mail from your own address ({t.member.email})" in page
    assert 'data-testid="mail-in-rotate"' not in page and 'data-testid="mail-in-senders"' not in page
    assert 'data-testid="mail-in-quarantine-link"' not in page


def test_the_address_is_found_only_by_whoever_presents_it(app, db_urls):
    """Row-level security: with no tenant bound, only the presented address's row reads, and nothing writes."""
    t = _tenant(app)
    digest = addresses.local_hash(t.address.split("@")[0]).hex()
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            assert conn.execute(text("select count(*) from intake_mail_addresses")).scalar() == 0
            conn.execute(text("select set_config('app.intake_address', :h, true)"), {"h": digest})
            assert conn.execute(text("select tenant_id from intake_mail_addresses")).scalars().all() == [t.id]
            assert conn.execute(text("update intake_mail_addresses set retired_at = now()")).rowcount == 0
            assert conn.execute(text("delete from intake_mail_addresses")).rowcount == 0
    finally:
        engine.dispose()
    with app.app_context():
        assert addresses.resolve(t.address.upper()) == t.id
        assert addresses.resolve(f"<{t.address}>") == t.id


def test_the_address_page_before_an_address_exists_says_what_to_do(app):
    with app.app_context():
        tenant = make_tenant()
        admin, member = make_person(Role.CLIENT_ADMIN, tenant), make_person(Role.CLIENT_MEMBER, tenant)
        slug = tenant.slug
    client = app.test_client()
    login(client, member)
    assert "Your administrator can make one on this page" in client.get(f"/t/{slug}/documents").get_data(as_text=True)
    client = app.test_client()
    login(client, admin)
    page = client.get(f"/t/{slug}/documents").get_data(as_text=True)
    assert 'data-testid="mail-in-create"' in page
    assert _post(client, f"/t/{slug}/mail-in/address", f"/t/{slug}/documents").status_code == 303
    assert f"Documents can now be mailed to {slug}." in client.get(f"/t/{slug}/documents").get_data(as_text=True)


# --- the API ----------------------------------------------------------------------------------------------

def test_the_api_shows_the_address_keeps_senders_and_decides_the_quarantine(app, receiver):
    t = _tenant(app)
    ref = SimpleNamespace(id=t.id, slug=t.slug)
    admin = bearer(issue_token(app, t.admin, ref, "write"))
    member = bearer(issue_token(app, t.member, ref, "write"))
    api, client = f"/api/v1/tenants/{t.slug}/mail-in", app.test_client()
    assert client.get(f"{api}/address", headers=member).get_json() == {"address": t.address}
    assert client.get(f"{api}/quarantine", headers=member).status_code == 403
    assert client.post(f"{api}/senders", json={"email": "x@y.test"}, headers=member).status_code == 403
    added = client.post(f"{api}/senders", json={"email": "Books@Accountant.test"}, headers=admin)
    assert added.status_code == 201 and added.get_json()["email"] == "books@accountant.test"
    assert client.post(f"{api}/senders", json={"email": "books@accountant.test"}, headers=admin).status_code == 422
    listed = client.get(f"{api}/senders", headers=admin).get_json()["items"]
    assert {(s["email"], s["kind"]) for s in listed} >= {(t.member.email, "user"), ("books@accountant.test", "added")}
    _send(receiver, _message(STRANGER, t.address, files={"a.pdf": samples.pdf(4113), "b.pdf": samples.pdf(4114)}))
    [held] = client.get(f"{api}/quarantine", headers=admin).get_json()["items"]
    assert (held["sender"], held["reason"], [a["name"] for a in held["attachments"]]) == (
        STRANGER, "unknown_sender", ["a.pdf", "b.pdf"])
    released = client.post(f"{api}/quarantine/{held['id']}/release", headers=admin).get_json()
    assert released["state"] == "released" and {a["status"] for a in released["attachments"]} == {"stored"}
    assert client.get(f"{api}/quarantine", headers=admin).get_json() == {"items": []}
    assert client.delete(f"{api}/senders/{added.get_json()['id']}", headers=admin).status_code == 204
    assert client.delete(f"{api}/senders/{uuid.uuid4()}", headers=admin).status_code == 404
    rotated = client.post(f"{api}/address/rotate", headers=admin)
    assert rotated.status_code == 201 and rotated.get_json()["address"] != t.address
    spec = client.get("/api/v1/openapi.json").get_json()
    base = "/api/v1/tenants/{tenant_slug}/mail-in"
    assert {f"{base}/address", f"{base}/quarantine/{{mail_id}}/release", f"{base}/senders/{{sender_id}}"} <= set(
        spec["paths"])


def test_a_message_that_is_one_file_and_an_html_body_are_read():
    msg = EmailMessage()
    msg["From"], msg["Message-ID"] = "A <a@b.test>", "<1@b.test>"
    msg.set_content("<p>Xin ch&agrave;o</p><script>x()</script><p>Hai</p>", subtype="html")
    parsed = parse(msg.as_bytes())
    assert parsed.sender == "a@b.test" and parsed.body.split() == ["Xin", "chào", "Hai"]
    assert parsed.attachments == []
    only = EmailMessage()
    only["From"] = "a@b.test"
    only.set_content(samples.pdf(1), maintype="application", subtype="pdf", filename="scan.pdf")
    [attachment] = parse(only.as_bytes()).attachments
    assert attachment.name == "scan.pdf" and attachment.payload == samples.pdf(1)
    assert IntakeMailAddress.__tablename__ == "intake_mail_addresses"
