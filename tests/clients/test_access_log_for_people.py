"""The access log, written for people: who (a name), what (a sentence naming the thing), when (the
tenant's time), where (the IP); filters by days, side and kind; the CSV download of what they keep.

Also the rule behind the words: every action the code records has them, on the log it goes to.
"""

from __future__ import annotations

import ast
import csv
import html
import io
import itertools
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from sqlalchemy import select

from portal.extensions import db
from tenants import audit
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User, utcnow
from tenants.policy import Role
from tests.api.util import in_tenant
from tests.documents import samples
from tests.factories import TenantRef, csrf_token, login, make_person, make_tenant, unique

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROW = re.compile(r'<tr data-action="([^"]+)" data-side="([^"]+)">(.*?)</tr>', re.S)


# --- every recorded action has words --------------------------------------------------------------

def _strings(node: ast.AST, assigned: dict[str, list[ast.AST]]) -> tuple[set[str], set[str]]:
    """(action names, f-string prefixes) an expression can evaluate to, following local assignments."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}, set()
    if isinstance(node, ast.IfExp):
        a, b = _strings(node.body, assigned), _strings(node.orelse, assigned)
        return a[0] | b[0], a[1] | b[1]
    if isinstance(node, ast.Name):
        names: set[str] = set()
        prefixes: set[str] = set()
        for value in assigned.get(node.id, []):
            found = _strings(value, assigned)
            names |= found[0]
            prefixes |= found[1]
        return names, prefixes
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append({part.value})
                continue
            options = _strings(part.value, {})[0] if isinstance(part.value, ast.IfExp) else set()
            if not options:  # a value we cannot list: the constant text before it is a prefix
                before = "".join(p.value for p in itertools.takewhile(lambda p: isinstance(p, ast.Constant),
                                                                       node.values))
                return set(), {before}
            parts.append(options)
        return {"".join(combo) for combo in itertools.product(*parts)}, set()
    return set(), set()


def _assignments(function: ast.AST) -> dict[str, list[ast.AST]]:
    """Each local name's assigned values in a function, tuple assignments paired up."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                out.setdefault(target.id, []).append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for name, value in zip(target.elts, node.value.elts, strict=False):
                    if isinstance(name, ast.Name):
                        out.setdefault(name.id, []).append(value)
    return out


