"""The cross-tenant matrix, generated from the app's URL map.

Every route x every role x another tenant's slug and ids: refused (403/404),
and nothing of the other tenant in the response. A new route is covered by
itself; a route with no authorisation rule fails here.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing import AnyConverter

from portal.access import PUBLIC, action_of
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Membership
from tests.factories import csrf_token, login, make_world

# People of tenant A (or provider staff not entitled to B), who must never reach tenant B.
OUTSIDERS = ["a_client_admin", "a_client_approver", "a_client_member", "manager", "staff", "unassigned_staff"]
TENANT_PARAMS = {"tenant_slug", "slug"}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _rules(app: Flask):
    for rule in app.url_map.iter_rules():
        if action_of(app, rule.endpoint) == PUBLIC:
            continue
        yield rule


def test_every_route_declares_an_authorisation_rule(app):
    from tenants.policy import TABLE

    undeclared = [r.rule for r in app.url_map.iter_rules() if action_of(app, r.endpoint) is None]
    assert undeclared == [], f"routes without @requires/@public: {undeclared}"
    unknown = [(r.rule, action_of(app, r.endpoint)) for r in _rules(app)
               if action_of(app, r.endpoint) not in TABLE]
    assert unknown == [], f"routes naming actions missing from the table: {unknown}"


@pytest.fixture(scope="module")
def mworld(app):
    with app.app_context():
        world = make_world()
        with bound(Scope(tenant_ids=frozenset({world.b.id}))):
            b_ids = {m.user_id: m.id for m in db.session.scalars(select(Membership))}
        db.session.rollback()
        document_id, request_id, item_id, task_id = _b_documents(world)
    world.b_ids = {  # ids of B's objects, by the URL parameter names that might carry them
        "membership_id": next(iter(b_ids.values())),
        "user_id": next(iter(b_ids)),
        "document_id": document_id,
        "request_id": request_id,
        "item_id": item_id,
        "task_id": task_id,
    }
    return world


B_DOCUMENT = "beta-confidential-ledger.pdf"


def _b_documents(world):
    """A document, a document request (and its item) and a task of tenant B, made through the services."""
    from portal.documents import requests, services
    from portal.work.services import create_task
    from tenants.models import Tenant, User
    from tenants.policy import Role
    from tests.documents import samples

    tenant = db.session.get(Tenant, world.b.id)
    admin = db.session.get(User, world["provider_admin"].id)
    with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
        target = services.upload_target(admin, category="invoice")
        doc = services.upload(admin, tenant, [samples.pdf(31337)], filename=B_DOCUMENT, target=target).document
        req = requests.create_request(admin, tenant, title="Beta request",
                                      items=[requests.ItemInput("Beta bank statement")], note=None)
        task = create_task(admin, tenant, title="Beta bank statement reconciliation", service_line_key="bookkeeping")
        ids = doc.id, req.id, req.items[0].id, task.id
    from portal.trust.anchors import write_checkpoints

    write_checkpoints()  # B's access log has a signed checkpoint to download
    return ids


@pytest.fixture(scope="module")
def clients(app, mworld):
    """One signed-in browser per outsider, plus a CSRF token valid for each."""
    out = {}
    for key in OUTSIDERS:
        c = app.test_client()
        login(c, mworld[key])
        out[key] = (c, csrf_token(c, "/account/"))
    return out


@pytest.fixture(scope="module")
def tokens(app, mworld):
    """An API token of each client-side outsider, scoped to their own tenant A."""
    from portal.api.tokens import create_token
    from tenants.models import Tenant, User

    out = {}
    with app.app_context():
        tenant = db.session.get(Tenant, mworld.a.id)
        for key in OUTSIDERS:
            if key.startswith("a_"):
                user = db.session.get(User, mworld[key].id)
                with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}))):
                    out[key] = create_token(user, tenant, f"matrix {key}", "write")
    return out


def _url(rule, world) -> str:
    values = {}
    choices = {arg: conv for arg, conv in rule._converters.items() if isinstance(conv, AnyConverter)}
    for arg in rule.arguments:
        if arg in choices:  # one of its words (/books/<any(receivables, payables):kind>)
            values[arg] = sorted(choices[arg].items)[0]
        elif arg in TENANT_PARAMS:
            values[arg] = world.b.slug
        elif arg in world.b_ids:
            values[arg] = world.b_ids[arg]
        elif arg.endswith("_id") or arg == "id":
            values[arg] = world.b_ids["membership_id"]
        else:
            values[arg] = uuid.uuid4().hex
    return rule.build(values, append_unknown=False)[1]


def _cases(app):
    for rule in _rules(app):
        if not (set(rule.arguments) & TENANT_PARAMS):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def _assert_refused(response, world, what: str) -> None:
    assert response.status_code in (403, 404), f"{what}: got {response.status_code}"
    body = response.get_data(as_text=True)
    for secret in (world.b.slug, world.b.name, str(world.b.id), str(world.b_ids["membership_id"]), B_DOCUMENT,
                   "Beta bank statement"):
        assert secret not in body, f"{what}: response mentions tenant B ({secret})"


def _attack(app, world, clients, tokens, key: str, url: str, method: str, api: bool):  # noqa: ANN202
    """One outsider's request (a page with their session and CSRF token, or the API with their token),
    carrying tenant B's id in the body; None when this outsider has no API token."""
    if api:
        if key not in tokens:
            return None
        return app.test_client().open(url, method=method, json={"tenant_id": str(world.b.id)},
                                      headers={"Authorization": f"Bearer {tokens[key]}"})
    client, token = clients[key]
    data = {"csrf_token": token, "tenant_id": str(world.b.id)} if method in WRITE_METHODS else None
    return client.open(url, method=method, data=data)


