"""Input PostgreSQL cannot store (a NUL byte, an unpaired surrogate) is refused at the boundary: 400, never 500.

PostgreSQL refuses NUL in text and psycopg cannot encode a lone surrogate. The sweep walks the URL map
the way ``tests/isolation/test_matrix.py`` does and puts both into every path argument, into the query
string, into a form (pages that write, with a valid CSRF token) and into a JSON body (API routes, with a
bearer token), as a provider admin, as the tenant's client admin and anonymous. Path arguments get it one
at a time; the query string, the form and the JSON body get it in all their parameters at once (those the
pages read, those the OpenAPI document names, every WTForms field and every field a view reads itself).

A lone surrogate cannot survive percent-decoding (Werkzeug decodes bad UTF-8 with replacement
characters), so in addresses, query strings and forms it is sent as the bytes a client would send for
it (``%ED%A0%80``) and must merely not break anything; in JSON (``"\\ud800"``) it arrives as itself.
"""

from __future__ import annotations

import io
import json
import uuid
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing import AnyConverter

from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Membership, Tenant, User
from tenants.policy import Role
from tests.factories import PASSWORD, csrf_token, login, make_person, make_tenant, make_world

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MESSAGE = "The request contains a character that is not allowed (a NUL byte or an unpaired surrogate)"


class Bad:
    """One bad value, as it goes into JSON (``text``) and into an address or a form (``encoded``)."""

    def __init__(self, name: str, text: str, encoded: str, survives_decoding: bool) -> None:
        self.name, self.text, self.encoded = name, text, encoded
        self.survives_decoding = survives_decoding  # False: Werkzeug turns it into U+FFFD

    def __repr__(self) -> str:
        return self.name


NUL = Bad("NUL", "a\x00b", "a%00b", True)
SURROGATE = Bad("surrogate", "a\ud800b", "a%ED%A0%80b", False)
BAD = (NUL, SURROGATE)

# Query parameters the pages read (``request.args``); the API's come from its OpenAPI document.
PAGE_QUERY = ("q", "tag", "category", "period", "state", "line", "tenant", "overdue", "after", "before", "next",
              "month", "version", "side", "cursor", "limit")
# Fields the views read from ``request.form`` themselves; WTForms fields are collected from the classes.
DIRECT_FORM_FIELDS = ("assignee", "billable", "body", "day", "description", "document", "documents", "due", "email",
                      "internal", "key", "kind", "lang", "lead_days", "line", "minutes", "mode", "month", "move",
                      "name", "needs_approval", "next", "note", "number", "on_time_percent", "priority", "reason",
                      "reviewer", "seen_sha256", "title", "turnaround_days", "weekday")
# Endpoints that end the caller's session or change who may do what: sent last, so that the sweep's
# other requests still run signed in (with a replacement character, these reach the view).
LAST = ("provider.tenant_status", "provider.staff_active", "clients.remove", "clients.change_role",
        "account.change_password", "account.recovery_codes", "account.sign_out_everywhere", "auth.logout")


def _form_fields() -> list[str]:
    from flask_wtf import FlaskForm
    from wtforms.fields.core import UnboundField

    def subclasses(cls: type) -> list[type]:
        return [s for c in cls.__subclasses__() for s in (c, *subclasses(c))]

    names = set(DIRECT_FORM_FIELDS)
    for form in subclasses(FlaskForm):
        names |= {n for n in dir(form) if isinstance(getattr(form, n, None), UnboundField)}
    return sorted(names)