def _chains(call: ast.Call) -> set[str]:
    """Which chain a call writes to: ``audit.record`` by its ``tenant_id``; the areas' helpers, the tenant's."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "audit"):
        return {"tenant"}  # record(), _record(), _audit(), served.record(): each writes a task's or document's tenant
    tenant_id = next((k.value for k in call.keywords if k.arg == "tenant_id"), None)
    if tenant_id is None or (isinstance(tenant_id, ast.Constant) and tenant_id.value is None):
        return {"platform"}
    if isinstance(tenant_id, ast.IfExp):  # e.g. ``tenant.id if tenant else None``
        return {"tenant", "platform"}
    return {"tenant"}


def recorded_actions() -> dict[str, tuple[set[str], set[str]]]:
    """Per chain, the action names (and f-string prefixes) passed to ``audit.record`` and the helpers around it."""
    found = {"tenant": (set(), set()), "platform": (set(), set())}
    for path in itertools.chain(*(sorted((ROOT / d).rglob("*.py")) for d in ("portal", "tenants", "workers"))):
        tree = ast.parse(path.read_text(), str(path))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
            assigned = _assignments(function)
            for call in [n for n in ast.walk(function) if isinstance(n, ast.Call) and n.args]:
                name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
                if not (name.endswith("record") or name == "_audit"):
                    continue
                names, prefixes = _strings(call.args[0], assigned)
                names = {n for n in names if re.fullmatch(r"[a-z_]+\.[a-z_]+", n)}
                for chain in _chains(call):
                    found[chain][0].update(names)
                    found[chain][1].update(p for p in prefixes if re.fullmatch(r"[a-z_]+\.", p))
    return found


def test_every_action_the_code_records_has_words_on_the_log_it_goes_to():
    from portal.clients.views import ACTION_LABELS
    from portal.provider.views import PLATFORM_ACTION_LABELS

    found = recorded_actions()
    tenant, tenant_prefixes = found["tenant"]
    platform, platform_prefixes = found["platform"]
    # The scan sees what it must: plain names, names through a helper and a variable, f-strings.
    assert {"document.viewed", "document.uploaded", "task.approved", "time.logged", "documents.listed",
            "access_log.exported", "settings.mfa_optional", "tenant.suspended"} <= tenant
    assert {"auth.signin", "user.disabled", "cross_tenant.read", "audit_log.exported"} <= platform
    assert "tenant." in platform_prefixes

    assert sorted(tenant - set(ACTION_LABELS)) == [], "recorded in a client's access log without words"
    assert sorted(platform - set(PLATFORM_ACTION_LABELS)) == [], "recorded in the platform log without words"
    for prefixes, labels in ((tenant_prefixes, ACTION_LABELS), (platform_prefixes, PLATFORM_ACTION_LABELS)):
        for prefix in prefixes:
            assert any(key.startswith(prefix) for key in labels), f"no words for any {prefix}… action"
    assert {"tenant.active", "tenant.suspended"} <= set(PLATFORM_ACTION_LABELS)  # f"tenant.{status}"


def test_every_action_with_words_falls_in_a_kind_of_the_filter():
    from portal.clients.services import LOG_KINDS
    from portal.clients.views import ACTION_LABELS, KIND_LABELS
    from portal.provider.services import PLATFORM_KINDS
    from portal.provider.views import PLATFORM_ACTION_LABELS, PLATFORM_KIND_LABELS

    for labels, kinds, kind_labels in ((ACTION_LABELS, LOG_KINDS, KIND_LABELS),
                                       (PLATFORM_ACTION_LABELS, PLATFORM_KINDS, PLATFORM_KIND_LABELS)):
        assert set(kinds) == set(kind_labels)
        orphans = [a for a in labels if not any(a.startswith(p) for ps in kinds.values() for p in ps)]
        assert orphans == [], "an action no kind of the filter keeps"


# --- the page ------------------------------------------------------------------------------------

def _upload(app, tenant: TenantRef, person, title: str) -> str:
    from portal.documents import services

    with app.app_context():
        user, row = db.session.get(User, person.id), db.session.get(Tenant, tenant.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({row.id}), role=Role.CLIENT_MEMBER)):
            result = services.upload(user, row, [samples.pdf(int.from_bytes(unique("x").encode()[-4:], "big"))],
                                     filename=title, target=services.upload_target(user, category="invoice"))
            return str(result.document.id)


def _rename(app, person, name: str) -> None:
    with app.app_context():
        db.session.get(User, person.id).name = name
        db.session.commit()


def _rows(page: str) -> list[tuple[str, str, list[str]]]:
    """(action, side, the text of each cell) of the log's rows, newest first."""
    return [(a, s, [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
                     for cell in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)])
            for a, s, body in ROW.findall(page)]


def test_the_log_says_who_what_when_and_where_in_words(app, client, world):
    staff = world["staff"]
    _rename(app, staff, "Lan Nguyễn")
    doc_id = _upload(app, world.a, world["a_client_member"], "Payslips March.pdf")
    provider = app.test_client()
    login(provider, staff)
    assert provider.get(f"/t/{world.a.slug}/documents/{doc_id}/download").status_code == 200

    login(client, world["a_client_admin"])
    page = client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    rows = _rows(page)
    action, side, (when, who, side_text, what, where) = next(r for r in rows if r[0] == "document.downloaded")
    assert side == "provider" and side_text == "Provider"
    assert who == f"Lan Nguyễn {staff.email}"  # the name, and under it the address the log recorded
    assert what == "downloaded a document “Payslips March.pdf” (version 1)"
    assert where == "127.0.0.1"
    with in_tenant(app, world.a):
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "document.downloaded")).one()
        local = format_datetime(event.occurred_at, "medium", tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"), locale="en")
    assert when == " ".join(local.split())  # the tenant's time (the cells' spaces are normalised above)
    assert "Times are in Asia/Ho_Chi_Minh" in page
    # The staff assignments name the person given access; the upload names its file. No row shows a bare id.
    assert any(r[0] == "assignment.added" and staff.email in r[2][3] for r in rows)
    assert any(r[0] == "document.uploaded" and r[2][3] == "uploaded a document “Payslips March.pdf”" for r in rows)
    for _, _, cells in rows:
        assert not UUID.search(" ".join(cells)), cells


def test_a_role_change_says_from_what_to_what(app, client, world):
    admin = world["a_client_admin"]
    login(client, admin)
    users = f"/t/{world.a.slug}/users"
    with in_tenant(app, world.a):
        from tenants.models import Membership

        membership_id = db.session.scalars(select(Membership.id).where(
            Membership.user_id == world["a_client_member"].id)).one()
    r = client.post(f"{users}/{membership_id}/role", data={"csrf_token": csrf_token(client, users),
                                                           "role": "client_approver"})
    assert r.status_code == 302
    rows = _rows(client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True))
    what = next(cells[3] for action, _, cells in rows if action == "user.role_changed")
    assert what == f"changed a user's role “{world['a_client_member'].email}” (Member → Approver)"


