"""The provider adds and renames service lines; the new line works everywhere a line does."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.work.models import ServiceLine
from tenants.audit import PlatformAuditEvent
from tests.api.util import bearer, issue_token
from tests.factories import csrf_token, login

PAGE = "/provider/service-lines"


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


def _events(app, action: str) -> list:
    with app.app_context():
        return list(db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == action)))


def test_an_admin_adds_a_line_and_it_works_like_the_others(app, world):
    admin = _signed_in(app, world["provider_admin"])
    r = admin.post(PAGE, data={"csrf_token": csrf_token(admin, PAGE), "key": " Tax_Advisory ",
                               "name": "  Tax   advisory ", "needs_approval": "1"})
    assert r.status_code == 302
    page = admin.get(PAGE).get_data(as_text=True)
    assert "Service line “Tax advisory” added" in page and 'data-line="tax_advisory"' in page
    with app.app_context():
        line = db.session.scalar(select(ServiceLine).where(ServiceLine.key == "tax_advisory"))
        assert (line.name, line.needs_approval) == ("Tax advisory", True)
    created = [e for e in _events(app, "service_line.created") if e.data.get("key") == "tax_advisory"]
    assert len(created) == 1 and created[0].actor_id == world["provider_admin"].id

    # A manager opens a task in it; it waits in the new line's team queue and inherits the approval rule.
    manager = _signed_in(app, world["manager"])
    url = f"/t/{world.a.slug}/tasks"
    r = manager.post(url, data={"csrf_token": csrf_token(manager, url), "title": "Review 2026 CIT finalisation",
                                "line": "tax_advisory", "priority": "2"})
    assert r.status_code == 302
    staff = _signed_in(app, world["staff"])
    queue = staff.get("/provider/queues/tax_advisory").get_data(as_text=True)
    assert "Review 2026 CIT finalisation" in queue and "Queue: Tax advisory" in queue
    assert 'value="tax_advisory"' in staff.get("/provider/work").get_data(as_text=True)  # in the filters
    raw = issue_token(app, world["a_client_admin"], world.a, "read")
    listed = app.test_client().get("/api/v1/service-lines", headers=bearer(raw))
    assert listed.status_code == 200
    assert {"key": "tax_advisory", "name": "Tax advisory", "needs_approval": True} in listed.json["items"]


def test_bad_input_is_refused_with_what_to_fix_and_what_was_typed_is_kept(app, world):
    admin = _signed_in(app, world["provider_admin"])
    token = csrf_token(admin, PAGE)
    r = admin.post(PAGE, data={"csrf_token": token, "key": "tax advisory!", "name": "Thuế"})
    body = r.get_data(as_text=True)
    assert r.status_code == 422 and "lower-case letters, digits or underscores" in body
    assert 'value="tax advisory!"' in body and 'value="Thuế"' in body  # nothing typed is lost
    r = admin.post(PAGE, data={"csrf_token": token, "key": "nameless_line", "name": "   "})
    assert r.status_code == 422 and "1 to 100 characters" in r.get_data(as_text=True)
    r = admin.post(PAGE, data={"csrf_token": token, "key": "payroll", "name": "Payroll again"})
    assert r.status_code == 409 and "exists already" in r.get_data(as_text=True)
    with app.app_context():
        keys = set(db.session.scalars(select(ServiceLine.key)))
    assert not {"tax advisory!", "nameless_line"} & keys
    with app.app_context():
        assert db.session.scalar(select(ServiceLine.name).where(ServiceLine.key == "payroll")) == "Payroll"


def test_renaming_a_line_is_audited_and_an_unknown_line_is_not_found(app, world):
    admin = _signed_in(app, world["provider_admin"])
    token = csrf_token(admin, PAGE)
    r = admin.post(f"{PAGE}/data_entry", data={"csrf_token": token, "name": "Nhập liệu", "needs_approval": "1"})
    assert r.status_code == 302 and "Service line “Nhập liệu” saved." in admin.get(PAGE).get_data(as_text=True)
    changed = _events(app, "service_line.changed")[-1]
    assert changed.data["before"] == {"name": "Data entry", "needs_approval": False}
    assert changed.data["after"] == {"name": "Nhập liệu", "needs_approval": True}
    assert admin.post(f"{PAGE}/no_such_line", data={"csrf_token": token, "name": "x"}).status_code == 404
    r = admin.post(f"{PAGE}/admin", data={"csrf_token": token, "name": ""})
    assert r.status_code == 422
    with app.app_context():  # put it back for the other tests of this database
        line = db.session.scalar(select(ServiceLine).where(ServiceLine.key == "data_entry"))
        line.name, line.needs_approval = "Data entry", False
        db.session.commit()


def test_only_provider_admins_manage_lines(app, world):
    for key in ("manager", "staff", "a_client_admin"):
        client = _signed_in(app, world[key])
        assert client.get(PAGE).status_code in (403, 404), key
        token = csrf_token(client, "/account/")
        r = client.post(PAGE, data={"csrf_token": token, "key": "sneaky", "name": "Sneaky"})
        assert r.status_code in (403, 404), key
        r = client.post(f"{PAGE}/payroll", data={"csrf_token": token, "name": "Renamed"})
        assert r.status_code in (403, 404), key
    with app.app_context():
        assert db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == "sneaky")) is None
        assert db.session.scalar(select(ServiceLine.name).where(ServiceLine.key == "payroll")) == "Payroll"