@pytest.fixture(scope="module", autouse=True)
def _provider_lines_restored(app: Flask, db_urls):
    """The sweep posts into every form, the service lines' included: their names are put back after it,
    so that later tests read the provider's lines as the product ships them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_urls.owner)
    with engine.begin() as conn:
        before = conn.execute(text("select key, name, needs_approval from service_lines")).all()
    yield
    with engine.begin() as conn:
        for key, name, needs_approval in before:
            conn.execute(text("update service_lines set name = :name, needs_approval = :approval where key = :key"),
                         {"name": name, "approval": needs_approval, "key": key})
    engine.dispose()


@pytest.fixture(scope="module")
def bworld(app: Flask):
    """Tenant A with a document, a document request and a task, and ids of its objects by URL argument."""
    from portal.documents import requests, services
    from portal.work.services import create_task
    from tests.documents import samples

    with app.app_context():
        world = make_world()
        tenant = db.session.get(Tenant, world.a.id)
        admin = db.session.get(User, world["provider_admin"].id)
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            target = services.upload_target(admin, category="invoice")
            doc = services.upload(admin, tenant, [samples.pdf(2024)], filename="boundary.pdf", target=target).document
            req = requests.create_request(admin, tenant, title="Boundary request",
                                          items=[requests.ItemInput("Bank statement")], note=None)
            task = create_task(admin, tenant, title="Boundary task", service_line_key="bookkeeping")
            victim = world["a_client_member"]  # removed, re-roled or disabled by the sweep, never signed in
            membership = db.session.scalars(select(Membership).where(Membership.user_id == victim.id)).one()
            world.ids = {"document_id": str(doc.id), "request_id": str(req.id), "task_id": str(task.id),
                         "membership_id": str(membership.id), "user_id": str(victim.id)}
        db.session.commit()
    return world


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict:
    return app.test_client().get("/api/v1/openapi.json").json


def _token(app: Flask, world, key: str) -> str:
    from portal.api.tokens import create_token

    with app.app_context():
        user, tenant = db.session.get(User, world[key].id), db.session.get(Tenant, world.a.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}))):
            return create_token(user, tenant, f"boundary {key}", "write")


class Caller:
    """A browser session (with its CSRF token) and an API token of one person, or nobody."""

    def __init__(self, app: Flask, world, key: str | None) -> None:
        self.key = key or "anonymous"
        self.client = app.test_client()
        self.token = None
        if key:
            login(self.client, world[key])
            self.token = _token(app, world, key)
        self.csrf = csrf_token(self.client, "/account/" if key else "/auth/login")

    def open(self, url: str, method: str, *, api: bool, form: dict[str, str] | None = None, body: object = None):
        headers = {}
        if api:
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            data = json.dumps(body if body is not None else {}) if method in WRITE_METHODS else None
            return self.client.open(url, method=method, data=data, headers=headers,
                                    content_type="application/json" if data else None)
        if method in WRITE_METHODS:
            # Encoded by hand: the values are already percent-encoded, as a client would send them.
            fields = {"csrf_token": quote(self.csrf, safe="")} | (form or {})
            data = "&".join(f"{k}={v}" for k, v in fields.items())
            return self.client.open(url, method=method, data=data, headers=headers,
                                    content_type="application/x-www-form-urlencoded")
        return self.client.open(url, method=method, headers=headers)


def _url(rule, world, bad_arg: str | None = None, bad: Bad | None = None) -> str:
    values = {}
    choices = {arg: conv for arg, conv in rule._converters.items() if isinstance(conv, AnyConverter)}
    for arg in rule.arguments:
        if arg in choices:  # one of its words (/books/<any(receivables, payables):kind>)
            values[arg] = sorted(choices[arg].items)[0]
        elif arg in ("tenant_slug", "slug"):
            values[arg] = world.a.slug
        elif arg in world.ids:
            values[arg] = world.ids[arg]
        elif arg == "line_key":
            values[arg] = "bookkeeping"
        elif arg == "filename":
            values[arg] = "portal.css"
        else:
            values[arg] = uuid.uuid4().hex
        if arg == bad_arg:
            values[arg] = "BADVALUE"
    strict = choices.get(bad_arg)
    if strict is not None:  # an any() converter refuses to build another word: let the placeholder through once
        strict.to_url = lambda value: value
    try:
        url = rule.build(values, append_unknown=False)[1]
    finally:
        if strict is not None:
            del strict.to_url
    return url.replace("BADVALUE", bad.encoded) if bad_arg else url


def _api_operation(spec: dict, rule, method: str) -> dict:
    path = "/" + rule.rule.strip("/").replace("<", "{").replace(">", "}")
    return spec["paths"].get(path, {}).get(method.lower(), {})


def _json_body(spec: dict, schema: dict, bad: Bad) -> dict:
    """The bad value in every free-text member (nested objects too); other members are left out,
    so that a type error elsewhere cannot hide what the text fields do."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    body: dict = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        if prop.get("type") == "array" and "items" in prop:
            body[name] = [_json_body(spec, prop["items"], bad)]
        elif "$ref" in prop:
            body[name] = _json_body(spec, prop, bad)
        elif prop.get("type") == "string" and "enum" not in prop:
            body[name] = bad.text
    return body


