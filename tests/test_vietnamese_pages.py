"""Vietnamese everywhere: every page a person of each role opens, and the forms they get refused, read in
Vietnamese show neither an English validation message nor a raw key of the code.

What fails here, and why:

* **English validation messages**: WTForms' own ("This field is required.", the length messages) and those
  the portal's forms give. Flask-WTF would show WTForms' in English on a Vietnamese page;
  ``portal.i18n.FormMessages`` takes them from the portal's catalogue. A message the catalogue has no
  Vietnamese for yet shows here too, by its English text: translate it (``make messages``).
* **Raw keys**: a ``snake_case`` word (a timeline kind like ``document_linked``, a state, a role, a
  category) or an audit action (``task.moved``) shown as it is written in the code, instead of its words;
  and a ``%(name)s`` left in a sentence.

A failure lists each offending string with the page it is on.
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import wtforms
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.work.models import TaskEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import PASSWORD, World, csrf_token, login, make_person, make_tenant, make_world
from tests.pages import visible_text
from tests.work.test_timeline import event_kinds

ROOT = Path(__file__).resolve().parents[1]
SIGNED_IN = ("a_client_admin", "a_client_approver", "a_client_member", "provider_admin", "manager", "staff")
# Not pages: files, feeds and machine answers (checked by their own tests).
NOT_PAGES = (".csv", ".json", ".png", ".pem", "/download", "/healthz")


# --- what must not show ---------------------------------------------------------------------------------

def _pattern(message: str) -> re.Pattern[str]:
    """A message as it shows, its placeholders filled in with anything."""
    parts = re.split(r"%\(\w+\)[sd]|%s", message)
    return re.compile(r".{1,80}?".join(re.escape(part) for part in parts))


def _wtforms_messages() -> set[str]:
    """Every message WTForms can show (its own catalogue template), and Flask-WTF's CSRF refusals."""
    with (Path(wtforms.__file__).parent / "locale" / "wtforms.pot").open("rb") as fh:
        messages = {text for m in read_po(fh) if m.id for text in (m.id if isinstance(m.id, tuple) else (m.id,))}
    import flask_wtf.csrf

    csrf = Path(flask_wtf.csrf.__file__).read_text(encoding="utf-8")
    return messages | set(re.findall(r'ValidationError\("([^"]+)"\)', csrf))


