"""The "Ask us" form's list of documents to attach is loaded when it is opened, not on every view.

The tasks page reads no document (nor its versions) for that list; the list comes from its own small
endpoint (the page fetches it when the person opens it; without script a link asks for the page with
it); a refused request comes back with the list and the documents that were chosen. The endpoint shows a
person only what they may attach, and nothing to anyone outside the workspace.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from portal.extensions import db
from tests.documents import samples
from tests.factories import csrf_token, login


def _upload(client, slug: str, name: str, seed: int) -> str:
    token = csrf_token(client, f"/t/{slug}/documents")
    r = client.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                    content_type="multipart/form-data",
                    data={"csrf_token": token, "category": "invoice", "file": [(io.BytesIO(samples.pdf(seed)), name)]})
    assert r.status_code == 200 and r.json["results"][0]["status"] == "stored", r.data
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """The SQL statements the database receives meanwhile (the real engine's, not a stand-in)."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


@pytest.fixture
def member(app, world):
    client = app.test_client()
    login(client, world["a_client_member"])
    return client


@pytest.fixture
def uploaded(world, member) -> dict[str, str]:
    """Two documents of the member's: title -> id."""
    return {name: _upload(member, world.a.slug, name, seed) for name, seed in
            (("March payslips.pdf", 5101), ("Insurance form.pdf", 5102))}


def test_the_tasks_page_loads_no_document_for_the_attach_list(app, world, member, uploaded):
    with statements(app) as seen:
        r = member.get(f"/t/{world.a.slug}/tasks")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-testid="request-work"' in page
    assert not [s for s in seen if re.search(r"\bFROM (documents|document_versions)\b", s)], seen
    assert "March payslips.pdf" not in page
    attach = re.search(r'<details class="attach" data-attach-src="([^"]+)"[^>]*>', page)
    assert attach and " open" not in attach.group(0)
    assert attach.group(1) == f"/t/{world.a.slug}/tasks/attachable"
    # Without script, the list's link asks for the page with the documents in it.
    assert f'href="/t/{world.a.slug}/tasks?attach=1#ask"' in page


def test_opening_the_list_fetches_the_documents_without_their_versions(app, world, member, uploaded):
    with statements(app) as seen:
        r = member.get(f"/t/{world.a.slug}/tasks/attachable")
    fragment = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in fragment and "data-attach-loaded" in fragment
    options = dict((title, value) for value, title in re.findall(r'<option value="([^"]+)">([^<]+)</option>',
                                                                   fragment))
    assert options == {"March payslips.pdf": uploaded["March payslips.pdf"],
                       "Insurance form.pdf": uploaded["Insurance form.pdf"]}
    assert 'name="documents"' in fragment and "multiple" in fragment
    assert not [s for s in seen if re.search(r"\bFROM document_versions\b", s)], seen

    page = member.get(f"/t/{world.a.slug}/tasks?attach=1").get_data(as_text=True)  # the no-script way
    assert "March payslips.pdf" in page and re.search(r'<details class="attach"[^>]* open>', page)


def test_a_refused_request_keeps_the_documents_it_attached(app, world, member, uploaded):
    chosen = uploaded["Insurance form.pdf"]
    token = csrf_token(member, f"/t/{world.a.slug}/tasks")
    r = member.post(f"/t/{world.a.slug}/tasks/request",
                    data={"csrf_token": token, "title": "   ", "description": "for the new hire",
                          "documents": [chosen]})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and re.search(r'<details class="attach"[^>]* open>', page)
    assert f'<option selected value="{chosen}">Insurance form.pdf</option>' in page
    assert "March payslips.pdf" in page  # still offered, not chosen

    r = member.post(f"/t/{world.a.slug}/tasks/request", data={"csrf_token": token, "title": "Register her",
                                                               "documents": [chosen]})
    assert r.status_code == 302  # sent with its attachment
    assert "Insurance form.pdf" in member.get(r.headers["Location"]).get_data(as_text=True)


def test_the_list_holds_only_what_the_person_may_attach(app, world, uploaded):
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    _upload(admin, world.a.slug, "Board minutes.pdf", 5103)
    member = app.test_client()
    login(member, world["a_client_member"])
    fragment = member.get(f"/t/{world.a.slug}/tasks/attachable").get_data(as_text=True)
    assert "March payslips.pdf" in fragment and "Board minutes.pdf" not in fragment  # a member sees their own


@pytest.mark.parametrize("who", ["b_client_admin", "b_client_member", "unassigned_staff", "manager"])
def test_nobody_outside_the_workspace_or_without_the_form_gets_the_list(app, world, uploaded, who):
    """Tenant B's people, staff not assigned to A: refused. Provider people do not ask for work: refused."""
    client = app.test_client()
    login(client, world[who])
    r = client.get(f"/t/{world.a.slug}/tasks/attachable")
    assert r.status_code in (403, 404) and "March payslips.pdf" not in r.get_data(as_text=True)