def _cases(app: Flask, spec: dict, world):
    """(url, method, api, form, body, what, bad) for every rule and method, destructive ones last."""
    form_fields = _form_fields()
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in LAST, LAST.index(r.endpoint)
                                                           if r.endpoint in LAST else 0, r.rule))
    for rule in rules:
        api = rule.endpoint.startswith("api")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = _api_operation(spec, rule, method) if api else {}
            query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"] if api else PAGE_QUERY
            schema = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get("schema")
            for bad in BAD:
                for arg in rule.arguments:
                    yield _url(rule, world, arg, bad), method, api, None, None, f"path {arg}", bad
                url = _url(rule, world)
                if query:
                    yield (url + "?" + "&".join(f"{q}={bad.encoded}" for q in query), method, api, None, None,
                           "query", bad)
                if method in WRITE_METHODS and not api:
                    yield url, method, api, {f: bad.encoded for f in form_fields}, None, "form", bad
                if method in WRITE_METHODS and api:
                    # A body without free text (a move) carries the value under a member of its own.
                    body = (_json_body(spec, schema, bad) if schema else {}) or {"note": bad.text}
                    yield url, method, api, None, body, "json", bad


def test_every_parameter_of_every_route_refuses_nul_and_surrogates_without_a_500(app, bworld, spec):
    callers = [Caller(app, bworld, key) for key in (None, "a_client_admin", "provider_admin")]
    cases = list(_cases(app, spec, bworld))
    assert len(cases) > 300  # the sweep really covers the URL map
    failures = []
    for caller in callers:
        for url, method, api, form, body, what, bad in cases:
            where = f"{caller.key} {method} {url[:120]} ({what}, {bad})"
            try:
                r = caller.open(url, method, api=api, form=form, body=body)
            except Exception as exc:  # an error the error page itself could not answer (TESTING propagates it)
                failures.append(f"{where}: raised {type(exc).__name__}: {str(exc)[:120]}")
                continue
            arrives = bad.survives_decoding or what == "json"
            if r.status_code >= 500 or (arrives and r.status_code != 400):
                failures.append(f"{where}: {r.status_code}")
    broken = [f for f in failures if f.endswith(": 500") or ": raised " in f]
    assert failures == [], (f"{len(failures)} failures, {len(broken)} of them errors:\n"
                            + "\n".join((broken + failures)[:60]))


# --- the cases seen in the issue, one by one ------------------------------------------------------

def _assert_refused(r, field: str | None) -> None:
    assert r.status_code == 400, (r.status_code, r.data[:300])
    text = r.json["detail"] if r.mimetype == "application/problem+json" else r.get_data(as_text=True)
    assert MESSAGE in text, text[:2000]
    if field:
        assert f"the field &#39;{field}&#39;" in text or f"the field '{field}'" in text, text[:2000]


@pytest.fixture(scope="module")
def admin(app, bworld) -> Caller:
    return Caller(app, bworld, "a_client_admin")


def test_sign_in_and_reset_refuse_a_nul_before_sign_in(app):
    anonymous = app.test_client()
    token = csrf_token(anonymous)
    body = f"email=a%00%40b.example&password=x&csrf_token={token}"
    _assert_refused(anonymous.post("/auth/login", data=body, content_type="application/x-www-form-urlencoded"),
                    "email")
    token = csrf_token(anonymous, "/auth/reset")
    _assert_refused(anonymous.post("/auth/reset", data=f"email=a%00%40b.example&csrf_token={token}",
                                   content_type="application/x-www-form-urlencoded"), "email")


def test_a_nul_in_a_header_is_refused(app):
    """The User-Agent is stored with the session a sign-in opens."""
    with app.app_context():
        person = make_person(Role.CLIENT_MEMBER, make_tenant())
    browser = app.test_client()
    r = browser.post("/auth/login", headers={"User-Agent": "Mozilla\x00"},
                     data={"email": person.email, "password": PASSWORD, "csrf_token": csrf_token(browser)})
    _assert_refused(r, "User-Agent")


