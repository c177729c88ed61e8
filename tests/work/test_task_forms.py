"""The tasks page's forms: a refused submission comes back as typed, every error next to its field; the
language switch on that page leads back to a page that answers GET."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.i18n import language_return
from portal.work.models import Task
from tenants.context import Scope, bound
from tests.documents import samples
from tests.factories import csrf_token, login
from tests.pages import fields, visible_text


def _task_count(app, tenant) -> int:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        return db.session.scalar(select(func.count()).select_from(Task))


def _upload(client, slug: str, name: str) -> str:
    url = f"/t/{slug}/documents"
    r = client.post(url + "/upload", headers={"Accept": "application/json"},
                    data={"csrf_token": csrf_token(client, url), "category": "other",
                          "file": [(io.BytesIO(samples.pdf(4242)), name)]})
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


def test_a_clients_request_of_only_spaces_comes_back_as_typed_with_the_error_at_the_title(app, world):
    member = app.test_client()
    login(member, world["a_client_member"])
    contract = _upload(member, world.a.slug, "labour contract Lan.pdf")
    tasks = f"/t/{world.a.slug}/tasks"
    before = _task_count(app, world.a)
    r = member.post(tasks + "/request", data={"csrf_token": csrf_token(member, tasks), "title": "   ",
                                              "description": "Two hires start on 1 April", "documents": [contract]})
    assert r.status_code == 422
    form = fields(r.get_data(as_text=True))
    assert form["ask-title"].errors == ["This field is required."]
    assert form["ask-title"].value == "   " and form["ask-title"].attrs["aria-invalid"] == "true"
    assert form["ask-description"].value == "Two hires start on 1 April" and form["ask-description"].errors == []
    assert form["ask-documents"].values == [contract]
    assert _task_count(app, world.a) == before


def test_the_title_fields_refuse_only_spaces_in_the_browser_too(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    member = app.test_client()
    login(member, world["a_client_member"])
    tasks = f"/t/{world.a.slug}/tasks"
    for client, field_id in ((member, "ask-title"), (manager, "task-title")):
        title = fields(client.get(tasks).get_data(as_text=True))[field_id]
        assert "required" in title.attrs and re.fullmatch(title.attrs["pattern"], "   ") is None
        assert re.fullmatch(title.attrs["pattern"], " Payroll for March ")


def test_a_refused_new_task_keeps_every_field_and_shows_each_error_at_its_field(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    staff = str(world["staff"].id)
    r = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "x" * 201,
                                  "description": "Bring the March bank statements", "line": "payroll",
                                  "priority": "2", "due": "31/05/2031", "assignee": staff, "reviewer": ""})
    assert r.status_code == 422
    form = fields(r.get_data(as_text=True))
    assert form["task-title"].value == "x" * 201
    assert form["task-title"].errors == ["Field cannot be longer than 200 characters."]
    assert form["task-due"].value == "31/05/2031" and form["task-due"].errors == ["Not a valid date value."]
    assert form["task-description"].value == "Bring the March bank statements"
    assert form["task-line"].values == ["payroll"] and form["task-priority"].values == ["2"]
    assert form["task-assignee"].values == [staff] and form["task-reviewer"].values == [""]
    assert all(not form[f].errors for f in ("task-description", "task-line", "task-priority", "task-assignee"))


def test_a_refusal_of_the_service_is_shown_above_the_form_with_the_fields_kept(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    staff = str(world["staff"].id)
    r = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "VAT return Q1",
                                  "description": "Due with the tax office on 30 April", "line": "bookkeeping",
                                  "priority": "3", "due": "2031-04-20", "assignee": staff, "reviewer": staff})
    assert r.status_code == 409  # the service's status for a conflict (four eyes)
    html = r.get_data(as_text=True)
    form_html = html[html.index('data-testid="task-form"'):]
    assert re.search(r'<p class="error" role="alert">The reviewer must be someone other than the person doing the '
                     r'work\.</p>', form_html)
    form = fields(html)
    assert form["task-title"].value == "VAT return Q1" and form["task-due"].value == "2031-04-20"
    assert form["task-description"].value == "Due with the tax office on 30 April"
    assert form["task-assignee"].values == [staff] and form["task-reviewer"].values == [staff]


def test_a_good_new_task_still_opens(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    r = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "  Payroll for March  ",
                                  "line": "payroll", "priority": "1", "due": "2031-04-05"})
    assert r.status_code == 302
    page = visible_text(manager.get(r.headers["Location"]).get_data(as_text=True))
    assert "Payroll for March" in page and "Urgent" in page


def _language_next(html: str) -> str:
    return re.search(r'<input type="hidden" name="next" value="([^"]*)"', html).group(1)


def test_switching_the_language_after_a_refused_form_returns_to_the_page_of_the_form(app, world):
    member = app.test_client()
    login(member, world["a_client_member"])
    tasks = f"/t/{world.a.slug}/tasks"
    token = csrf_token(member, tasks)
    # As a browser sends it: no referrer (the portal's Referrer-Policy is no-referrer).
    refused = member.post(tasks + "/request", data={"csrf_token": token, "title": " "})
    assert refused.status_code == 422
    back = _language_next(refused.get_data(as_text=True))
    assert back == tasks
    r = member.post("/language", data={"csrf_token": token, "lang": "vi", "next": back})
    assert r.status_code == 302 and r.headers["Location"] == back
    page = member.get(back)
    assert page.status_code == 200 and '<html lang="vi">' in page.get_data(as_text=True)


def test_after_any_post_the_language_switch_leads_to_a_page_that_answers_get(app, world):
    """The page a form was posted from: its own URL when that answers GET, else the nearest one up its path."""
    member = app.test_client()
    login(member, world["a_client_member"])
    tasks, slug = f"/t/{world.a.slug}/tasks", world.a.slug
    for posted, page in ((f"{tasks}/request", tasks), (tasks, tasks), ("/provider/tenants", "/provider/tenants"),
                         (f"/t/{slug}/tasks/0c6f5d43-3f1e-4bb8-9a51-7d1fbc1c3f8e/move",
                          f"/t/{slug}/tasks/0c6f5d43-3f1e-4bb8-9a51-7d1fbc1c3f8e"),
                         ("/account/password", "/account/"), ("/auth/mfa/renew/confirm", "/auth/mfa/renew"),
                         ("/auth/logout", "/"), ("/nowhere/at/all", "/")):
        with app.test_request_context(posted, method="POST", headers={"Referer": "https://elsewhere.example/x"}):
            assert language_return() == page, posted  # (a referrer, even another site's, plays no part)
    for page in (tasks, "/account/"):
        assert member.get(page).status_code == 200, page


def test_a_page_read_with_get_still_returns_to_itself(app, world):
    member = app.test_client()
    login(member, world["a_client_member"])
    tasks = f"/t/{world.a.slug}/tasks"
    assert _language_next(member.get(tasks + "?x=1").get_data(as_text=True)) == f"{tasks}?x=1"


def test_refused_recurring_work_comes_back_as_typed_with_each_error_at_its_field(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    r = manager.post(tasks + "/recurring", data={"csrf_token": csrf_token(manager, tasks), "title": "  ",
                                                 "line": "payroll", "kind": "weekday", "number": "40",
                                                 "weekday": "3", "lead_days": "a week"})
    assert r.status_code == 422
    form = fields(r.get_data(as_text=True))
    assert form["recurring-title"].errors == ["This field is required."]
    assert form["recurring-number"].value == "40"
    assert form["recurring-number"].errors == ["Number must be between 1 and 31."]
    assert form["recurring-lead-days"].value == "a week"
    assert form["recurring-lead-days"].errors == ["Not a valid integer value."]
    assert form["recurring-line"].values == ["payroll"] and form["recurring-kind"].values == ["weekday"]
    assert form["recurring-weekday"].values == ["3"] and not form["recurring-weekday"].errors

    r = manager.post(tasks + "/recurring", data={"csrf_token": csrf_token(manager, tasks), "title": "Payroll",
                                                 "line": "payroll", "kind": "weekday", "number": "2",
                                                 "weekday": "3", "lead_days": "5"})
    assert r.status_code == 302
    page = visible_text(manager.get(r.headers["Location"]).get_data(as_text=True))
    assert "Recurring task “Payroll” added" in page
