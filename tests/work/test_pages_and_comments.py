"""Work through the pages and the API: internal notes never reach the client; my work; take next."""

from __future__ import annotations

import re

from tests.api.util import bearer, issue_token
from tests.factories import csrf_token, login

SECRET_NOTE = "internal: the director double-booked the rent"


def _open_task(client, world, **fields) -> str:
    url = f"/t/{world.a.slug}/tasks"
    data = {"csrf_token": csrf_token(client, url), "title": "Register two new employees for social insurance",
            "line": "admin", "priority": "2", "due": "2031-05-01", **fields}
    r = client.post(url, data=data)
    assert r.status_code == 302, r.data[:300]
    return r.headers["Location"]


def test_internal_notes_never_reach_a_client_page_or_api(app, world):
    staff = app.test_client()
    login(staff, world["manager"])
    task_url = _open_task(staff, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/comment", data={"csrf_token": token, "body": SECRET_NOTE, "internal": "1"})
    staff.post(task_url + "/comment", data={"csrf_token": token, "body": "We have started on it."})
    assert SECRET_NOTE in staff.get(task_url).get_data(as_text=True)

    for key in ("a_client_admin", "a_client_approver", "a_client_member"):
        client = app.test_client()
        login(client, world[key])
        page = client.get(task_url).get_data(as_text=True)
        assert "We have started on it." in page and SECRET_NOTE not in page
        assert "Received" in page  # plain-language state for clients
        listing = client.get(f"/t/{world.a.slug}/tasks").get_data(as_text=True)
        assert SECRET_NOTE not in listing
        raw = issue_token(app, world[key], world.a, "write")
        task_id = task_url.rsplit("/", 1)[1]
        answer = client.get(f"/api/v1/tenants/{world.a.slug}/tasks/{task_id}", headers=bearer(raw))
        assert answer.status_code == 200 and SECRET_NOTE not in answer.get_data(as_text=True)
        assert [c["internal"] for c in answer.json["comments"]] == [False]
        # A client cannot write an internal note either.
        r = client.post(f"/api/v1/tenants/{world.a.slug}/tasks/{task_id}/comments", headers=bearer(raw),
                        json={"body": "hidden?", "internal": True})
        assert r.status_code == 403


def test_staff_take_the_next_task_from_my_work_and_see_it_listed(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    task_url = _open_task(manager, world, title="Key in March receipts", line="data_entry")
    staff = app.test_client()
    login(staff, world["staff"])
    page = staff.get("/provider/work").get_data(as_text=True)
    token = csrf_token(staff, "/provider/work")
    r = staff.post("/provider/work/take", data={"csrf_token": token, "line": "data_entry"})
    assert r.status_code == 302
    taken = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "is yours now" in taken and "In progress" in taken
    page = staff.get("/provider/work?line=data_entry").get_data(as_text=True)
    assert "Key in March receipts" in page and world.a.name in page
    assert task_url.endswith(r.headers["Location"].rsplit("/", 1)[1]) or "Key in March receipts" in taken
    # The unassigned staff member has no client: nothing to take, and an empty state that says what to do.
    other = app.test_client()
    login(other, world["unassigned_staff"])
    r = other.post("/provider/work/take", data={"csrf_token": csrf_token(other, "/provider/work")})
    assert "queue is empty" in other.get(r.headers["Location"]).get_data(as_text=True)


def test_a_question_to_the_client_and_the_answer_through_the_pages(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    task_url = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    staff = app.test_client()
    login(staff, world["staff"])
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/move", data={"csrf_token": token, "move": "start"})
    staff.post(task_url + "/move", data={"csrf_token": token, "move": "ask_client",
                                         "reason": "What are the new employees' ID numbers?"})
    member = app.test_client()
    login(member, world["a_client_member"])
    page = member.get(task_url).get_data(as_text=True)
    assert "Waiting for you" in page and "ID numbers" in page
    assert re.search(r'data-move="answer"', page)
    r = member.post(task_url + "/move", data={"csrf_token": csrf_token(member, task_url), "move": "answer",
                                              "reason": "Sent by e-mail to your manager"})
    assert r.status_code == 302
    assert "We are working on it" in member.get(task_url).get_data(as_text=True)
