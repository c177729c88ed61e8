"""A task's timeline in words: a sentence for every kind of event the code writes, in both languages;
what a client does not see (staffing, moves that look alike to them); the people a task can be given to."""

from __future__ import annotations

import ast
import io
import re
import uuid
from pathlib import Path

from portal.extensions import db
from portal.work.models import TaskEvent
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import csrf_token, login, make_person, make_tenant
from tests.pages import visible_text

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def event_kinds() -> set[str]:
    """Every kind of task event the code writes: ``add_event(task, actor, "<kind>")`` and ``TaskEvent(kind=…)``."""
    kinds: set[str] = set()
    for path in PORTAL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "add_event" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                kinds.add(node.args[2].value)
            if name == "TaskEvent":
                kinds.update(k.value.value for k in node.keywords
                             if k.arg == "kind" and isinstance(k.value, ast.Constant))
    return kinds


def test_the_kinds_are_found_in_the_code():
    assert {"created", "moved", "assigned", "taken", "released", "commented", "document_linked",
            "product_attached", "approval_invalidated"} <= event_kinds()


def _open_task(client, slug: str, **fields: str) -> str:
    url = f"/t/{slug}/tasks"
    r = client.post(url, data={"csrf_token": csrf_token(client, url), "title": "Social insurance for new hires",
                               "line": "admin", "priority": "3", **fields})
    assert r.status_code == 302, r.data[:300]
    return r.headers["Location"]


def _rows(html: str) -> dict[str, list[str]]:
    """The timeline's lines by kind, as text."""
    timeline = html[html.index('data-testid="timeline"'):]
    rows: dict[str, list[str]] = {}
    for kind, body in re.findall(r'<li data-kind="([^"]+)">(.*?)</li>', timeline, re.S):
        rows.setdefault(kind, []).append(visible_text(body))
    return rows


def _with_language(client, lang: str) -> None:
    client.post("/language", data={"lang": lang, "csrf_token": csrf_token(client, "/account/")})


def test_every_kind_of_event_reads_as_a_sentence_in_both_languages(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    _with_language(manager, "en")
    task_url = _open_task(manager, world.a.slug)
    docs = f"/t/{world.a.slug}/documents"
    r = manager.post(docs + "/upload", headers={"Accept": "application/json"},
                     data={"csrf_token": csrf_token(manager, docs), "category": "other",
                           "file": [(io.BytesIO(samples.pdf(5151)), "invoice-march.pdf")]})
    document_id = r.json["results"][0]["url"].rsplit("/", 1)[1]
    assert manager.post(task_url + "/documents", data={"csrf_token": csrf_token(manager, task_url),
                                                       "document": document_id}).status_code == 302
    kinds = event_kinds()
    gone = str(uuid.uuid4())  # a document no longer on the task
    data = {"assigned": {"assignee": "Trần Minh Quân", "reviewer": None}, "released": {"person": "Lê Thu"},
            "document_linked": {"document_id": gone}, "product_attached": {"document": gone}}
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        task_id = uuid.UUID(task_url.rsplit("/", 1)[1])
        for kind in sorted(kinds):
            db.session.add(TaskEvent(tenant_id=world.a.id, task_id=task_id, actor_label="system", kind=kind,
                                     from_state="open", to_state="in_progress", data=data.get(kind, {})))
        db.session.commit()

    english = _rows(manager.get(task_url).get_data(as_text=True))
    _with_language(manager, "vi")
    vietnamese = _rows(manager.get(task_url).get_data(as_text=True))
    # A key never shows: in English the kinds with an underscore ("commented" is also its sentence), in
    # Vietnamese every one; and no kind falls back to the sentence for a kind the template does not know.
    for rows, fallback, shown in ((english, "changed the task", lambda kind: "_" in kind),
                                  (vietnamese, "đã thay đổi công việc", lambda kind: True)):
        assert kinds <= set(rows), f"kinds missing from the timeline: {kinds - set(rows)}"
        for kind, texts in rows.items():
            for text in texts:
                assert not (shown(kind) and kind in text) and not text.endswith(fallback), (kind, text)
    for kind in kinds:
        assert set(english[kind]).isdisjoint(vietnamese[kind]), (kind, english[kind], vietnamese[kind])
    assert any(t.endswith("attached “invoice-march.pdf”") for t in english["document_linked"])
    assert any(t.endswith("attached a document that is no longer on the task") for t in english["document_linked"])
    assert any(t.endswith("Assignee Trần Minh Quân, Reviewer not chosen") for t in english["assigned"])
    assert any(t.startswith(tuple("0123456789")) and "system:" in t for t in english["moved"])
    assert any("hệ thống:" in t for t in vietnamese["moved"])  # "system" is a word too


def test_a_client_sees_neither_staffing_nor_moves_that_look_alike_to_them(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id),
                          reviewer=str(world["manager"].id))
    token = csrf_token(manager, task_url)
    assert manager.post(task_url + "/assign", data={"csrf_token": token, "assignee": str(world["staff"].id),
                                                    "reviewer": str(world["provider_admin"].id)}).status_code == 302
    staff = app.test_client()
    login(staff, world["staff"])
    token = csrf_token(staff, task_url)
    for move in ("start", "submit"):
        assert staff.post(task_url + "/move", data={"csrf_token": token, "move": move}).status_code == 302

    staff_rows = _rows(staff.get(task_url).get_data(as_text=True))
    assert "assigned" in staff_rows
    assert [t.split(": ", 1)[1] for t in staff_rows["moved"]] == ["Open → In progress", "In progress → In review"]

    client = app.test_client()
    login(client, world["a_client_member"])
    html = client.get(task_url).get_data(as_text=True)
    rows = _rows(html)
    assert set(rows) == {"created", "moved"}
    assert [t.split(": ", 1)[1] for t in rows["moved"]] == ["Received → We are working on it"]
    assert "We are working on it → We are working on it" not in visible_text(html)


def test_each_person_is_offered_once_and_provider_admins_too(app, world):
    with app.app_context():
        admin = db.session.get(User, world["provider_admin"].id)
        other = make_tenant()
        assign(admin, db.session.get(Tenant, other.id), db.session.get(User, world["manager"].id))
        second_admin = make_person(Role.PROVIDER_ADMIN)
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    task_url = _open_task(manager, world.a.slug)
    offered = {}
    for url, select in ((tasks, "task-assignee"), (task_url, "assignee")):
        html = manager.get(url).get_data(as_text=True)
        options = re.search(rf'<select[^>]*(?:id|name)="{select}"[^>]*>(.*?)</select>', html, re.S).group(1)
        offered[url] = re.findall(r'<option[^>]*value="([^"]*)"', options)
    for values in offered.values():
        people = [v for v in values if v]
        assert len(people) == len(set(people)), people  # the manager, assigned to two clients, once
        assert {str(world["manager"].id), str(world["staff"].id), str(world["provider_admin"].id),
                str(second_admin.id)} <= set(people)
        assert str(world["unassigned_staff"].id) not in people