def _far_tenant_and_admin(app):
    """A tenant whose today is not today in UTC right now (UTC+14 or UTC-11, whichever differs), and its admin."""
    now = utcnow()
    zone = next(z for z in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
                if now.astimezone(ZoneInfo(z)).date() != now.date())
    with app.app_context():
        tenant = make_tenant(unique("Far Co"), timezone=zone)
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        return TenantRef.of(tenant), admin, now.astimezone(ZoneInfo(zone)).date(), now.date()


def test_days_are_the_tenants_days(app, client):
    tenant, admin, local_today, utc_today = _far_tenant_and_admin(app)
    login(client, admin)
    url = f"/t/{tenant.slug}/access-log"
    kept = _rows(client.get(url, query_string={"from": local_today.isoformat(),
                                               "to": local_today.isoformat()}).get_data(as_text=True))
    assert "tenant.created" in [a for a, _, _ in kept]
    # The same events, asked for by the date UTC gives them: none of them happened on that day here.
    r = client.get(url, query_string={"from": utc_today.isoformat(), "to": utc_today.isoformat()})
    assert r.status_code == 200 and _rows(r.get_data(as_text=True)) == []
    assert "No event matches these filters." in r.get_data(as_text=True)
    earlier = _rows(client.get(url, query_string={"to": (local_today - timedelta(days=1)).isoformat()}
                               ).get_data(as_text=True))
    assert earlier == []


@pytest.mark.parametrize("query, message", [
    ({"from": "2025-03-31", "to": "2025-03-01"},
     "The start date 2025-03-31 is after the end date 2025-03-01: swap them, or pick again."),
    ({"from": "31/03/2025"}, "Give the date as YYYY-MM-DD, for example 2025-03-31."),
    ({"kind": "gossip"}, "Choose a kind of event from the list."),
    ({"side": "everyone"}, "Filter by provider, client or system."),
])
def test_a_filter_that_cannot_be_kept_says_why(client, world, query, message):
    login(client, world["a_client_admin"])
    r = client.get(f"/t/{world.a.slug}/access-log", query_string=query)
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and message in page
    assert 'data-testid="log-filters"' in page and _rows(page) == []  # the form is there to fix it
    assert client.get(f"/t/{world.a.slug}/access-log.csv", query_string=query).status_code == 400


def test_the_kind_filter_keeps_one_kind_and_paging_keeps_the_filter(app, client, world):
    with in_tenant(app, world.a):
        for i in range(55):
            audit.record("document.viewed", audit.SYSTEM, tenant_id=world.a.id, object_type="document",
                         data={"name": f"doc {i}"})
        audit.record("token.created", audit.SYSTEM, tenant_id=world.a.id, data={"name": "export robot"})
        db.session.commit()
    login(client, world["a_client_admin"])
    page = client.get(f"/t/{world.a.slug}/access-log", query_string={"kind": "documents"}).get_data(as_text=True)
    first = _rows(page)
    assert len(first) == 50 and {a for a, _, _ in first} == {"document.viewed"}
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert "kind=documents" in older
    rest = _rows(client.get(older).get_data(as_text=True))
    assert len(rest) == 5 and {a for a, _, _ in rest} == {"document.viewed"}
    security = _rows(client.get(f"/t/{world.a.slug}/access-log?kind=security").get_data(as_text=True))
    assert [a for a, _, _ in security] == ["token.created"]


