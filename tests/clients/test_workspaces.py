"""The workspace switcher and the workspaces pages: the switcher every page carries stays the same size however
many clients the provider has; the pages list and search every workspace a person can reach, and nothing else."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select, update

from portal.extensions import db
from portal.provider.views import ASSIGNMENT_ROWS, DASHBOARD_CARDS
from portal.work.models import ServiceLine, Task
from tenants.context import Scope, bound
from tenants.models import Tenant
from tenants.reach import LISTED, SWITCHER_LIMIT
from tests.factories import csrf_token, login, make_tenant, unique

SWITCHER_ENTRY = re.compile(r'<li><a href="/t/([^/"]+)/">')


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


def _switcher(html: str) -> str:
    match = re.search(r'<details class="switcher">.*?</details>', html, re.S)
    assert match, "no switcher on the page"
    return match.group(0)


def _tenants(app, count: int, name: str) -> list[str]:
    """``count`` workspaces named ``<name> 000`` on. Suspended, which every list still shows: the scheduler
    ticks only active tenants, and later tests that run a tick's jobs would run a day's jobs for each."""
    with app.app_context():
        slugs = [make_tenant(f"{name} {n:03d}").slug for n in range(count)]
        suspended = db.session.execute(update(Tenant).where(Tenant.slug.in_(slugs)).values(status="suspended"))
        assert suspended.rowcount == count
        db.session.commit()
        return slugs


def test_the_switcher_stays_the_same_size_however_many_clients_and_leads_to_all_of_them(app, world):
    admin = _signed_in(app, world["provider_admin"])  # reaches every tenant
    _tenants(app, SWITCHER_LIMIT + 1, unique("Switcher Co"))
    before = admin.get("/account/").get_data(as_text=True)
    switcher = _switcher(before)
    assert len(SWITCHER_ENTRY.findall(switcher)) == SWITCHER_LIMIT
    assert 'href="/tenants">All workspaces…</a>' in switcher

    _tenants(app, 40, unique("Later Co"))
    after = admin.get("/account/").get_data(as_text=True)
    assert len(SWITCHER_ENTRY.findall(_switcher(after))) == SWITCHER_LIMIT
    assert abs(len(after) - len(before)) < 400  # forty more clients, the same page (names and tokens vary)

    # A client member reaches one company: it is there, and nothing leads further.
    member = _signed_in(app, world["a_client_member"]).get("/account/").get_data(as_text=True)
    assert SWITCHER_ENTRY.findall(_switcher(member)) == [world.a.slug]
    assert "All workspaces" not in member


def test_my_works_client_filter_offers_the_clients_with_my_work_not_every_client(app, world):
    """A provider admin reaches every client; "my work" filters by the ones where they have unfinished work."""
    admin = world["provider_admin"]
    with app.app_context():
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == "payroll"))
        with bound(Scope(tenant_ids=frozenset({world.a.id}))):
            db.session.add(Task(tenant_id=world.a.id, service_line_id=line, title="Task of the admin",
                                assignee_id=admin.id, priority=2))
            db.session.commit()
    page = _signed_in(app, admin)
    before = page.get("/provider/work").get_data(as_text=True)
    offered = re.findall(r'<option value="([^"]+)"', re.search(r'<select name="tenant">.*?</select>', before).group(0))
    assert world.a.slug in offered and world.b.slug not in offered  # B: reachable, but no work of the admin's
    assert "Task of the admin" in before

    _tenants(app, 40, unique("No Work Co"))
    after = page.get("/provider/work").get_data(as_text=True)
    assert abs(len(after) - len(before)) < 400  # forty more clients, the same page
    # Picking a client keeps it picked and still offers the others.
    picked = page.get("/provider/work", query_string={"tenant": world.b.slug}).get_data(as_text=True)
    assert f'<option value="{world.b.slug}" selected>' in picked and f'<option value="{world.a.slug}">' in picked
    assert "Task of the admin" not in picked and "Nothing on your plate" in picked


def test_the_workspaces_page_finds_a_client_by_part_of_its_name_in_any_case(app, world):
    word = unique("Searchable")
    wanted = _tenants(app, 2, word)
    admin = _signed_in(app, world["provider_admin"])
    page = admin.get("/tenants", query_string={"q": word.upper()}).get_data(as_text=True)
    assert sorted(re.findall(r'<a href="/t/([^/"]+)/"><strong>', page)) == sorted(wanted)
    assert "2 workspaces match" in page and f'value="{word.upper()}"' in page  # the search is kept

    page = admin.get("/tenants", query_string={"q": wanted[0]}).get_data(as_text=True)  # or by its short name
    assert re.findall(r'<a href="/t/([^/"]+)/"><strong>', page) == [wanted[0]]

    nothing = admin.get("/tenants", query_string={"q": uuid.uuid4().hex})
    assert nothing.status_code == 200 and "No workspace matches" in nothing.get_data(as_text=True)


def test_a_long_list_shows_the_first_hundred_by_name_and_says_to_search(app, world):
    word = unique("Many")
    made = _tenants(app, LISTED + 1, word)
    admin = _signed_in(app, world["provider_admin"])
    for url, row in (("/tenants", r'<a href="/t/([^/"]+)/"><strong>'),
                     ("/provider/tenants", r"<td><code>([^<]+)</code></td>")):
        page = admin.get(url, query_string={"q": word}).get_data(as_text=True)
        assert re.findall(row, page) == made[:LISTED], url  # named "<word> 000" to "<word> 100": name order
        assert f"Showing the first {LISTED} of {LISTED + 1}" in page, url
    # The provider console's pages over every client: the dashboard's cards, the assignments' rows.
    for url, shown in (("/provider/", DASHBOARD_CARDS), ("/provider/assignments", ASSIGNMENT_ROWS)):
        page = admin.get(url, query_string={"q": word}).get_data(as_text=True)
        assert re.findall(r'data-tenant="([^"]+)"', page) == made[:shown], url
        assert f"Showing the first {shown} of {LISTED + 1}" in page, url

    # Assigning someone to a client found by a search comes back to the same search.
    url = f"/provider/assignments/{made[-1]}/assign"
    form = {"csrf_token": csrf_token(admin, "/provider/assignments"), "user_id": str(world["staff"].id)}
    r = admin.post(url, query_string={"q": made[-1]}, data=form)
    assert r.status_code == 302 and r.headers["Location"] == f"/provider/assignments?q={made[-1]}"
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert re.findall(r'data-tenant="([^"]+)"', page) == [made[-1]] and "Unassign" in page


def test_nobody_finds_a_company_beyond_their_reach(app, world):
    """From the other side: a client member and a manager search for a company they do not work for."""
    with app.app_context():
        other = db.session.merge(make_tenant(unique("Hidden Co")))
        other_name, other_slug = other.name, other.slug
    for person, url in (("a_client_member", "/tenants"), ("manager", "/tenants"), ("manager", "/provider/tenants")):
        client = _signed_in(app, world[person])
        for q in (other_name, other_slug, world.b.name, world.b.slug):
            page = client.get(url, query_string={"q": q}).get_data(as_text=True)
            for slug in (other_slug, world.b.slug):  # the search echoes what was typed; no way in is shown
                assert not re.search(rf'"/(t|provider/tenants)/{slug}/?"|<code>{slug}</code>', page), (person, url, q)
            assert re.search(r"No (workspace|client tenant) matches", page), (person, url, q)
    # ...while the provider admin, who works for every client, finds it.
    page = _signed_in(app, world["provider_admin"]).get("/provider/tenants", query_string={"q": other_slug})
    page = page.get_data(as_text=True)
    assert f"<code>{other_slug}</code>" in page
