"""The provider's audit log, written for people: who by name, what in words naming the thing, when in the
provider's time zone; filters by days, side and kind; the CSV of what they keep, itself recorded."""

from __future__ import annotations

import csv
import html
import io
import re
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from sqlalchemy import select

from portal.extensions import db
from tenants import audit
from tenants.audit import PlatformAuditEvent
from tenants.models import User, utcnow
from tests.factories import unique
from tests.provider.conftest import post

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROW = re.compile(r'<tr data-seq="(\d+)">(.*?)</tr>', re.S)


def _rows(page: str) -> list[tuple[int, str, list[str]]]:
    """(seq, action, the text of each cell) of the log's rows, newest first."""
    out = []
    for seq, body in ROW.findall(page):
        action = re.search(r'data-action="([^"]+)"', body).group(1)
        cells = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        out.append((int(seq), action, cells))
    return out


def _rename(person, name: str) -> None:
    db.session.get(User, person.id).name = name
    db.session.commit()


def test_the_log_names_people_and_clients_and_never_shows_an_id(ctx, world, browser):
    admin, staff = world["provider_admin"], world["staff"]
    name = unique("Trần Minh")
    _rename(admin, name)
    _rename(staff, unique("Lê Thu"))
    console = browser(admin)
    assert post(console, f"/provider/staff/{staff.id}/active", {"active": "0"}).status_code == 302
    # The dashboard reads across the clients it shows (the first by name, or those searched for): recorded.
    assert console.get("/provider/", query_string={"q": world.a.name}).status_code == 200

    rows = _rows(console.get("/provider/audit").get_data(as_text=True))
    staff_name = db.session.get(User, staff.id).name
    _, _, (_, when, who, side, what, where) = next(r for r in rows if r[1] == "user.disabled")
    assert who == f"{name} {admin.email}" and side == "Provider"  # the name, and the address recorded under it
    assert what == f"disabled a person's account “{staff_name}”" and where == "127.0.0.1"
    read = next(r for r in rows if r[1] == "cross_tenant.read")[2][4]
    assert read.startswith("read across clients “") and world.a.name in read  # the clients by name
    signin = next(r for r in rows if r[1] == "auth.signin" and admin.email in r[2][2])[2][4]
    assert signin == "signed in"
    for _, action, cells in rows:
        assert not UUID.search(" ".join(cells)), (action, cells)
        assert action not in " ".join(cells), "a raw action key is shown"

    event = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == "user.disabled")
                               .order_by(PlatformAuditEvent.seq.desc())).first()
    local = format_datetime(event.occurred_at, "medium", tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"), locale="en")
    assert when == " ".join(local.split())  # the provider's time, not UTC


def test_the_log_reads_in_vietnamese_too(ctx, world, browser):
    """Every row of a Vietnamese page is a sentence: no action key."""
    db.session.get(User, world["provider_admin"].id).locale = "vi"
    db.session.commit()
    try:
        page = browser(world["provider_admin"]).get("/provider/audit").get_data(as_text=True)
    finally:
        db.session.get(User, world["provider_admin"].id).locale = "en"
        db.session.commit()
    assert '<html lang="vi">' in page
    rows = _rows(page)
    assert rows
    for _, action, cells in rows:
        assert action not in " ".join(cells)


def _far_zone() -> tuple[str, object, object]:
    """A zone whose today is not UTC's today right now (UTC+14 or UTC-11), its today and UTC's."""
    now = utcnow()
    zone = next(z for z in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
                if now.astimezone(ZoneInfo(z)).date() != now.date())
    return zone, now.astimezone(ZoneInfo(zone)).date(), now.date()


def test_days_are_the_providers_days(app, ctx, world, browser, monkeypatch):
    zone, local_today, utc_today = _far_zone()
    monkeypatch.setitem(app.config, "PROVIDER_TIMEZONE", zone)
    marker = unique("day-marker")
    audit.record("user.invited", audit.SYSTEM, object_type="user", data={"email": f"{marker}@example.test"})
    db.session.commit()
    console = browser(world["provider_admin"])
    today = console.get("/provider/audit", query_string={"from": local_today.isoformat(), "kind": "people"})
    assert today.status_code == 200 and marker in today.get_data(as_text=True)
    assert f"Times are in {zone}." in today.get_data(as_text=True)
    # The same event, asked for by the day UTC gives it: it did not happen on that day here.
    other = console.get("/provider/audit", query_string={"from": utc_today.isoformat(), "to": utc_today.isoformat(),
                                                         "kind": "people"}).get_data(as_text=True)
    assert marker not in other


def test_the_kind_and_side_filters_keep_what_they_say(ctx, world, browser):
    marker = unique("kind-marker")
    audit.record("service_line.created", audit.SYSTEM, data={"name": marker})
    audit.record("user.invited", audit.SYSTEM, object_type="user", data={"email": f"{marker}@example.test"})
    db.session.commit()
    console = browser(world["provider_admin"])
    rows = _rows(console.get("/provider/audit", query_string={"kind": "services"}).get_data(as_text=True))
    assert rows and {a for _, a, _ in rows} <= {"service_line.created", "service_line.changed", "quality_rate.set"}
    assert any(marker in cells[4] for _, _, cells in rows)
    system = _rows(console.get("/provider/audit", query_string={"side": "system"}).get_data(as_text=True))
    assert system and {cells[3] for _, _, cells in system} == {"System"}
    assert {cells[2] for _, _, cells in system} == {"system"}


@pytest.mark.parametrize("query, message", [
    ({"from": "2025-03-31", "to": "2025-03-01"},
     "The start date 2025-03-31 is after the end date 2025-03-01: swap them, or pick again."),
    ({"to": "yesterday"}, "Give the date as YYYY-MM-DD, for example 2025-03-31."),
    ({"kind": "gossip"}, "Choose a kind of event from the list."),
])
def test_a_filter_that_cannot_be_kept_says_why(world, browser, query, message):
    console = browser(world["provider_admin"])
    r = console.get("/provider/audit", query_string=query)
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert _rows(r.get_data(as_text=True)) == []
    assert console.get("/provider/audit.csv", query_string=query).status_code == 400


def _csv(response) -> list[list[str]]:
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_csv_is_in_words_in_the_providers_time_and_its_download_is_recorded(ctx, world, browser):
    admin = world["provider_admin"]
    marker = unique("csv-marker")
    audit.record("service_line.created", audit.Actor.of(db.session.get(User, admin.id)), ip="192.0.2.9",
                 data={"name": marker})
    db.session.commit()
    console = browser(admin)
    r = console.get("/provider/audit.csv", query_string={"kind": "services", "side": "provider"})
    assert r.status_code == 200 and r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    table = _csv(r)
    assert table[0] == ["#", "When (Asia/Ho_Chi_Minh)", "Who", "Side", "What", "IP address"]
    row = next(row for row in table[1:] if marker in row[4])
    seq, when, who, side, what, where = row
    assert what == f"added a service line “{marker}”" and side == "Provider" and where == "192.0.2.9"
    assert admin.email in who and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", when)
    event = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.seq == int(seq))).one()
    assert when == event.occurred_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S")
    for line in table[1:]:
        assert not UUID.search(" ".join(line)) and "service_line." not in " ".join(line), line

    db.session.expire_all()
    exported = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == "audit_log.exported")
                                  .order_by(PlatformAuditEvent.seq.desc())).first()
    assert exported.actor_id == admin.id and exported.details["filter"] == {"side": "provider", "kind": "services"}
    page = console.get("/provider/audit").get_data(as_text=True)
    newest = _rows(page)[0]
    assert newest[1] == "audit_log.exported"
    assert newest[2][4] == "downloaded this audit log (Only the provider's people, Service lines)"


@pytest.mark.parametrize("who", ["manager", "staff", "a_client_admin"])
def test_only_a_provider_admin_reads_or_downloads_the_platform_log(world, browser, who):
    client = browser(world[who])
    for url in ("/provider/audit", "/provider/audit.csv"):
        r = client.get(url)
        assert r.status_code in (403, 404) and "auth.signin" not in r.get_data(as_text=True)


def test_a_refusal_says_what_was_asked_for_in_words(ctx, world, browser):
    admin = world["provider_admin"]
    console = browser(admin)
    client_person = world["a_client_member"]
    _rename(client_person, unique("Phạm Hoa"))
    for user_id in (client_person.id, "00000000-0000-4000-8000-000000000000"):
        assert post(console, f"/provider/staff/{user_id}/active", {"active": "0"}).status_code == 404
    rows = [r for r in _rows(console.get("/provider/audit", query_string={"kind": "security"}).get_data(as_text=True))
            if r[1] == "access.refused"]
    name = db.session.get(User, client_person.id).name
    assert [cells[4] for _, _, cells in rows[:2]] == [
        "was refused access to a person who does not exist",
        f"was refused access to {name}, who is not on the provider's staff"]