def test_outsiders_never_reach_another_tenant(app, mworld, clients, tokens):
    cases = list(_cases(app))
    assert len(cases) >= 3  # the matrix really covers tenant routes
    checked = 0
    for rule, method in cases:
        url = _url(rule, mworld)
        api = rule.endpoint.startswith("api")
        for key in OUTSIDERS:
            r = _attack(app, mworld, clients, tokens, key, url, method, api)
            if r is None:
                continue
            _assert_refused(r, mworld, f"{key} {method} {url}")
            checked += 1
    assert checked >= len(cases) * 3


def _own_slug_url(rule, world) -> str:
    """Tenant A's slug with tenant B's object ids: the insider's attack on ids."""
    url = _url(rule, world)
    return url.replace(f"/{world.b.slug}/", f"/{world.a.slug}/", 1)


def test_insiders_of_a_get_404_for_bs_ids_under_their_own_slug(app, mworld, clients, tokens):
    """Every route with an object id, called in A's workspace with B's ids: not found, nothing shown."""
    checked = 0
    for rule, method in _cases(app):
        ids = {a for a in rule.arguments if a.endswith("_id")} - TENANT_PARAMS
        if not ids:
            continue
        url = _own_slug_url(rule, mworld)
        api = rule.endpoint.startswith("api")
        for key in OUTSIDERS:
            r = _attack(app, mworld, clients, tokens, key, url, method, api)
            if r is None:
                continue
            assert r.status_code in (403, 404), f"{key} {method} {url}: {r.status_code}"
            body = r.get_data(as_text=True)
            assert B_DOCUMENT not in body and "Beta bank statement" not in body, f"{key} {method} {url}"
            checked += 1
    assert checked >= 10


def test_the_matrix_urls_work_for_the_tenants_own_people(app, mworld):
    """Sanity check of the generated URLs: B's own client admin opens B's pages."""
    client = app.test_client()
    login(client, mworld["b_client_admin"])
    opened = 0
    for rule, method in _cases(app):
        if method != "GET" or rule.endpoint.startswith("api") or set(rule.arguments) != {"tenant_slug"}:
            continue
        action = action_of(app, rule.endpoint)
        from tenants.policy import allowed

        if not allowed("client_admin", action):
            continue
        r = client.get(_url(rule, mworld))
        assert r.status_code == 200, f"{rule.rule}: {r.status_code}"
        opened += 1
    assert opened >= 1


def test_nothing_of_another_tenant_on_untenanted_pages(app, mworld, clients):
    """Pages without a tenant in the URL (dashboards, lists) show outsiders nothing of B."""
    for rule in _rules(app):
        if rule.arguments or "GET" not in (rule.methods or ()) or rule.endpoint.startswith("api"):
            continue
        for key in OUTSIDERS:
            client, _ = clients[key]
            r = client.get(rule.rule)
            body = r.get_data(as_text=True)
            assert mworld.b.slug not in body and mworld.b.name not in body, f"{key} GET {rule.rule} shows B"


def test_refusals_are_audited(app, mworld, clients):
    from tenants.audit import PlatformAuditEvent

    client, _ = clients["a_client_member"]
    client.get(f"/t/{mworld.b.slug}/")
    with app.app_context():
        last = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == "access.refused")
                                  .order_by(PlatformAuditEvent.seq.desc()).limit(1)).one()
        assert last.actor_id == mworld["a_client_member"].id
        assert mworld.b.slug in last.data["path"]


def test_provider_pages_over_several_clients_never_show_b_to_staff_not_assigned_to_it(app, mworld, clients):
    """The pages without a tenant in the URL (my work, team queues, load, KPIs...) read across the
    person's clients: B's open task waits in the bookkeeping queue, and none of them may show it."""
    urls = []
    for rule in _rules(app):
        if rule.rule.startswith("/provider") and "GET" in (rule.methods or ()) \
                and not set(rule.arguments) & TENANT_PARAMS:
            values = {a: "bookkeeping" if a == "line_key" else uuid.uuid4().hex for a in rule.arguments}
            urls.append(rule.build(values, append_unknown=False)[1])
    assert {"/provider/work", "/provider/queues", "/provider/queues/bookkeeping"} <= set(urls)
    for key in ("manager", "staff", "unassigned_staff"):
        client, _token = clients[key]
        for url in urls:
            r = client.get(url)
            assert r.status_code in (200, 302, 403, 404), f"{key} GET {url}: {r.status_code}"
            body = r.get_data(as_text=True)
            for secret in (mworld.b.slug, mworld.b.name, B_DOCUMENT, "Beta bank statement"):
                assert secret not in body, f"{key} GET {url}: mentions tenant B ({secret})"