def _portal_form_messages() -> set[str]:
    """The messages the portal's forms give themselves: ``message=`` of a validator, a ``ValidationError``'s
    or a field's ``ValueError``'s text, in ``portal/**/forms.py``."""
    messages: set[str] = set()

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            return node.args[0].value if isinstance(node.args[0].value, str) else None
        return None

    for path in (ROOT / "portal").rglob("forms.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            found = [text(k.value) for k in node.keywords if k.arg == "message"]
            if name in ("ValidationError", "ValueError") and node.args:
                found.append(text(node.args[0]))
            messages.update(m for m in found if m)
    return messages


def _audit_actions() -> set[str]:
    """Every audit action the code records with a constant key (``record("task.moved", ...)``)."""
    actions: set[str] = set()
    for folder in ("portal", "tenants", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "record"
                        and isinstance(node.args[0].value, str)
                        and re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", node.args[0].value)):
                    actions.add(node.args[0].value)
    return actions


ENGLISH = sorted(_wtforms_messages() | _portal_form_messages())
ENGLISH_PATTERNS = [(message, _pattern(message)) for message in ENGLISH]
SNAKE = re.compile(r"(?<![\w@./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w@/-])")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
IDENTIFIER_EXAMPLE = re.compile(r'(<input\b(?=[^>]*\spattern=)[^>]*?)\splaceholder="[^"]*"')


def test_the_vocabulary_is_found_in_the_code():
    """The lists this test reads are really there (a moved file would make it check nothing)."""
    assert {"This field is required.", "Not a valid date value.", "Field cannot be longer than %(max)d characters.",
            "The passwords differ.", "The CSRF token is missing."} <= set(ENGLISH)
    assert {"task.moved", "task.review_taken", "user.invited"} <= _audit_actions()
    assert {"document_linked", "product_attached", "review_taken"} <= event_kinds()


def offences(html: str, known_words: tuple[str, ...] = ()) -> list[str]:
    """What a Vietnamese page must not show; ``known_words`` (the test people's names and e-mail
    addresses, made from their role's key) are left out."""
    text = visible_text(html)
    # An identifier shown as one is meant: in <code> (a short name, a service line's key, a header to send),
    # or as the example in a field that takes one (an input with a ``pattern``: "tax_advisory").
    words = visible_text(IDENTIFIER_EXAMPLE.sub(r"\1", re.sub(r"<code\b[^>]*>.*?</code>", " ", html, flags=re.S)))
    for word in sorted(known_words, key=len, reverse=True):
        text, words = text.replace(word, " "), words.replace(word, " ")
    found = [f"English: {message!r}" for message, pattern in ENGLISH_PATTERNS if pattern.search(text)]
    found += [f"key: {key!r}" for key in dict.fromkeys(SNAKE.findall(words))]
    found += [f"audit key: {action!r}" for action in sorted(AUDIT_ACTIONS)
              if re.search(rf"(?<![\w.]){re.escape(action)}(?![\w])", text)]
    found += [f"placeholder: {p!r}" for p in dict.fromkeys(PLACEHOLDER.findall(text))]
    return found


AUDIT_ACTIONS = _audit_actions()


def test_the_check_finds_what_it_is_for():
    """An English required message, a raw timeline kind and an audit key on a page are each found; the same
    page in words is clean."""
    bad = ('<main><small class="error">This field is required.</small><li>Lan: document_linked</li>'
           "<td>task.moved</td><p>Field cannot be longer than 200 characters.</p><p>Hạn %(date)s</p></main>")
    assert offences(bad) == ["English: 'Field cannot be longer than %(max)d characters.'",
                             "English: 'This field is required.'", "key: 'document_linked'",
                             "audit key: 'task.moved'", "placeholder: '%(date)s'"]
    good = ('<main><small class="error">Trường này là bắt buộc.</small><li>Lan: đã đính kèm “hoá đơn.pdf”</li>'
            '<td>Asia/Ho_Chi_Minh</td><p>client_member-1a2b@example.test</p><td><code>data_entry</code></td>'
            '<input name="key" pattern="[a-z_]+" placeholder="tax_advisory"></main>')
    assert offences(good, ("client_member-1a2b@example.test",)) == []


# --- the pages --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vworld(app: Flask) -> Iterator[World]:
    """Tenant A with something on every page: a document, a request, a task whose timeline has a line of
    every kind the code writes."""
    with app.app_context():
        world = make_world()
        tenant = db.session.get(Tenant, world.a.id)
        admin = db.session.get(User, world["provider_admin"].id)
        staff = db.session.get(User, world["staff"].id)
        from portal.documents import requests, services
        from portal.work import services as work

        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            target = services.upload_target(admin, category="invoice")
            document = services.upload(admin, tenant, [samples.pdf(8080)], filename="hoa-don-thang-3.pdf",
                                       target=target).document
            request = requests.create_request(admin, tenant, title="Sao kê ngân hàng tháng 3",
                                              items=[requests.ItemInput("Sao kê Vietcombank")], note=None)
            task = work.create_task(admin, tenant, title="Bảng lương tháng 3", service_line_key="payroll")
            world.ids = {"tenant_slug": world.a.slug, "slug": world.a.slug, "document_id": str(document.id),
                         "request_id": str(request.id), "task_id": str(task.id), "line_key": "payroll"}
            work.assign(admin, tenant, str(task.id), assignee_id=str(staff.id), reviewer_id=str(admin.id))
        with bound(Scope(user_id=staff.id, tenant_ids=frozenset({tenant.id}), role=Role.STAFF)):
            work.move(staff, tenant, str(task.id), "start")
            work.link_document(staff, str(task.id), str(document.id))
            work.comment(staff, str(task.id), "Thiếu bảng chấm công", internal=True)
            work.move(staff, tenant, str(task.id), "ask_client", reason="Xin gửi bảng chấm công tháng 3.")
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            # A line of every kind, the ones no flow above writes too (their data as the code writes it).
            data = {"assigned": {"assignee": "Trần Minh Quân", "reviewer": None}, "released": {"person": "Lê Thu"},
                    "document_linked": {"document_id": str(document.id)},
                    "product_attached": {"document": str(uuid.uuid4())}}
            for kind in sorted(event_kinds()):
                db.session.add(TaskEvent(tenant_id=tenant.id, task_id=task.id, actor_label="system", kind=kind,
                                         from_state="in_progress", to_state="waiting_on_client",
                                         data=data.get(kind, {})))
            db.session.commit()
    return world


def _in_vietnamese(client: FlaskClient, page: str = "/account/") -> None:
    r = client.post("/language", data={"lang": "vi", "csrf_token": csrf_token(client, page)})
    assert r.status_code == 302


@pytest.fixture(scope="module")
def readers(app: Flask, vworld: World) -> dict[str, FlaskClient]:
    """A browser per role, signed in, reading the portal in Vietnamese."""
    out = {}
    for key in SIGNED_IN:
        client = app.test_client()
        login(client, vworld[key])
        _in_vietnamese(client)
        out[key] = client
    return out


def _known_words(world: World) -> tuple[str, ...]:
    return tuple(word for person in world.people.values() for word in (person.email, person.email.split("@")[0]))


def _page_urls(app: Flask, world: World) -> list[str]:
    """Every page (GET, HTML) of the portal whose parameters this world can fill."""
    urls = []
    for rule in app.url_map.iter_rules():
        if ("GET" not in rule.methods or rule.rule.startswith(("/api", "/static")) or rule.rule.endswith(NOT_PAGES)
                or rule.endpoint == "static" or not set(rule.arguments) <= world.ids.keys()):
            continue
        urls.append(rule.build({name: world.ids[name] for name in rule.arguments}, append_unknown=False)[1])
    return sorted(set(urls))


def _check(response, where: str, known: tuple[str, ...], problems: list[str]) -> bool:
    """Add what is wrong with ``response`` (if it is a Vietnamese page) to ``problems``; whether it was one."""
    if response.mimetype != "text/html" or response.status_code >= 500:
        assert response.status_code < 500, f"{where}: {response.status_code}"
        return False
    html = response.get_data(as_text=True)
    # A whole page says its language; a part of one loaded into it (no <html>) takes the page's.
    assert '<html lang="vi">' in html or "<html" not in html, f"{where} is not in Vietnamese"
    problems.extend(f"{where}: {problem}" for problem in offences(html, known))
    return True


@pytest.mark.parametrize("key", SIGNED_IN)
def test_every_page_of_each_role_is_all_vietnamese(app, vworld, readers, key):
    client, known, problems, read = readers[key], _known_words(vworld), [], []
    for url in _page_urls(app, vworld):
        r = client.get(url)
        if r.status_code == 200 and _check(r, f"{key} GET {url}", known, problems):
            read.append(url)
    slug = vworld.a.slug
    wanted = {f"/t/{slug}/tasks/{vworld.ids['task_id']}", f"/t/{slug}/tasks", "/account/"}
    wanted |= {"/provider/audit", "/provider/tenants", "/provider/queues"} if key == "provider_admin" else set()
    wanted |= {f"/t/{slug}/access-log", f"/t/{slug}/users"} if key == "a_client_admin" else set()
    assert wanted <= set(read), f"pages not read: {wanted - set(read)}"
    assert not problems, "on Vietnamese pages:\n" + "\n".join(problems)


def _refused_forms(world: World, invite: str, reset: str) -> list[tuple[str | None, str, str, dict]]:
    """(who, the page of the form, where it is posted, what is typed): forms refused with errors of every kind."""
    slug = world.a.slug
    tasks = f"/t/{slug}/tasks"
    return [
        (None, "/auth/login", "/auth/login", {"email": "", "password": ""}),
        (None, "/auth/reset", "/auth/reset", {"email": ""}),
        (None, f"/auth/invite/{invite}", f"/auth/invite/{invite}",
         {"name": "x" * 201, "password": "short", "confirm": "other"}),
        (None, f"/auth/reset/{reset}", f"/auth/reset/{reset}", {"password": "short", "confirm": ""}),
        ("a_client_member", tasks, f"{tasks}/request", {"title": "   ", "description": "Hai người mới"}),
        ("manager", tasks, tasks, {"title": "x" * 201, "line": "nope", "priority": "9", "due": "31/05/2031"}),
        ("manager", tasks, f"{tasks}/recurring", {"title": "", "line": "payroll", "kind": "weekday", "number": "40",
                                                 "weekday": "9", "lead_days": "x"}),
        ("a_client_admin", "/account/", "/account/password", {"current": "", "password": "short", "confirm": "x"}),
        ("a_client_admin", "/account/", "/account/password",
         {"current": PASSWORD, "password": "aaaaaaaaaaaaaaaa", "confirm": "aaaaaaaaaaaaaaaa"}),
        ("a_client_admin", f"/t/{slug}/users", f"/t/{slug}/users/invite", {"email": "", "role": "owner"}),
        ("a_client_member", f"/t/{slug}/tokens", f"/t/{slug}/tokens", {"name": "", "scope": "all"}),
        ("manager", f"/t/{slug}/requests", f"/t/{slug}/requests", {"title": ""}),
        ("manager", f"/t/{slug}/documents/{world.ids['document_id']}",
         f"/t/{slug}/documents/{world.ids['document_id']}/refile", {"title": "", "category": "nope"}),
        ("provider_admin", "/provider/tenants", "/provider/tenants", {"slug": "Test-Co", "currency": "XXX"}),
        ("provider_admin", "/provider/staff", "/provider/staff", {"email": "", "role": "boss"}),
    ]


def test_refused_forms_speak_vietnamese(app, vworld, readers):
    with app.app_context():
        invited = db.session.get(User, make_person(Role.CLIENT_MEMBER, db.session.get(Tenant, vworld.a.id)).id)
        from portal.auth.services import issue_link

        invite = issue_link(invited, "invite", timedelta(days=1))
        reset = issue_link(invited, "reset", timedelta(hours=1))
        db.session.commit()
    known, problems = _known_words(vworld), []
    anonymous = app.test_client()
    _in_vietnamese(anonymous, "/auth/login")
    for who, page, url, data in _refused_forms(vworld, invite, reset):
        client = readers[who] if who else anonymous
        r = client.post(url, data={"csrf_token": csrf_token(client, page), **data}, follow_redirects=True)
        where = f"{who or 'anonymous'} POST {url.replace(invite, '<invite>').replace(reset, '<reset>')}"
        assert r.status_code in (200, 400, 409, 422), f"{where}: {r.status_code}"
        assert _check(r, where, known, problems), f"{where}: not a page"
        # A refusal shows what was wrong: each of these forms has at least one error next to a field.
        assert 'class="error"' in r.get_data(as_text=True), f"{where}: no error shown"
    assert not problems, "on Vietnamese pages:\n" + "\n".join(problems)


def _vietnamese_of(english: str) -> str:
    with (ROOT / "portal/translations/vi/LC_MESSAGES/messages.po").open("rb") as fh:
        message = read_po(fh).get(english)
    assert message is not None and message.string, f"no Vietnamese for {english!r} yet: translate it (make messages)"
    return message.string


def test_a_password_reset_email_is_in_the_language_of_the_person(app, client, smtp, run_jobs):
    with app.app_context():
        person = make_person(Role.CLIENT_MEMBER, make_tenant())
        db.session.get(User, person.id).locale = "vi"
        db.session.commit()
    r = client.post("/auth/reset", data={"email": person.email, "csrf_token": csrf_token(client, "/auth/reset")})
    assert r.status_code == 302
    run_jobs()
    [mail] = smtp.to(person.email)
    assert mail["Subject"] == _vietnamese_of("Reset your password")
    body = mail.get_content()
    assert _vietnamese_of("If it was not you, ignore this e-mail; your password has not changed.") in body
    assert "/auth/reset/" in body
