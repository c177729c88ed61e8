"""A requested document answered "we don't have this / not applicable" with a reason: the item is resolved
(counted, never reminded), the provider reads the reason and can reopen it; an empty reason is refused next
to the field with what was typed kept."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.documents import requests
from portal.documents.models import RequestItem
from portal.documents.requests import send_reminders
from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.factories import csrf_token, login


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


@pytest.fixture
def staff(app, world):
    return _signed_in(app, world["staff"])


@pytest.fixture
def member(app, world):
    return _signed_in(app, world["a_client_member"])


def _ask(staff, world, *descriptions: str, due: str = "") -> tuple[str, dict[str, uuid.UUID]]:
    """Staff ask tenant A for documents; the request's page and its items' ids by description."""
    url = f"/t/{world.a.slug}/requests"
    data = {"csrf_token": csrf_token(staff, url), "title": "Year-end documents", "note": ""}
    for i, description in enumerate(descriptions):
        data.update({f"items-{i}-description": description, f"items-{i}-category": "other", f"items-{i}-due": due})
    r = staff.post(url, data=data)
    assert r.status_code == 302, r.data[:400]
    request_url = r.headers["Location"]
    request_id = uuid.UUID(request_url.rsplit("/", 1)[1])
    with in_tenant(staff.application, world.a):
        items = {i.description: i.id for i in db.session.scalars(select(RequestItem)
                                                                 .where(RequestItem.request_id == request_id))}
    return request_url, items


def _answer(client, request_url: str, item_id, reason: str, *, page: str | None = None):
    return client.post(f"{request_url}/items/{item_id}/not-applicable",
                       data={"csrf_token": csrf_token(client, page or request_url), f"na-{item_id}-reason": reason})


def _reopen(client, request_url: str, item_id):
    return client.post(f"{request_url}/items/{item_id}/reopen", data={"csrf_token": csrf_token(client, request_url)})


def _actions(app, world, action: str) -> list[dict]:
    with in_tenant(app, world.a):
        return [{"actor": row.actor_id, **row.details} for row in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))]


def test_an_item_answered_not_applicable_is_resolved_shown_with_its_reason_and_reopened_by_the_provider(
        app, world, staff, member, smtp, run_jobs):
    due = (date.today() + timedelta(days=2)).isoformat()
    request_url, items = _ask(staff, world, "Foreign currency account statements", "Fixed asset register", due=due)
    foreign = items["Foreign currency account statements"]
    assert "0 of 2 received" in member.get(request_url).get_data(as_text=True)

    r = _answer(member, request_url, foreign, "  We have no foreign currency account.  ")
    assert r.status_code == 302
    page = member.get(r.headers["Location"]).get_data(as_text=True)
    assert "is answered as not applicable" in page  # the flash
    assert "1 of 2 answered: 0 received, 1 not applicable" in page
    assert 'data-testid="not-applicable"' in page and "We have no foreign currency account." in page
    assert f'name="na-{foreign}-reason"' not in page  # answered: no form for it any more
    assert "Reopen: we still need it" not in page  # the client does not reopen

    # The provider reads the reason where it reads the request, and the item is no longer outstanding.
    page = staff.get(request_url).get_data(as_text=True)
    assert "We have no foreign currency account." in page and "Reopen: we still need it" in page
    outstanding = staff.get(f"/t/{world.a.slug}/requests").get_data(as_text=True)
    outstanding = outstanding.split('data-testid="outstanding"')[1].split("</section>")[0]
    assert "Fixed asset register" in outstanding and "Foreign currency account statements" not in outstanding
    assert "1 not applicable" in staff.get(f"/t/{world.a.slug}/requests").get_data(as_text=True)
    # Never reminded of: only the other item is.
    with app.app_context(), for_tenant(world.a.id):
        send_reminders(world.a.id)
        send_reminders(world.a.id, today=date.fromisoformat(due) + timedelta(days=1))  # overdue
        reminded = {i.description: (i.reminded_before_at is not None, i.reminded_after_at is not None)
                    for i in db.session.scalars(select(RequestItem).where(RequestItem.id.in_(items.values())))}
    assert reminded == {"Fixed asset register": (True, True), "Foreign currency account statements": (False, False)}
    [event] = _actions(app, world, "request.item_not_applicable")
    assert event["actor"] == world["a_client_member"].id
    assert event["reason"] == "We have no foreign currency account."

    r = _reopen(staff, request_url, foreign)
    assert r.status_code == 302
    page = member.get(request_url).get_data(as_text=True)
    assert "0 of 2 received" in page and f'name="na-{foreign}-reason"' in page
    with in_tenant(app, world.a):
        item = db.session.get(RequestItem, foreign)
        assert (item.not_applicable_at, item.not_applicable_reason) == (None, None)
    [event] = _actions(app, world, "request.item_reopened")
    assert event["actor"] == world["staff"].id
    assert event["not_applicable_reason"] == "We have no foreign currency account."


@pytest.mark.parametrize("reason", ["", "    "])
def test_an_empty_reason_is_refused_next_to_the_field(app, world, staff, member, reason):
    request_url, items = _ask(staff, world, "Loan agreements")
    item = items["Loan agreements"]
    r = _answer(member, request_url, item, reason)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert re.search(rf'<small class="error" id="na-{item}-reason-error-1">Say why you don(\'|&#39;)t have this '
                     r"document: your provider reads it.</small>", page), page
    assert re.search(r'<details class="not-applicable" open>', page)  # the form is open at the error
    assert "0 of 1 received" in page
    with in_tenant(app, world.a):
        assert db.session.get(RequestItem, item).not_applicable_at is None
    assert _actions(app, world, "request.item_not_applicable") == []


def test_a_reason_too_long_keeps_what_was_typed(app, world, staff, member):
    request_url, items = _ask(staff, world, "Loan agreements", "Lease contracts")
    item = items["Lease contracts"]
    typed = "Our office is owned, not leased; the deed is with the bank. " * 6  # 366 characters
    r = _answer(member, request_url, item, typed)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "at most 300 characters" in page and typed.strip() in page.replace("&#39;", "'")
    # Only the refused item's form is open; the other item's form is there, empty.
    assert page.count('<details class="not-applicable" open>') == 1
    assert f'name="na-{items["Loan agreements"]}-reason"' in page


def test_who_may_answer_and_reopen_and_across_tenants(app, world, staff, member):
    request_url, items = _ask(staff, world, "Customs declarations")
    item = items["Customs declarations"]
    assert _answer(staff, request_url, item, "staff cannot answer for the client").status_code == 403
    assert _answer(member, request_url, item, "We do not import anything.").status_code == 302
    assert _reopen(member, request_url, item).status_code == 403
    # Answered already: said so, not recorded twice.
    r = _answer(member, request_url, item, "Again")
    assert r.status_code == 409 and "was answered “not applicable” already" in r.get_data(as_text=True)
    assert len(_actions(app, world, "request.item_not_applicable")) == 1

    # B's request and item, through A's address: the same 404 as a missing one.
    manager = _signed_in(app, world["manager"])  # A's manager
    b_client = _signed_in(app, world["b_client_admin"])
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.b.id}))):
        b_req = requests.create_request(db.session.get(User, world["provider_admin"].id),
                                        db.session.get(Tenant, world.b.id), title="Beta",
                                        items=[requests.ItemInput("Beta payroll")], note=None)
        b_request_id, b_item = b_req.id, b_req.items[0].id
    a_url = f"/t/{world.a.slug}/requests/{b_request_id}"
    r = member.post(f"{a_url}/items/{b_item}/not-applicable",
                    data={"csrf_token": csrf_token(member, request_url), f"na-{b_item}-reason": "x"})
    assert r.status_code == 404
    r = manager.post(f"{a_url}/items/{b_item}/reopen", data={"csrf_token": csrf_token(manager, request_url)})
    assert r.status_code == 404
    # An item of another request of A, under this request's id: 404 too.
    other_url, other = _ask(staff, world, "Bank loan letters")
    r = member.post(f"{request_url}/items/{other['Bank loan letters']}/not-applicable",
                    data={"csrf_token": csrf_token(member, request_url),
                          f"na-{other['Bank loan letters']}-reason": "x"})
    assert r.status_code == 404
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.b.id}))):
        assert db.session.get(RequestItem, b_item).not_applicable_at is None
    assert "Beta payroll" in b_client.get(f"/t/{world.b.slug}/requests/{b_request_id}").get_data(as_text=True)


def test_not_applicable_and_reopen_through_the_api(app, client, world, staff):
    request_url, items = _ask(staff, world, "Dividend resolutions")
    request_id, item = request_url.rsplit("/", 1)[1], items["Dividend resolutions"]
    base = f"/api/v1/tenants/{world.a.slug}/document-requests/{request_id}/items/{item}"
    raw = issue_token(app, world["a_client_approver"], world.a, "write")
    body = problem(client.post(f"{base}/not-applicable", headers=bearer(raw), json={"reason": "  "}), 422)
    assert "Say why you don't have this document" in body["detail"]
    r = client.post(f"{base}/not-applicable", headers=bearer(raw), json={"reason": "No dividends this year."})
    assert r.status_code == 200, r.data
    [one] = r.json["items"]
    assert (one["state"], one["not_applicable_reason"]) == ("not_applicable", "No dividends this year.")
    problem(client.post(f"{base}/not-applicable", headers=bearer(raw), json={"reason": "again"}), 409)
    problem(client.post(f"{base}/reopen", headers=bearer(raw)), 403)  # the client does not reopen

    staff_token = issue_token(app, world["staff"], world.a, "write")
    r = client.post(f"{base}/reopen", headers=bearer(staff_token))
    assert r.status_code == 200 and r.json["items"][0]["state"] == "outstanding"
    problem(client.post(f"{base}/reopen", headers=bearer(staff_token)), 409)  # nothing to reopen now
    got = client.get(f"/api/v1/tenants/{world.a.slug}/document-requests/{request_id}", headers=bearer(raw)).json
    assert got["items"][0]["not_applicable_reason"] is None