def _csv(response) -> list[list[str]]:
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_csv_holds_what_the_filters_keep_with_the_pages_columns(app, client, world):
    member = world["a_client_member"]
    _rename(app, member, '=HYPERLINK("https://evil.example","Invoice")')
    _upload(app, world.a, member, "=SUM(1+1) invoice.pdf")
    admin = world["a_client_admin"]
    login(client, admin)
    r = client.get(f"/t/{world.a.slug}/access-log.csv", query_string={"kind": "documents", "side": "client"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"] and "no-store" in r.headers["Cache-Control"]
    table = _csv(r)
    assert table[0] == ["When (Asia/Ho_Chi_Minh)", "Who", "Side", "What", "IP address"]
    rows = table[1:]
    assert [row[3] for row in rows] == ["uploaded a document “=SUM(1+1) invoice.pdf”"]
    when, who, side, _, where = rows[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", when)
    # A cell a spreadsheet would run as a formula is text: the name starts with a quote.
    assert who == f"'=HYPERLINK(\"https://evil.example\",\"Invoice\") <{member.email}>"
    assert side == "Your company" and where == ""  # uploaded through the service, not a request

    # The download is in the log, with its filter, and says so in words.
    page = client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    action, side, cells = _rows(page)[0]
    assert action == "access_log.exported" and side == "client"
    assert cells[3] == "downloaded this access log (Only what your people did, Documents)"


def test_the_csv_never_gives_a_client_the_providers_internal_events(app, client, world):
    with in_tenant(app, world.a):
        audit.record("task.commented", audit.SYSTEM, tenant_id=world.a.id, internal=True,
                     data={"name": "internal-only-marker"})
        audit.record("task.commented", audit.SYSTEM, tenant_id=world.a.id, data={"name": "client-visible-marker"})
        db.session.commit()
    login(client, world["a_client_admin"])
    body = client.get(f"/t/{world.a.slug}/access-log.csv").get_data(as_text=True)
    assert "client-visible-marker" in body and "internal-only-marker" not in body
    provider = app.test_client()
    login(provider, world["provider_admin"])
    assert "internal-only-marker" in provider.get(f"/t/{world.a.slug}/access-log.csv").get_data(as_text=True)


def test_the_csv_streams_every_event_not_one_page(app, client, world, monkeypatch):
    from portal.clients import services

    monkeypatch.setattr(services, "EXPORT_BATCH", 7)  # several batches, each read as the file is sent
    with in_tenant(app, world.a):
        for i in range(30):
            audit.record("document.viewed", audit.SYSTEM, tenant_id=world.a.id, data={"name": f"n{i}"})
        db.session.commit()
    login(client, world["a_client_admin"])
    r = client.get(f"/t/{world.a.slug}/access-log.csv", query_string={"kind": "documents"})
    assert not r.is_sequence or r.status_code == 200
    names = [row[3] for row in _csv(r)[1:]]
    assert names == [f"opened a document “n{i}”" for i in reversed(range(30))]


def test_the_api_keeps_the_same_filters_as_the_page(app, client, world):
    from tests.api.util import bearer, issue_token, problem

    with in_tenant(app, world.a):
        audit.record("document.viewed", audit.SYSTEM, tenant_id=world.a.id, data={"name": "api-doc"})
        db.session.commit()
    raw = issue_token(app, world["a_client_admin"], world.a)
    url = f"/api/v1/tenants/{world.a.slug}/audit-events"
    r = client.get(url, headers=bearer(raw), query_string={"kind": "security"})
    assert r.status_code == 200 and [i["action"] for i in r.json["items"]] == ["token.created"]
    today = utcnow().astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    r = client.get(url, headers=bearer(raw), query_string={"kind": "documents", "from": today.isoformat(),
                                                           "to": today.isoformat()})
    assert [i["action"] for i in r.json["items"]] == ["document.viewed"]
    assert "Choose a kind of event" in problem(client.get(url, headers=bearer(raw), query_string={"kind": "x"}),
                                               422)["detail"]
