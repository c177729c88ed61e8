"""The platform audit log (cursor pagination) and the e-mail outbox."""

from __future__ import annotations

import re
from datetime import timedelta

from portal.extensions import db
from portal.mail import send
from tenants import audit
from tenants.models import utcnow
from tests.factories import unique


def _seqs(body: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', body)]


def test_audit_log_pages_newest_first_by_seq(ctx, world, browser):
    marker = unique("marker")
    for i in range(55):
        audit.record("test.event", audit.SYSTEM, ip="192.0.2.7", object_type="probe", object_id=i,
                     data={"name": marker})  # named in the sentence of the row
    db.session.commit()
    admin = browser(world["provider_admin"])

    first = admin.get("/provider/audit")
    body = first.get_data(as_text=True)
    seqs = _seqs(body)
    assert first.status_code == 200 and len(seqs) == 50
    assert seqs == sorted(seqs, reverse=True)
    assert "auth.signin" in body and world["provider_admin"].email in body  # the admin's own sign-in
    assert "test.event" in body and "192.0.2.7" in body and marker in body

    older = re.search(r'href="/provider/audit\?before=(\d+)"', body)
    assert older and int(older.group(1)) == seqs[-1]
    second = admin.get(f"/provider/audit?before={older.group(1)}").get_data(as_text=True)
    more = _seqs(second)
    assert more and max(more) < seqs[-1] and len(more) <= 50
    assert 'href="/provider/audit"' in second  # back to the newest

    assert _seqs(admin.get("/provider/audit?before=1").get_data(as_text=True)) == []
    assert len(_seqs(admin.get("/provider/audit?before=junk").get_data(as_text=True))) == 50


def test_outbox_says_smtp_is_used_when_configured(world, browser):
    page = browser(world["provider_admin"]).get("/provider/outbox")
    assert page.status_code == 200
    assert "delivered through the configured SMTP server" in page.get_data(as_text=True)


def test_outbox_lists_mail_written_to_the_folder(app, ctx, world, browser, run_jobs, tmp_path):
    admin = browser(world["provider_admin"])
    saved = app.config["SMTP_URL"], app.config["MAIL_OUTBOX_DIR"]
    app.config.update(SMTP_URL=None, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    try:
        empty = admin.get("/provider/outbox").get_data(as_text=True)
        assert "No e-mails yet." in empty
        first = send("first@example.test", "First message", "Hello <first> & body")
        # The outbox file name carries the time to the second; make "first" clearly older.
        first.created_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        run_jobs()
        send("second@example.test", "Second message", "Line one\nLine two")
        db.session.commit()
        run_jobs()
        page = admin.get("/provider/outbox")
    finally:
        app.config.update(SMTP_URL=saved[0], MAIL_OUTBOX_DIR=saved[1])
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert body.index("Second message") < body.index("First message")  # newest first
    assert "second@example.test" in body and "<pre>Line one\nLine two" in body
    assert "Hello &lt;first&gt; &amp; body" in body  # escaped, never rendered as HTML
