"""Payslips e-mailed to employees as a link, against real PostgreSQL, rq and the loopback SMTP server.

The rules the expectations come from (issue 15 and DESIGN.md): only when the client switched it on, and only once
the run is paid; one e-mail per employee who has an e-mail address and a national id number, with whose payslip of
which month from which company, the link and its expiry, and never an amount; the link opens the PDF only with the
employee's own national id number, five wrong numbers lock it, and an unknown, expired, replaced or locked link
answers like one that never existed; a token never opens another tenant's payslip; sending again revokes the old
link; every opening is in the client's access log, the number never.

The amounts that must not be in a mail are worked out by hand in tests/payroll/test_runs.py (E01: gross 30,000,000,
net and paid 26,592,500; E02: gross 60,000,000, net 52,423,700), never read from the run.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from email.message import EmailMessage
from types import SimpleNamespace

from sqlalchemy import create_engine, select, text, update

from portal.extensions import db
from portal.payroll import links, runs
from portal.payroll.link_models import PayslipLink
from portal.payroll.models import Employee
from portal.payroll.run_models import Payslip
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import utcnow
from tests.factories import csrf_token, login, unique
from tests.payroll.test_runs import (
    E01,
    E02,
    NOVEMBER,
    add_employee,
    approve,
    as_person,
    attend,
    calculate,
    payroll_world,
)

LINK = re.compile(r"http://localhost(/payslip/[A-Za-z0-9_-]+)")
# National id numbers (12 digits); E02's is E01's with the last two digits swapped: a near miss.
ID_E01, ID_E02, ID_E04 = "079203001234", "079203001243", "001099004321"
# Every amount of E01's and E02's payslips as a mail could write it: 30,000,000 / 30.000.000 / 30000000 / 30 000 000.
AMOUNTS = [a for t in (E01, E02) for a in t.values()]


def _forms(amount: int) -> set[str]:
    plain = f"{amount:,}"
    return {plain, plain.replace(",", "."), plain.replace(",", ""), plain.replace(",", " "),
            plain.replace(",", "\u00a0")}


def paid_run(app, run_jobs, *, email: bool = True, language: str = "en", name: str | None = None,  # noqa: ANN001
             e01_id: str = ID_E01) -> SimpleNamespace:
    """A tenant whose November run is calculated, reviewed, approved by the client and marked paid, its PDFs
    rendered and its mails delivered, with four employees: E01 and E02 with an e-mail address and a national id
    number, E03 with an e-mail address only, E04 with a national id number only."""
    world = payroll_world(app)
    world.mail = {code: f"{unique(code.lower())}@example.test" for code in ("E01", "E02", "E03")}
    with app.app_context():
        if name:
            with as_person(world, world.admin) as (_user, tenant):
                tenant.name = name
                db.session.commit()
        add_employee(world, "E01", 30_000_000, dependants=1, email=world.mail["E01"], national_id=e01_id)
        add_employee(world, "E02", 60_000_000, dependants=2, email=world.mail["E02"], national_id=ID_E02)
        add_employee(world, "E03", 20_000_000, email=world.mail["E03"])
        add_employee(world, "E04", 20_000_000, national_id=ID_E04)
        for code in ("E01", "E02", "E03", "E04"):
            attend(world, code, NOVEMBER, 22, 22)
        with as_person(world, world.client) as (client, tenant):
            runs.save_settings(client, tenant, bank_layout="generic", payslip_language=language,
                               email_payslips=email)
        calculate(world, NOVEMBER)
    run_jobs()  # the PDFs
    with app.app_context():
        assert approve(world, NOVEMBER) == "approved"
        with as_person(world, world.staff) as (staff, tenant):
            runs.mark_paid(staff, tenant, NOVEMBER)
            world.slips = {p.employee_code: p.id for p in runs.get_run(NOVEMBER).payslips}
            world.run_id = runs.get_run(NOVEMBER).id
            world.name = tenant.name
    run_jobs()  # the mails
    return world


def mails(smtp, address: str) -> list[EmailMessage]:
    return smtp.to(address)


def link_of(message: EmailMessage) -> str:
    return LINK.search(message.get_content()).group(1)


def link_rows(app, world) -> list[PayslipLink]:  # noqa: ANN001
    with app.app_context(), as_person(world, world.staff):
        rows = list(db.session.scalars(select(PayslipLink).order_by(PayslipLink.created_at)))
        db.session.expunge_all()
        return rows


def events(app, world, action: str) -> list[AuditEvent]:  # noqa: ANN001
    with app.app_context(), as_person(world, world.staff):
        found = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.seq)))
        for event in found:
            _ = event.details  # opened while the tenant is bound
        db.session.expunge_all()
        return found


def post_id(client, path: str, national_id: str):  # noqa: ANN001, ANN201
    return client.post(path, data={"national_id": national_id, "csrf_token": csrf_token(client, path)})


def main_of(html: str) -> str:
    """The page's own content (the header carries a CSRF token that differs per session)."""
    return html[html.index("<main>"):html.index("</main>")]