def test_document_search_and_tag_refuse_a_nul_on_the_page_and_in_the_api(admin, bworld):
    for param in ("q", "tag"):
        _assert_refused(admin.client.get(f"/t/{bworld.a.slug}/documents?{param}=a%00b"), param)
        _assert_refused(admin.open(f"/api/v1/tenants/{bworld.a.slug}/documents?{param}=a%00b", "GET", api=True),
                        param)
        # The bytes of a surrogate arrive as a replacement character: a search like any other.
        assert admin.client.get(f"/t/{bworld.a.slug}/documents?{param}=a%ED%A0%80b").status_code == 200


def test_a_nul_in_the_tenant_of_the_address_is_refused(admin):
    r = admin.client.get("/t/a%00b/documents")
    _assert_refused(r, None)
    assert "address" in r.get_data(as_text=True)
    _assert_refused(admin.open("/api/v1/tenants/a%00b/documents", "GET", api=True), None)


def test_task_comments_refuse_a_nul_and_a_surrogate(admin, bworld):
    url = f"/t/{bworld.a.slug}/tasks/{bworld.ids['task_id']}/comment"
    _assert_refused(admin.open(url, "POST", api=False, form={"body": NUL.encoded}), "body")
    api = f"/api/v1/tenants/{bworld.a.slug}/tasks/{bworld.ids['task_id']}/comments"
    for bad in BAD:
        r = admin.open(api, "POST", api=True, body={"body": bad.text})
        assert r.mimetype == "application/problem+json"
        _assert_refused(r, "body")


def test_json_keys_and_nested_values_are_walked(admin, bworld):
    url = f"/api/v1/tenants/{bworld.a.slug}/document-requests"
    r = admin.open(url, "POST", api=True, body={"title": "ok", "items": [{"description": "ok", "due\ud800": "x"}]})
    _assert_refused(r, "items.0.due\\ud800")  # the name is shown escaped, never echoed raw
    r = admin.open(url, "POST", api=True, body={"title": "ok", "items": [{"description": "a\x00"}]})
    _assert_refused(r, "items.0.description")


def test_the_message_is_translated(app):
    client = app.test_client()
    r = client.get("/auth/login?next=a%00b", headers={"Accept-Language": "vi"})
    assert r.status_code == 400
    assert "không được phép" in r.get_data(as_text=True)


def test_streamed_uploads_refuse_a_nul_in_a_field_and_are_not_parsed_before_the_view(admin, bworld):
    boundary = "xYzBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\na\x00b\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    r = admin.client.post(f"/api/v1/tenants/{bworld.a.slug}/documents", data=body,
                          content_type=f"multipart/form-data; boundary={boundary}",
                          headers={"Authorization": f"Bearer {admin.token}"})
    assert r.status_code == 422 and "'tags'" in r.json["detail"] and "NUL" in r.json["detail"], r.data[:300]
    r = admin.client.post(f"/t/{bworld.a.slug}/documents/upload", data=body, headers={"X-CSRFToken": admin.csrf,
                          "Accept": "application/json"}, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 422 and "'tags'" in r.json["error"], r.data[:300]


def test_iter_parts_refuses_a_nul_in_a_field_name_or_value():
    from portal.documents.multipart import FieldPart, MalformedUpload, iter_parts

    def parts(name: str, value: str) -> list:
        raw = f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n--b--\r\n'.encode()
        return list(iter_parts(io.BytesIO(raw), b"b"))

    assert parts("tags", "ok") == [FieldPart("tags", "ok")]
    for name, value in (("tags", "a\x00b"), ("ta\x00gs", "ok")):
        with pytest.raises(MalformedUpload, match="NUL"):
            parts(name, value)


def test_the_streamed_upload_endpoints_exist(app):
    """The boundary leaves these bodies to ``multipart.iter_parts``; a renamed endpoint must not slip by."""
    from portal.boundary import STREAMED

    assert STREAMED.issubset(app.view_functions)
