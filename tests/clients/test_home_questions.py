"""The client's home lists the questions waiting for them; the tokens page shows how to send a token."""

from __future__ import annotations

import re

from tests.factories import csrf_token, login
from tests.pages import visible_text


def _questions(html: str) -> str:
    match = re.search(r'<section class="card" data-testid="questions">(.*?)</section>', html, re.S)
    assert match, "no questions card"
    return match.group(1)


def test_the_clients_home_lists_the_questions_waiting_for_them(app, world):
    home = f"/t/{world.a.slug}/"
    member = app.test_client()
    login(member, world["a_client_member"])
    empty = visible_text(_questions(member.get(home).get_data(as_text=True)))
    assert "No questions for you right now." in empty

    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    task_url = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "Payroll for April",
                                         "line": "payroll", "assignee": str(world["staff"].id)}).headers["Location"]
    staff = app.test_client()
    login(staff, world["staff"])
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/move", data={"csrf_token": token, "move": "start"})
    assert staff.post(task_url + "/move", data={"csrf_token": token, "move": "ask_client",
                                                "reason": "Who joined in April?"}).status_code == 302

    for key in ("a_client_member", "a_client_approver", "a_client_admin"):
        client = app.test_client()
        login(client, world[key])
        card = _questions(client.get(home).get_data(as_text=True))
        assert f'href="{task_url}"' in card and "Payroll for April" in card
        assert "No questions for you right now." not in card
    # The provider's people have their own lists ("My work"): not this card.
    assert 'data-testid="questions"' not in manager.get(home).get_data(as_text=True)


def test_the_tokens_page_shows_the_header_to_send(app, world):
    member = app.test_client()
    login(member, world["a_client_member"])
    url = f"/t/{world.a.slug}/tokens"
    html = member.post(url, data={"csrf_token": csrf_token(member, url), "name": "export", "scope": "read"}
                       ).get_data(as_text=True)
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in html
    assert "Send it in the header Authorization: Bearer <token>" in visible_text(html)