def pdf_text(data: bytes) -> str:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    return " ".join(" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf)))


# --- sending -----------------------------------------------------------------------------------------------------

def test_switched_off_no_employee_is_mailed(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs, email=False)
    assert [mails(smtp, a) for a in world.mail.values()] == [[], [], []]
    assert link_rows(app, world) == []
    login(client, world.staff)
    page = client.get(f"/t/{world.slug}/payroll/runs/2026-11").get_data(as_text=True)
    assert 'data-testid="mailing-off"' in page and "not e-mailed to employees" in page
    assert 'data-testid="send-link-E01"' not in page  # nothing to send while it is off
    url = f"/t/{world.slug}/payroll/runs/2026-11/payslips/{world.slips['E01']}/send-link"
    assert client.post(url, data={"csrf_token": csrf_token(client, "/account/")}).status_code == 409
    # Switched on after the run was paid: nothing goes by itself; staff send the links they choose.
    with app.app_context(), as_person(world, world.client) as (admin, tenant):
        runs.save_settings(admin, tenant, bank_layout="generic", payslip_language="en", email_payslips=True)
    page = client.get(f"/t/{world.slug}/payroll/runs/2026-11").get_data(as_text=True)
    assert 'data-code="E01" data-state="not_sent"' in page and 'data-testid="send-link-E01"' in page
    assert 'data-testid="send-link-E04"' not in page  # no address: nothing to send to
    assert client.post(url, data={"csrf_token": csrf_token(client, "/account/")}).status_code == 303
    run_jobs()
    assert len(mails(smtp, world.mail["E01"])) == 1 and mails(smtp, world.mail["E02"]) == []


def test_on_one_mail_per_employee_with_an_address_and_a_national_id_and_never_an_amount(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs, name=f"Công ty May Sài Gòn {unique('x')}")
    [e01], [e02] = mails(smtp, world.mail["E01"]), mails(smtp, world.mail["E02"])
    assert mails(smtp, world.mail["E03"]) == []  # no national id number to confirm with
    for message, name in ((e01, "Nguyễn Văn E01"), (e02, "Nguyễn Văn E02")):
        body, subject = message.get_content(), message["Subject"]
        assert world.name in subject and "11/2026" in subject
        assert name in body and world.name in body and "11/2026" in body
        assert len(LINK.findall(body)) == 1  # English only: one part, one link
        expiry = re.search(r"works until (.+?)\. After 5 wrong numbers", body)
        assert expiry, body
        for amount in AMOUNTS:
            assert not any(f in body or f in subject for f in _forms(amount)), f"{amount} is in the mail"
        assert not re.search(r"₫|VND|\bdong\b|đồng", body)
    assert link_of(e01) != link_of(e02)
    rows = link_rows(app, world)
    assert sorted((r.reason, r.payslip_id) for r in rows) == sorted(("paid", world.slips[c]) for c in ("E01", "E02"))
    token = link_of(e01).rsplit("/", 1)[1]
    assert token not in str([(r.token_hash, r.id) for r in rows])  # only its hash is kept
    assert hashlib.sha256(token.encode()).digest() in {r.token_hash for r in rows}
    for row in rows:  # 30 days
        assert timedelta(days=30) - timedelta(minutes=5) < row.expires_at - row.created_at <= timedelta(days=30)
    [sent] = events(app, world, "payroll.payslips_emailed")
    assert sent.details["count"] == 2
    # The run's page says who was not e-mailed, and why.
    login(client, world.staff)
    page = client.get(f"/t/{world.slug}/payroll/runs/2026-11").get_data(as_text=True)
    assert "2 of 4 employees were e-mailed a link to their payslip" in page
    not_emailed = page[page.index('data-testid="not-emailed"'):]
    not_emailed = not_emailed[:not_emailed.index("</div>")]
    assert "E03 Nguyễn Văn E03: no national id number to confirm with" in not_emailed
    assert "E04 Nguyễn Văn E04: no e-mail address" in not_emailed
    assert "E01" not in not_emailed and "E02" not in not_emailed
    assert re.search(r'data-code="E01" data-state="sent"', page)


def test_both_languages_make_one_mail_with_both_parts(app, run_jobs, smtp):
    world = paid_run(app, run_jobs, language="both")
    [message] = mails(smtp, world.mail["E01"])
    body = message.get_content()
    assert body.count("— — —") == 1 and len(LINK.findall(body)) == 2 and len(set(LINK.findall(body))) == 1
    assert message["Subject"].count("11/2026") == 2


def test_marking_paid_twice_or_the_job_running_twice_mails_once(app, run_jobs, smtp):
    world = paid_run(app, run_jobs)
    with app.app_context():
        with as_person(world, world.staff) as (staff, tenant):
            assert runs.mark_paid(staff, tenant, NOVEMBER).state == "paid"  # a double click
        with as_person(world, world.staff):
            assert links.send_batch(str(world.run_id), "") == 0  # the job once more, by hand
            db.session.commit()
        with as_person(world, world.staff) as (_staff, tenant):
            from workers import enqueue

            enqueue("payroll.payslip_links", world.run_id, "", tenant_id=tenant.id)
            db.session.commit()
    run_jobs()
    assert len(mails(smtp, world.mail["E01"])) == 1 and len(mails(smtp, world.mail["E02"])) == 1
    assert len(link_rows(app, world)) == 2


def test_a_large_run_is_mailed_by_jobs_in_batches_each_employee_once(app, run_jobs, smtp, monkeypatch):
    monkeypatch.setattr(links, "INLINE", 0)  # every run is "large": mailed by jobs
    monkeypatch.setattr(links, "BATCH", 1)  # one payslip a job: four jobs, and a fifth that finds none
    world = paid_run(app, run_jobs)
    assert len(mails(smtp, world.mail["E01"])) == 1 and len(mails(smtp, world.mail["E02"])) == 1
    assert mails(smtp, world.mail["E03"]) == []
    assert sorted(r.payslip_id for r in link_rows(app, world)) == sorted([world.slips["E01"], world.slips["E02"]])
    assert sum(e.details["count"] for e in events(app, world, "payroll.payslips_emailed")) == 2


# --- the employee's page ------------------------------------------------------------------------------------

def test_the_link_opens_the_pdf_only_with_the_employees_own_national_id(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs)
    path = link_of(mails(smtp, world.mail["E01"])[0])
    form = client.get(path)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    page = form.get_data(as_text=True)
    assert world.name in page and "11/2026" in page and 'name="national_id"' in page
    # No CSRF token: refused before anything is counted.
    assert client.post(path, data={"national_id": ID_E01}).status_code == 400
    # Another employee's number (E02's, a near miss) does not open it, and says how many tries are left.
    wrong = post_id(client, path, ID_E02)
    assert wrong.status_code == 422 and "4 tries are left" in wrong.get_data(as_text=True)
    assert ID_E02 not in wrong.get_data(as_text=True)  # what was typed is not written back
    assert post_id(client, path, "").status_code == 422  # nothing typed: asked again, not counted
    # Typed with spaces and dashes, as it is printed on the card: opens.
    opened = post_id(client, path, "079 203-001 234")
    assert opened.status_code == 200, opened.get_data(as_text=True)[:500]
    assert opened.mimetype == "application/pdf" and opened.data.startswith(b"%PDF")
    assert opened.headers["Content-Disposition"].startswith("attachment")
    assert "no-store" in opened.headers["Cache-Control"] and opened.headers["X-Content-Type-Options"] == "nosniff"
    text = pdf_text(opened.data)
    assert "Nguyễn Văn E01" in text and "Nguyễn Văn E02" not in text
    [row] = [r for r in link_rows(app, world) if r.payslip_id == world.slips["E01"]]
    assert row.opened_at is not None and row.failed_attempts == 1 and row.locked_at is None
    assert post_id(client, path, ID_E01).status_code == 200  # it opens again within its 30 days
    # In the client's access log, with who and what, and never the number.
    opened_events = events(app, world, "payroll.payslip_opened")
    assert [e.details["code"] for e in opened_events] == ["E01", "E01"]
    assert [e.details["first"] for e in opened_events] == [True, False]
    assert opened_events[0].who == "Nguyễn Văn E01 (E01)" and opened_events[0].actor_side == "client"
    with app.app_context(), as_person(world, world.staff):
        every = list(db.session.scalars(select(AuditEvent)))
        for event in every:
            assert ID_E01 not in repr((event.who, event.address, event.details, event.data)), event.action
            assert ID_E02 not in repr((event.who, event.address, event.details, event.data)), event.action
    admin = app.test_client()
    login(admin, world.client)
    log = admin.get(f"/t/{world.slug}/access-log").get_data(as_text=True)
    assert "opened their payslip from the e-mailed link" in log and "Nguyễn Văn E01 (E01)" in log
    assert "e-mailed employees the links to their payslips" in log


def test_five_wrong_numbers_lock_the_link_and_say_whom_to_ask(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs)
    path = link_of(mails(smtp, world.mail["E01"])[0])
    for left in (4, 3, 2, 1):
        r = post_id(client, path, f"0000000000{left:02d}")
        assert r.status_code == 422
        assert (f"{left} tries are left" if left > 1 else "1 try is left") in r.get_data(as_text=True)
    locked = post_id(client, path, ID_E02)
    assert locked.status_code == 403
    page = locked.get_data(as_text=True)
    assert "This link is locked" in page and f"Ask {world.name}, your employer" in page
    # From now on even the right number gets the neutral answer, the same as a token that never existed.
    after = post_id(client, path, ID_E01)
    unknown = client.get("/payslip/" + "A" * 43)
    assert after.status_code == client.get(path).status_code == unknown.status_code == 404
    assert main_of(client.get(path).get_data(as_text=True)) == main_of(unknown.get_data(as_text=True))
    assert after.mimetype == "text/html"
    [row] = [r for r in link_rows(app, world) if r.payslip_id == world.slips["E01"]]
    assert row.locked_at is not None and row.failed_attempts == 5 and row.opened_at is None
    [event] = events(app, world, "payroll.payslip_link_locked")
    assert event.details["code"] == "E01" and event.actor_side == "system"
    assert events(app, world, "payroll.payslip_opened") == []
    staff = app.test_client()
    login(staff, world.staff)
    page = staff.get(f"/t/{world.slug}/payroll/runs/2026-11").get_data(as_text=True)
    assert 'data-code="E01" data-state="locked"' in page


def test_unknown_expired_and_replaced_links_answer_alike(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs)
    e01, e02 = (link_of(mails(smtp, world.mail[c])[0]) for c in ("E01", "E02"))
    with app.app_context(), as_person(world, world.staff):
        db.session.execute(update(PayslipLink).where(PayslipLink.payslip_id == world.slips["E01"])
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    expired_get, expired_post = client.get(e01), post_id(client, e01, ID_E01)
    assert expired_post.mimetype == "text/html"
    unknown_get, unknown_post = client.get("/payslip/nope"), post_id(client, "/payslip/" + "x" * 43, ID_E01)
    too_long = client.get("/payslip/" + "y" * 500)
    answers = [expired_get, expired_post, unknown_get, unknown_post, too_long]
    assert {r.status_code for r in answers} == {404}
    assert len({main_of(r.get_data(as_text=True)) for r in answers}) == 1
    assert "This link does not work" in expired_get.get_data(as_text=True)
    assert events(app, world, "payroll.payslip_opened") == []
    assert client.get(e02).status_code == 200  # the other employee's link still works


def test_the_page_says_the_pdf_is_being_prepared_while_it_is_not_rendered(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs)
    path = link_of(mails(smtp, world.mail["E01"])[0])
    with app.app_context(), as_person(world, world.staff):
        db.session.execute(update(Payslip).where(Payslip.id == world.slips["E01"]).values(pdf_version=None))
        db.session.commit()
    r = post_id(client, path, ID_E01)
    # Retry-After: a minute (the rate limiter's headers may round it down to the second before).
    assert r.status_code == 503 and 55 <= int(r.headers["Retry-After"]) <= 60
    assert "being prepared. Try again in a minute" in r.get_data(as_text=True)
    [row] = [r for r in link_rows(app, world) if r.payslip_id == world.slips["E01"]]
    assert row.opened_at is None and row.failed_attempts == 0
    assert events(app, world, "payroll.payslip_opened") == []


# --- across tenants ---------------------------------------------------------------------------------------------

def test_a_token_never_opens_another_tenants_payslip(app, run_jobs, smtp, client):
    """Two clients whose first employees share a code (E01) and a national id number."""
    alpha = paid_run(app, run_jobs, name=f"Alpha {unique('a')}")
    beta = paid_run(app, run_jobs, name=f"Beta {unique('b')}")
    beta_link = link_of(mails(smtp, beta.mail["E01"])[0])
    opened = post_id(client, beta_link, ID_E01)
    assert opened.status_code == 200
    with app.app_context(), as_person(beta, beta.staff):
        beta_doc = db.session.get(Payslip, beta.slips["E01"]).document_id
    with app.app_context(), as_person(alpha, alpha.staff):
        alpha_doc = db.session.get(Payslip, alpha.slips["E01"]).document_id
    assert beta_doc != alpha_doc
    assert beta.name in pdf_text(opened.data) and alpha.name not in pdf_text(opened.data)
    assert len(events(app, beta, "payroll.payslip_opened")) == 1 and events(app, alpha, "payroll.payslip_opened") == []

    # A link row planted in Beta that points at Alpha's payslip (as if written by a bug): its token opens nothing.
    planted = "planted-" + unique("t")
    with app.app_context(), bound(Scope(tenant_ids=frozenset({beta.id}))):
        db.session.add(PayslipLink(tenant_id=beta.id, payslip_id=alpha.slips["E04"], reason="resent",
                                   token_hash=hashlib.sha256(planted.encode()).digest(),
                                   expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    assert client.get(f"/payslip/{planted}").status_code == 404
    refused = post_id(client, f"/payslip/{planted}", ID_E04)
    assert refused.status_code == 404 and not refused.data.startswith(b"%PDF")
    assert events(app, alpha, "payroll.payslip_opened") == []


def test_a_presented_link_is_readable_but_not_writable_without_its_tenant_bound(app, run_jobs, smtp):
    world = paid_run(app, run_jobs)
    token = link_of(mails(smtp, world.mail["E01"])[0]).rsplit("/", 1)[1]
    digest = hashlib.sha256(token.encode()).hexdigest()
    engine = create_engine(app.config["DATABASE_URL"], pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:  # nothing presented, no tenant: nothing
            assert conn.execute(text("select count(*) from payroll_payslip_links")).scalar() == 0
        with engine.begin() as conn:  # the token's hash presented: that one row, read only
            conn.execute(text("select set_config('app.payslip_link', :h, true)"), {"h": digest})
            assert conn.execute(text("select tenant_id from payroll_payslip_links")).scalars().all() == [world.id]
            assert conn.execute(text("update payroll_payslip_links set failed_attempts = 0, locked_at = null, "
                                     "expires_at = now() + interval '1 year'")).rowcount == 0
            assert conn.execute(text("delete from payroll_payslip_links")).rowcount == 0
            # Presenting it reads no payslip: those stay behind the tenant's binding.
            assert conn.execute(text("select count(*) from payroll_payslips")).scalar() == 0
    finally:
        engine.dispose()


# --- sending again ------------------------------------------------------------------------------------------------

def _older(app, world, code: str) -> None:  # noqa: ANN001
    """Let the minute that refuses a second send pass: the link already sent is made older."""
    with app.app_context(), as_person(world, world.staff):
        db.session.execute(update(PayslipLink).where(PayslipLink.payslip_id == world.slips[code])
                           .values(created_at=PayslipLink.created_at - timedelta(minutes=2)))
        db.session.commit()


def test_staff_send_a_link_again_which_revokes_the_old_one(app, run_jobs, smtp, client):
    world = paid_run(app, run_jobs)
    old = link_of(mails(smtp, world.mail["E01"])[0])
    url = f"/t/{world.slug}/payroll/runs/2026-11/payslips/{world.slips['E01']}/send-link"
    login(client, world.staff)
    token = csrf_token(client, f"/t/{world.slug}/payroll/runs/2026-11")
    # Right after the first e-mail: a double click, nothing is sent.
    soon = client.post(url, data={"csrf_token": token})
    assert soon.status_code == 409 and "less than a minute ago" in soon.get_data(as_text=True)
    # E01's address was wrong: corrected, then the link is sent again, to the new address.
    new_address = f"{unique('e01-new')}@example.test"
    with app.app_context(), as_person(world, world.staff):
        db.session.scalar(select(Employee).where(Employee.code == "E01")).email = new_address
        db.session.commit()
    _older(app, world, "E01")
    sent = client.post(url, data={"csrf_token": token})
    assert sent.status_code == 303
    run_jobs()
    [message] = mails(smtp, new_address)
    new = link_of(message)
    assert new != old and len(mails(smtp, world.mail["E01"])) == 1
    stranger = app.test_client()
    assert stranger.get(old).status_code == 404 and post_id(stranger, old, ID_E01).status_code == 404
    assert stranger.get(new).status_code == 200 and post_id(stranger, new, ID_E01).status_code == 200
    rows = [r for r in link_rows(app, world) if r.payslip_id == world.slips["E01"]]
    assert [(r.reason, r.revoked_at is not None) for r in rows] == [("paid", True), ("resent", False)]
    [event] = events(app, world, "payroll.payslip_link_resent")
    assert event.details["code"] == "E01" and event.details["replaced"] is True
    assert event.who == world.staff.email
    # One who cannot be e-mailed is refused with the reason, and nothing is sent.
    no_address = client.post(f"/t/{world.slug}/payroll/runs/2026-11/payslips/{world.slips['E04']}/send-link",
                             data={"csrf_token": token})
    assert no_address.status_code == 422 and "no e-mail address" in no_address.get_data(as_text=True)
    assert len(link_rows(app, world)) == 3


def test_sending_again_is_the_provider_staffs_and_only_for_their_own_tenants_payslips(app, run_jobs, smtp, client):
    world, other = paid_run(app, run_jobs), paid_run(app, run_jobs)
    _older(app, world, "E01")
    admin = app.test_client()
    login(admin, world.client)  # the client's admin reads the run but does not send links
    url = f"/t/{world.slug}/payroll/runs/2026-11/payslips/{world.slips['E01']}/send-link"
    assert admin.post(url, data={"csrf_token": csrf_token(admin, "/account/")}).status_code == 403
    login(client, world.staff)
    token = csrf_token(client, "/account/")
    # The other tenant's payslip id under this tenant's address, and this tenant's under the other's: 404.
    assert client.post(f"/t/{world.slug}/payroll/runs/2026-11/payslips/{other.slips['E01']}/send-link",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/t/{other.slug}/payroll/runs/2026-11/payslips/{world.slips['E01']}/send-link",
                       data={"csrf_token": token}).status_code == 404
    run_jobs()
    assert len(mails(smtp, world.mail["E01"])) == 1 and len(mails(smtp, other.mail["E01"])) == 1
    assert events(app, world, "payroll.payslip_link_resent") == []
    assert events(app, other, "payroll.payslip_link_resent") == []


